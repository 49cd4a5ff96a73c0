"""Form detection and keyValues <-> normalized conversion."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datamodels import (
    detect_form,
    load_catalogue,
    to_key_values,
    to_normalized,
    validate_entity,
)

CATALOGUE = load_catalogue()
PARKING = CATALOGUE.model("ParkingSpot")

_names = st.from_regex(r"[a-z][A-Za-z0-9]{0,12}", fullmatch=True).filter(
    lambda n: n not in {"id", "type", "scope"}
)
_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), inner, max_size=3)
    ),
    max_leaves=10,
)
_attrs = st.dictionaries(
    _names | st.sampled_from(["refParkingSite", "location", "timeInstant"]), _values, max_size=8
)


@given(attrs=_attrs)
def test_key_values_round_trip_through_normalized(attrs: dict[str, Any]) -> None:
    entity = {"id": "urn:ngsi-ld:ParkingSpot:x", "type": "ParkingSpot", **attrs}
    normalized = to_normalized(entity, PARKING, form="keyValues")
    assert detect_form(normalized) in {"normalized", "keyValues"}
    back = to_key_values(normalized, form="normalized")
    assert back == {**entity, "@context": [PARKING.context]}


@given(attrs=_attrs)
def test_conversion_keeps_an_existing_context(attrs: dict[str, Any]) -> None:
    entity = {"id": "urn:x:1", "type": "ParkingSpot", "@context": ["urn:ctx"], **attrs}
    assert (
        to_key_values(to_normalized(entity, PARKING, form="keyValues"), form="normalized") == entity
    )


def test_to_normalized_uses_the_model_and_profile() -> None:
    entity = {
        "id": "urn:ngsi-ld:ParkingSpot:fi-1",
        "type": "ParkingSpot",
        "status": "free",
        "width": 2.5,
        "refParkingSite": "urn:ngsi-ld:ParkingSite:fi-a",
        "location": {"type": "Point", "coordinates": [11.25, 43.77]},
        "timeInstant": "2024-05-01T10:00:00Z",
        "category": ["onStreet"],
    }
    out = to_normalized(entity, PARKING, profile=CATALOGUE.profile("toscana/ParkingSpot"))
    assert out["refParkingSite"] == {
        "type": "Relationship",
        "object": "urn:ngsi-ld:ParkingSite:fi-a",
    }
    assert out["location"]["type"] == "GeoProperty"
    assert out["timeInstant"] == {
        "type": "Property",
        "value": {"@type": "DateTime", "@value": "2024-05-01T10:00:00Z"},
    }
    assert out["width"] == {"type": "Property", "value": 2.5, "unitCode": "MTR"}
    assert out["@context"] == [PARKING.context]
    assert validate_entity(out, profile="toscana/ParkingSpot").ok
    assert validate_entity(entity, profile="toscana/ParkingSpot").ok


def test_concise_to_normalized_and_back() -> None:
    concise = {
        "id": "urn:ngsi-ld:ParkingSpot:fi-1",
        "type": "ParkingSpot",
        "status": {
            "value": "free",
            "observedAt": "2024-05-01T10:00:00Z",
            "permit": {"value": "yes"},
        },
        "refParkingSite": {"object": "urn:ngsi-ld:ParkingSite:fi-a"},
        "category": ["onStreet"],
    }
    assert detect_form(concise) == "concise"
    out = to_normalized(concise, PARKING)
    assert out["status"] == {
        "type": "Property",
        "value": "free",
        "observedAt": "2024-05-01T10:00:00Z",
        "permit": {"type": "Property", "value": "yes"},
    }
    assert out["refParkingSite"]["type"] == "Relationship"
    assert detect_form(out) == "normalized"
    assert to_key_values(concise)["status"] == "free"


@pytest.mark.parametrize("model", sorted(CATALOGUE.models))
def test_normalized_examples_convert_to_valid_key_values(model: str) -> None:
    normalized = CATALOGUE.example(model, "normalized")
    assert detect_form(normalized) == "normalized"
    key_values = to_key_values(normalized)
    assert detect_form(key_values) == "keyValues"
    again = validate_entity(to_normalized(key_values, CATALOGUE.model(model)))
    assert {v.path for v in again.violations} == {
        v.path for v in validate_entity(normalized).violations
    }


def test_date_time_values_are_unwrapped() -> None:
    alert = to_key_values(CATALOGUE.example("Alert", "normalized"))
    assert alert["dateIssued"] == "2017-01-02T09:25:55.00Z"


def test_form_detection() -> None:
    assert detect_form({"id": "urn:x:1", "type": "T"}) == "keyValues"
    assert (
        detect_form({"id": "urn:x:1", "a": 1, "b": {"type": "Property", "value": 1}}) == "concise"
    )
    assert detect_form({"a": [{"type": "Property", "value": 1, "datasetId": "urn:d:1"}]}) == (
        "normalized"
    )
    assert detect_form({"where": {"type": "Point", "coordinates": [1, 2]}}) == "keyValues"
