"""Which types a tenant's `apiValidation` covers: its models, a profile standing for its base."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from context_broker._api_validation import OFF, policy_of
from datamodels import load_catalogue
from regional_tenants import Tenant


def _tenant(mode: str, models: tuple[str, ...]) -> Tenant:
    return Tenant(
        slug="acqua",
        kind="utility",
        name="Acqua",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        models=models,
        api_validation=mode,  # type: ignore[arg-type]
    )


def test_a_profile_covers_its_base_type_and_a_model_its_own() -> None:
    policy = policy_of(
        _tenant("enforce", ("toscana/AirQualityObserved", "WasteContainer", "NoSuchModel")),
        load_catalogue(),
    )
    assert policy.mode == "enforce"
    assert set(policy.validators) == {"AirQualityObserved", "WasteContainer"}
    assert policy.validators["AirQualityObserved"].profile is not None


def test_off_and_unknown_tenants_validate_nothing() -> None:
    assert policy_of(_tenant("off", ("WasteContainer",)), load_catalogue()) is OFF
    assert policy_of(None, load_catalogue()) is OFF


def test_the_mode_survives_the_record_and_a_wrong_one_is_refused() -> None:
    tenant = _tenant("warn", ())
    assert Tenant.from_dict(tenant.to_dict()).api_validation == "warn"
    with pytest.raises(ValueError, match="apiValidation"):
        _tenant("strict", ())
