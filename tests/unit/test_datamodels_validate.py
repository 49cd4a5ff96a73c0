"""Validation: violations with paths, rules and hints; profiles; forms; backend parity."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datamodels import Violation, load_catalogue, validate_entity

CATALOGUE = load_catalogue()
AQ_PROFILE = "toscana/AirQualityObserved"
AQ_FILE = Path(__file__).parent / "data" / "datamodels" / "aq-fi-0001.json"


def _aq(**attrs: Any) -> dict[str, Any]:
    """A normalized AirQualityObserved that satisfies the Tuscan profile, plus overrides."""
    entity: dict[str, Any] = json.loads(AQ_FILE.read_text(encoding="utf-8"))
    entity.update(attrs)
    return entity


def _only(entity: Any, **kwargs: Any) -> Violation:
    result = validate_entity(entity, **kwargs)
    assert len(result.violations) == 1, result.violations
    return result.violations[0]


def test_a_conforming_entity_passes_the_profile() -> None:
    result = validate_entity(_aq(), profile=AQ_PROFILE)
    assert result.ok
    assert (result.model, result.profile, result.form) == (
        "AirQualityObserved",
        AQ_PROFILE,
        "normalized",
    )
    assert result.entity_id == "urn:ngsi-ld:AirQualityObserved:fi-0001"


def test_profile_unit_code_names_the_expected_code() -> None:
    entity = _aq()
    entity["temperature"]["unitCode"] = "F"
    found = _only(entity, profile=AQ_PROFILE)
    assert found == Violation(
        "$.temperature.unitCode",
        "profile.unitCode",
        '`temperature.unitCode` must be `CEL`; got `"F"`',
        'send `temperature` in `CEL` (degree Celsius) with "unitCode": "CEL" (UN/CEFACT)',
    )


def test_profile_missing_unit_code_is_reported() -> None:
    found = _only(_aq(pm10={"type": "Property", "value": 20}), profile=AQ_PROFILE)
    assert (found.path, found.message) == (
        "$.pm10.unitCode",
        "`pm10.unitCode` must be `GQ`; got nothing",
    )


def test_profile_range() -> None:
    entity = _aq()
    entity["temperature"]["value"] = 75
    found = _only(entity, profile=AQ_PROFILE)
    assert (found.path, found.rule) == ("$.temperature.value", "profile.maximum")
    assert "must be <= 60" in found.message and "got 75" in found.message


def test_profile_required() -> None:
    entity = _aq()
    del entity["no2"]
    found = _only(entity, profile=AQ_PROFILE)
    assert (found.path, found.rule) == ("$.no2", "profile.required")
    assert found.hint.startswith("add `no2`")
    assert validate_entity(entity).ok  # the base model does not require it


def test_profile_enum_checks_each_item_of_a_list() -> None:
    spot = CATALOGUE.example("ParkingSpot", "normalized")
    spot["category"]["value"] = ["onStreet", "rooftop"]
    result = validate_entity(spot, profile="toscana/ParkingSpot")
    paths = {(v.path, v.rule) for v in result.violations}
    assert ("$.category.value[1]", "profile.enum") in paths


def test_units_are_not_checked_in_key_values_form() -> None:
    entity = {
        "id": "urn:ngsi-ld:AirQualityObserved:fi-2",
        "type": "AirQualityObserved",
        "dateObserved": "2024-05-01T10:00:00Z",
        "location": {"type": "Point", "coordinates": [11.2, 43.7]},
        "pm10": 20,
        "pm25": 10,
        "no2": 30,
        "temperature": 80,
    }
    found = _only(entity, profile=AQ_PROFILE)
    assert (found.path, found.rule) == ("$.temperature", "profile.maximum")


def test_schema_violation_points_at_the_value_member() -> None:
    found = _only(_aq(pm10={"type": "Property", "value": "high", "unitCode": "GQ"}))
    assert found.path == "$.pm10.value"
    assert found.rule == "schema.type"
    assert found.message == '`pm10.value` must be a number; got `"high"` (string)'
    assert found.hint.startswith("pm10: Particulate matter")


def test_schema_required_and_enum() -> None:
    spot = CATALOGUE.example("ParkingSpot", "normalized")
    spot["status"]["value"] = "busy"
    del spot["refParkingSite"]
    result = validate_entity(spot)
    by_path = {v.path: v for v in result.violations}
    assert by_path["$.refParkingSite"].rule == "schema.required"
    assert by_path["$.status.value"].message == (
        '`status.value` must be one of `closed`, `free`, `occupied`, `unknown`; got `"busy"`'
    )


def test_date_time_inside_a_datetime_value() -> None:
    bad = {"type": "Property", "value": {"@type": "DateTime", "@value": "yesterday"}}
    found = _only(_aq(dateObserved=bad))
    assert found.path == "$.dateObserved.value['@value']"
    assert found.rule == "schema.format"
    assert "ISO 8601" in found.message


def test_geojson_any_of_gives_the_closest_form() -> None:
    found = _only(_aq(location={"type": "GeoProperty", "value": {"type": "Point"}}))
    assert found.rule == "ngsi-ld.geojson"
    entity = _aq()
    entity["location"]["value"] = {"type": "Point", "coordinates": "here"}
    result = validate_entity(entity)
    assert {v.path for v in result.violations} == {"$.location.value"}


@pytest.mark.parametrize(
    ("attribute", "rule", "path"),
    [
        ({"type": "Property"}, "ngsi-ld.value", "$.co.value"),
        ({"type": "Property", "value": None}, "ngsi-ld.value", "$.co.value"),
        ({"type": "Proprety", "value": 1}, "ngsi-ld.attribute-type", "$.co.type"),
        (
            {"type": "Property", "value": 1, "observedAt": "2024-05-01T12:00:00+02:00"},
            "ngsi-ld.observedAt",
            "$.co.observedAt",
        ),
        ({"type": "Property", "value": 1, "unitCode": 7}, "ngsi-ld.unitCode", "$.co.unitCode"),
        (
            {"type": "Property", "value": 1, "datasetId": "no scheme"},
            "ngsi-ld.datasetId",
            "$.co.datasetId",
        ),
        (
            {"type": "Property", "value": 1, "quality": {"type": "Property"}},
            "ngsi-ld.value",
            "$.co.quality.value",
        ),
    ],
)
def test_ngsi_ld_attribute_structure(attribute: dict[str, Any], rule: str, path: str) -> None:
    result = validate_entity(_aq(co=attribute))
    assert (path, rule) in {(v.path, v.rule) for v in result.violations}


def test_relationship_needs_an_object_uri() -> None:
    found = _only(_aq(refDevice={"type": "Relationship"}))
    assert (found.path, found.rule) == ("$.refDevice.object", "ngsi-ld.object")
    found = _only(_aq(refDevice={"type": "Relationship", "object": "aq 1"}))
    assert found.message == '`refDevice.object` must be the URI of an entity; got `"aq 1"`'


def test_id_and_type() -> None:
    result = validate_entity(_aq(id="fi 1"), "AirQualityObserved")
    assert [(v.path, v.rule) for v in result.violations] == [("$.id", "ngsi-ld.id")]
    result = validate_entity(_aq(type="ParkingSpot"), "AirQualityObserved")
    assert [(v.path, v.rule) for v in result.violations] == [("$.type", "ngsi-ld.type")]
    result = validate_entity(_aq(id="urn:example:fi-1"))
    assert result.ok and [w.rule for w in result.warnings] == ["ngsi-ld.id-convention"]


def test_expanded_type_iri_is_accepted() -> None:
    iri = CATALOGUE.model("AirQualityObserved").type_iri
    assert iri is not None
    assert validate_entity(_aq(type=iri), "AirQualityObserved").ok


def test_unknown_type_is_a_violation_not_an_exception() -> None:
    result = validate_entity({"id": "urn:ngsi-ld:Thing:1", "type": "Thing"})
    assert [v.rule for v in result.violations] == ["catalogue.model"]
    assert validate_entity([1, 2], "ParkingSpot").violations[0].rule == "ngsi-ld.entity"


def test_normalized_attribute_given_bare_when_form_is_forced() -> None:
    result = validate_entity(_aq(pm1=3.0), form="normalized")
    assert [(v.path, v.rule) for v in result.violations] == [("$.pm1", "ngsi-ld.attribute")]


def test_concise_form() -> None:
    entity = {
        "id": "urn:ngsi-ld:ParkingSpot:fi-1",
        "type": "ParkingSpot",
        "status": {"value": "free", "observedAt": "2024-05-01T10:00:00Z"},
        "category": ["onStreet"],
        "refParkingSite": {"object": "urn:ngsi-ld:ParkingSite:fi-a"},
        "location": {"type": "Point", "coordinates": [11.25, 43.77]},
    }
    result = validate_entity(entity, profile="toscana/ParkingSpot")
    assert result.form == "concise" and result.ok
    entity["status"] = {"value": "gone"}
    result = validate_entity(entity)
    assert [v.path for v in result.violations] == ["$.status.value"]


def test_multi_attribute_instances() -> None:
    two = [
        {"type": "Property", "value": 20.0, "unitCode": "GQ"},
        {"type": "Property", "value": -1, "unitCode": "GQ", "datasetId": "urn:ngsi-ld:Dataset:b"},
    ]
    assert validate_entity(_aq(pm10=two), profile=AQ_PROFILE).ok
    two[0]["value"] = -5
    found = _only(_aq(pm10=two))
    assert found.path == "$.pm10[0].value"


def test_validators_are_compiled_once() -> None:
    assert CATALOGUE.validator("ParkingSpot") is CATALOGUE.validator("ParkingSpot")
    assert CATALOGUE.validator(profile="toscana/ParkingSpot").model.name == "ParkingSpot"


# -- both backends report the same results ---------------------------------------------

_MUTATIONS: list[tuple[str, Any]] = [
    ("status", "busy"),
    ("category", []),
    ("category", ["onStreet", "onStreet"]),
    ("width", -1),
    ("width", "wide"),
    ("refParkingSite", 7),
    ("timeInstant", "now"),
    ("location", {"type": "Point", "coordinates": []}),
    ("name", None),
]


@pytest.fixture(scope="module")
def both() -> tuple[Any, Any]:
    return CATALOGUE.with_backend("jsonschema-rs"), CATALOGUE.with_backend("jsonschema")


def _parity(both: tuple[Any, Any], entity: Any, model: str, profile: str | None = None) -> None:
    fast, slow = both
    assert fast.validator(model).backend == "jsonschema-rs"
    assert slow.validator(model).backend == "jsonschema"
    left = fast.validator(model, profile).validate(entity)
    right = slow.validator(model, profile).validate(entity)
    assert left == right


@pytest.mark.parametrize("model", sorted(CATALOGUE.models))
@pytest.mark.parametrize("form", ["normalized", "keyValues", "v2"])
def test_backends_agree_on_every_example(both: tuple[Any, Any], model: str, form: str) -> None:
    _parity(both, CATALOGUE.example(model, form), model)


@settings(max_examples=60, deadline=None)
@given(
    mutations=st.lists(st.sampled_from(_MUTATIONS), max_size=3),
    form=st.sampled_from(["normalized", "keyValues"]),
)
def test_backends_agree_on_mutated_entities(
    both: tuple[Any, Any], mutations: list[tuple[str, Any]], form: str
) -> None:
    entity = copy.deepcopy(CATALOGUE.example("ParkingSpot", form))
    for name, value in mutations:
        if form == "normalized":
            entity[name] = {"type": "Property", "value": value}
        else:
            entity[name] = value
    _parity(both, entity, "ParkingSpot", "toscana/ParkingSpot")


@settings(max_examples=80, deadline=None)
@given(
    value=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=8,
    ),
    name=st.sampled_from(["pm10", "temperature", "dateObserved", "refDevice", "location", "x"]),
)
def test_any_attribute_value_yields_a_result(name: str, value: Any) -> None:
    entity = _aq()
    entity[name] = value
    result = validate_entity(entity, profile=AQ_PROFILE)
    for found in result.violations:
        assert found.path.startswith("$") and found.rule and found.message
