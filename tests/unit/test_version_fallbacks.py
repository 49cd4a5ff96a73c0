"""The `ngsi-ld` preference (RFC 7240) and the fallbacks of ETSI GS CIM 009 V1.9 clause
4.3.6.8, on decoded JSON without a broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from context_broker._entities import expire_attributes, next_expiry
from context_broker._version_fallbacks import amend_payload, applied_version, preferred_version


def test_the_first_ngsi_ld_preference_of_all_prefer_headers_counts() -> None:
    assert preferred_version(["return=minimal", "ngsi-ld=1.4, ngsi-ld=1.9"]) == (1, 4)
    assert preferred_version(["respond-async; wait=5, ngsi-ld = 1.7 ; q=0.1"]) == (1, 7)
    assert preferred_version(["ngsi-ld=latest, ngsi-ld=1.6"]) is None  # the first is void
    assert preferred_version(["return=minimal"]) is None
    assert preferred_version([]) is None


def test_a_later_version_is_answered_in_the_brokers_own() -> None:
    assert applied_version((2, 0)) == (1, 9)
    assert applied_version((1, 10)) == (1, 9)
    assert applied_version((1, 5)) == (1, 5)


@given(st.text(max_size=40))
def test_no_prefer_value_makes_the_parser_fail(value: str) -> None:
    version = preferred_version([value])
    assert version is None or version >= (1, 0)


def test_a_multi_instance_attribute_of_1_0_keeps_the_default_instance() -> None:
    """Clause 4.3.6.8 note 2: the default instance is preferred, wherever it stands."""
    entity: dict[str, Any] = {
        "id": "urn:ngsi-ld:R:1",
        "type": "R",
        "t": [
            {"type": "Property", "value": 1, "datasetId": "urn:ngsi-ld:D:1"},
            {"type": "Property", "value": 2, "observedAt": "2026-01-01T00:00:00Z"},
        ],
    }
    assert amend_payload(entity, (1, 0))["t"] == {"type": "Property", "value": 2}


def test_sub_attributes_and_key_values_are_handled() -> None:
    """Sub-attributes are amended as attributes; a keyValues value is left alone."""
    entity: dict[str, Any] = {
        "id": "urn:ngsi-ld:R:1",
        "type": "R",
        "t": {"type": "Property", "value": 1, "meta": {"json": {"a": 1}}},
        "raw": [{"json": 1}, 2],
    }
    amended = amend_payload(entity, (1, 7))
    assert amended["t"]["meta"] == {"value": {"a": 1}}
    assert amended["raw"] == [{"json": 1}, 2]


def _instance(value: int, expires: datetime | None = None, **extra: Any) -> dict[str, Any]:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    instance: dict[str, Any] = {"type": "Property", "value": value, "createdAt": now}
    instance["modifiedAt"] = now
    if expires is not None:
        instance["expiresAt"] = expires
    return instance | extra


def test_expiry_removes_expired_instances_and_sub_attributes_only() -> None:
    """Clause 4.22: what has expired goes; the entity and everything else stays."""
    now = datetime(2026, 6, 1, tzinfo=UTC)
    past, future = now - timedelta(seconds=1), now + timedelta(hours=1)
    doc: dict[str, Any] = {
        "_id": "urn:ngsi-ld:R:1",
        "type": ["R"],
        "v": 3,
        "an": ["a", "b", "c"],
        "attrs": {
            "a": _instance(1, past),
            "b": _instance(2, sub={"q": _instance(9, past), "r": _instance(8, future)}),
        },
        "ds": {"c": [_instance(3, past, datasetId="urn:ngsi-ld:D:1")]},
    }
    assert next_expiry(doc) == past
    assert expire_attributes(doc, now)
    assert doc["an"] == ["b"] and "ds" not in doc
    assert list(doc["attrs"]["b"]["sub"]) == ["r"]
    assert doc["v"] == 4 and doc["modifiedAt"] == now
    assert next_expiry(doc) == future
    assert not expire_attributes(doc, now)
