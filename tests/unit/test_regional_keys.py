"""API keys: shown once, stored as a salted hash, verified in constant time; role order."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from regional_tenants import ApiKeyRecord, Role, allows, new_api_key, parse_api_key, verify

ROLES: tuple[Role, ...] = ("reader", "writer", "admin", "region-admin")


def test_a_new_key_has_the_documented_format_and_record() -> None:
    plain, record = new_api_key("san-giuliano-terme", "writer")
    prefix = "ctk_san-giuliano-terme_"
    assert plain.startswith(prefix)
    secret = plain[len(prefix) :]
    assert len(secret) == 43  # 32 random bytes, url-safe base64 without padding
    assert record.key_id == secret[:8]
    assert (record.tenant, record.role) == ("san-giuliano-terme", "writer")
    assert plain not in json.dumps(record.to_dict())
    assert secret not in record.digest
    assert parse_api_key(plain) == ("san-giuliano-terme", record.key_id)


def test_the_right_key_verifies_and_others_do_not() -> None:
    plain, record = new_api_key("firenze", "reader")
    other, other_record = new_api_key("firenze", "reader")
    assert verify(plain, record)
    assert not verify(other, record)
    assert not verify(plain, other_record)
    assert not verify(plain[:-1] + ("A" if plain[-1] != "A" else "B"), record)
    assert not verify(plain.replace("ctk_firenze_", "ctk_prato_"), record)
    assert not verify("", record)
    assert not verify(plain + "x", record)


def test_each_key_has_its_own_salt() -> None:
    records = [new_api_key("prato", "reader")[1] for _ in range(5)]
    assert len({r.salt for r in records}) == 5
    assert len({r.digest for r in records}) == 5


def test_a_tampered_record_verifies_nothing() -> None:
    plain, record = new_api_key("pisa", "admin")
    assert not verify(plain, replace(record, salt="00" * 16))
    assert not verify(plain, replace(record, digest="not hex"))
    assert not verify(plain, replace(record, iterations=0))
    assert not verify(plain, replace(record, iterations=record.iterations + 1))


def test_records_round_trip_through_plain_dicts() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    plain, record = new_api_key("toscana", "region-admin", created_at=moment)
    data = json.loads(json.dumps(record.to_dict()))
    assert data["created_at"] == "2026-01-02T03:04:05Z"
    again = ApiKeyRecord.from_dict(data)
    assert again == record
    assert verify(plain, again)
    with pytest.raises(ValueError, match="unknown role"):
        ApiKeyRecord.from_dict({**data, "role": "owner"})
    with pytest.raises(ValueError, match="not an API key record"):
        ApiKeyRecord.from_dict({"role": "reader"})


@pytest.mark.parametrize(
    "key",
    [
        "",
        "ctk_",
        "ctk_firenze",
        "ctk_firenze_short",
        "ctk_Firenze_" + "a" * 43,
        "ctk_firenze_" + "a" * 42 + "!",
        "xtk_firenze_" + "a" * 43,
        "ctk_region_" + "a" * 43,
    ],
)
def test_malformed_keys_do_not_parse(key: str) -> None:
    assert parse_api_key(key) is None


def test_new_keys_are_refused_for_bad_tenants_and_roles() -> None:
    with pytest.raises(ValueError, match="tenant slug"):
        new_api_key("Firenze", "reader")
    with pytest.raises(ValueError, match="unknown role"):
        new_api_key("firenze", "owner")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="region-admin"):
        new_api_key("firenze", "region-admin")


def test_role_order() -> None:
    granted = {(role, needed) for role in ROLES for needed in ROLES if allows(role, needed)}
    assert granted == {
        ("reader", "reader"),
        ("writer", "reader"),
        ("writer", "writer"),
        ("admin", "reader"),
        ("admin", "writer"),
        ("admin", "admin"),
        *(("region-admin", needed) for needed in ROLES),
    }


def test_grants_binds_a_key_to_its_tenant_except_for_region_admins() -> None:
    _, writer = new_api_key("livorno", "writer")
    _, region = new_api_key("toscana", "region-admin")
    assert writer.grants("livorno", "writer")
    assert not writer.grants("livorno", "admin")
    assert not writer.grants("pisa", "reader")
    assert region.grants("pisa", "admin")
    assert region.grants("toscana", "region-admin")


def test_verification_is_fast_enough_for_a_request_path() -> None:
    plain, record = new_api_key("siena", "reader")
    started = time.perf_counter()
    for _ in range(20):
        assert verify(plain, record)
    assert (time.perf_counter() - started) / 20 < 0.02  # measured about 0.6 ms
