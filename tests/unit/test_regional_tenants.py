"""Tenant values: slug rules, a comune's default tenant, plain-dict round trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from shapely.geometry import shape

import datamodels
from regional_tenants import (
    COMUNE_MODELS,
    Contact,
    Quotas,
    Tenant,
    load_comuni,
    tenant_for_comune,
    valid_slug,
)

MOMENT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "slug", ["firenze", "san-giuliano-terme", "toscana", "acqua-2", "a" * 48, "publiacqua"]
)
def test_valid_slugs(slug: str) -> None:
    assert valid_slug(slug)


@pytest.mark.parametrize(
    "slug",
    [
        "",
        "Firenze",
        "san giuliano",
        "san_giuliano",
        "-firenze",
        "firenze-",
        "san--giuliano",
        "2firenze",
        "città",
        "a" * 49,
        "region",
        "comuni-it-lies-in",
    ],
)
def test_invalid_slugs(slug: str) -> None:
    assert not valid_slug(slug)


def test_a_comune_tenant_has_its_code_boundary_and_default_models() -> None:
    prato = load_comuni().by_slug("prato")
    tenant = tenant_for_comune(prato, created_at=MOMENT)
    assert (tenant.slug, tenant.kind, tenant.name, tenant.istat_code) == (
        "prato",
        "comune",
        "Prato",
        "100005",
    )
    assert tenant.boundary is not None
    assert shape(tenant.boundary).equals(prato.geometry)
    assert tenant.models == COMUNE_MODELS
    assert tenant.active
    assert tenant.quotas == Quotas()


def test_the_default_profiles_and_models_exist_in_datamodels() -> None:
    catalogue = datamodels.load_catalogue()
    for name in COMUNE_MODELS:
        if "/" in name:
            assert name in catalogue.profiles
        else:
            assert name in catalogue.models
    profiles_dir = Path(datamodels.__file__).parent / "profiles" / "toscana"
    on_disk = {f"toscana/{p.stem}" for p in profiles_dir.glob("*.yaml")}
    assert {n for n in COMUNE_MODELS if "/" in n} <= on_disk


def test_tenants_round_trip_through_plain_json() -> None:
    tenant = tenant_for_comune(
        load_comuni().by_slug("firenze"),
        contacts=(Contact("Ufficio Smart City", "smartcity@comune.fi.it"),),
        created_at=MOMENT,
    )
    data = json.loads(json.dumps(tenant.to_dict()))
    assert data["created_at"] == "2026-03-01T09:30:00Z"
    assert data["boundary"]["type"] == "MultiPolygon"
    assert Tenant.from_dict(data) == tenant
    utility = Tenant(
        slug="publiacqua",
        kind="utility",
        name="Publiacqua S.p.A.",
        created_at=MOMENT,
        models=("toscana/WaterConsumptionObserved",),
        quotas=Quotas(max_entities=2_000_000, max_messages_per_s=500),
        status="suspended",
    )
    assert Tenant.from_dict(json.loads(json.dumps(utility.to_dict()))) == utility
    assert not utility.active
    assert hash(utility) == hash(Tenant.from_dict(utility.to_dict()))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"slug": "Firenze"}, "not a valid tenant slug"),
        ({"kind": "city"}, "kind"),
        ({"status": "deleted"}, "status"),
        ({"istat_code": None}, "ISTAT code"),
        ({"boundary": {"type": "Polygon", "coordinates": []}}, "MultiPolygon"),
        ({"created_at": "yesterday"}, "Invalid isoformat"),
        ({"quotas": {"max_entities": 0}}, "positive"),
        ({"quotas": {"max_things": 3}}, "not a tenant record"),
        ({"contacts": [{"name": "x", "email": "nobody"}]}, "e-mail"),
        ({"slug": None}, "not a tenant record"),
        ({"kind": None}, "kind"),
    ],
)
def test_malformed_tenant_records_are_refused(changes: dict[str, object], message: str) -> None:
    data = tenant_for_comune(load_comuni().by_slug("siena"), created_at=MOMENT).to_dict()
    data.update(changes)
    with pytest.raises(ValueError, match=message):
        Tenant.from_dict(data)


def test_times_carry_a_zone_and_a_naive_record_time_is_read_as_utc() -> None:
    with pytest.raises(ValueError, match="time zone"):
        Tenant(slug="gaia", kind="utility", name="GAIA", created_at=datetime(2026, 3, 1))
    data = Tenant(slug="gaia", kind="utility", name="GAIA", created_at=MOMENT).to_dict()
    data["created_at"] = "2026-03-01T09:30:00"
    assert Tenant.from_dict(data).created_at == MOMENT
