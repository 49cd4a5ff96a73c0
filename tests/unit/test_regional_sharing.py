"""Sharing rules: which copies a publishing tenant's entity makes, and what never leaves."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from typing import Any

import pytest
import shapely

from datamodels import load_catalogue
from regional_tenants import (
    COMUNI_IT_LIES_IN,
    GAS_ALERTS_TO_COMUNI,
    REGION,
    BoundaryIndex,
    SharingRule,
    load_comuni,
    project,
)

FIRENZE = (11.2558, 43.7696)
BOLOGNA = (11.3426, 44.4949)
CONTEXT = [
    "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld",
    "https://raw.githubusercontent.com/smart-data-models/dataModel.Alert/master/context.jsonld",
]


@pytest.fixture(scope="module")
def index() -> BoundaryIndex:
    return BoundaryIndex()


def prop(value: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value}


def geo(geometry: dict[str, Any]) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": geometry}


def alert(location: dict[str, Any] | None, **more: Any) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "id": "urn:ngsi-ld:Alert:gas-utility:leak-0042",
        "type": "Alert",
        "category": prop("security"),
        "subCategory": prop("hazardOnRoad"),
        "severity": prop("high"),
        "description": prop("Gas leak reported in via dei Servi; keep clear"),
        "dateIssued": prop({"@type": "DateTime", "@value": "2026-03-01T09:30:00Z"}),
        "alertSource": prop("https://gas-utility.example/operators/rossi.mario"),
        "data": prop({"customer": "IT-0042-77", "meter": "PDR 00881234567890"}),
        "@context": CONTEXT,
        **more,
    }
    if location is not None:
        entity["location"] = geo(location)
    return entity


def point(longitude: float, latitude: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [longitude, latitude]}


def test_a_leak_alert_goes_to_the_comune_it_lies_in_with_allowed_attributes_only(
    index: BoundaryIndex,
) -> None:
    entity = alert(point(*FIRENZE))
    original = copy.deepcopy(entity)
    copies = project(entity, GAS_ALERTS_TO_COMUNI, index)
    assert [target for target, _ in copies] == ["firenze"]
    shared = copies[0][1]
    assert shared == {
        "id": entity["id"],
        "type": "Alert",
        "category": entity["category"],
        "subCategory": entity["subCategory"],
        "severity": entity["severity"],
        "description": entity["description"],
        "dateIssued": entity["dateIssued"],
        "location": entity["location"],
        "sharedBy": {"type": "Property", "value": "gas-utility"},
        "@context": CONTEXT,
    }
    assert entity == original  # the owner's entity is untouched


def test_roadworks_along_a_border_go_to_every_comune_they_touch(index: BoundaryIndex) -> None:
    comuni = load_comuni()
    firenze = comuni.by_slug("firenze").geometry.representative_point()
    sesto = comuni.by_slug("sesto-fiorentino").geometry.representative_point()
    works = alert(
        {"type": "LineString", "coordinates": [[firenze.x, firenze.y], [sesto.x, sesto.y]]},
        category=prop("traffic"),
        subCategory=prop("roadWorks"),
    )
    copies = project(works, GAS_ALERTS_TO_COMUNI, index)
    targets = [target for target, _ in copies]
    assert {"firenze", "sesto-fiorentino"} <= set(targets)
    assert len(targets) == len(set(targets))
    assert all(c["subCategory"] == prop("roadWorks") for _, c in copies)
    # Each target gets its own copy.
    copies[0][1]["severity"]["value"] = "low"
    assert copies[1][1]["severity"]["value"] == "high"


def test_a_point_on_a_shared_border_vertex_goes_to_both_comuni(index: BoundaryIndex) -> None:
    comuni = load_comuni()
    shared = comuni.by_slug("pisa").geometry.boundary.intersection(
        comuni.by_slug("san-giuliano-terme").geometry.boundary
    )
    x, y = shapely.get_coordinates(shapely.line_merge(shared))[5].tolist()
    targets = [t for t, _ in project(alert(point(x, y)), GAS_ALERTS_TO_COMUNI, index)]
    assert set(targets) >= {"pisa", "san-giuliano-terme"}


@pytest.mark.parametrize(
    "location",
    [
        point(*BOLOGNA),
        None,
        {"type": "Point", "coordinates": ["x", 1]},
    ],
)
def test_an_alert_outside_every_comune_or_without_a_location_goes_nowhere(
    index: BoundaryIndex, location: dict[str, Any] | None
) -> None:
    assert project(alert(location), GAS_ALERTS_TO_COMUNI, index) == []


def test_meter_readings_never_leave_the_utility(index: BoundaryIndex) -> None:
    catalogue = load_catalogue()
    for model in ("SmartMeteringObservation", "Consumption", "WaterConsumptionObserved"):
        reading = catalogue.example(model, "normalized")
        reading["location"] = geo(point(*FIRENZE))
        assert project(reading, GAS_ALERTS_TO_COMUNI, index) == []
    assert "SmartMeteringObservation" not in GAS_ALERTS_TO_COMUNI.entity_types


def test_private_and_personal_attributes_never_leave_even_when_allow_listed(
    index: BoundaryIndex,
) -> None:
    catalogue = load_catalogue()
    profile = catalogue.profiles["toscana/WaterConsumptionObserved"]
    careless = SharingRule(
        name="everything-to-the-comune",
        owner="acqua-utility",
        entity_types=("WaterConsumptionObserved",),
        attributes=(
            "waterConsumption",
            "maxFlow",
            "alarmTamper",
            "alarmStopsLeaks",
            "dateObserved",
            "location",
        ),
        targets=(COMUNI_IT_LIES_IN, REGION),
    ).with_profile(profile)
    assert set(careless.private) == set(profile.private)
    assert set(careless.personal) == set(profile.personal)
    assert careless.shared_attributes == {"dateObserved", "location"}
    reading = catalogue.example("WaterConsumptionObserved", "normalized")
    reading["location"] = geo(point(*FIRENZE))
    reading["dateObserved"] = prop("2026-03-01T09:30:00Z")
    copies = project(reading, careless, index)
    assert [t for t, _ in copies] == ["firenze", "toscana"]
    for _, shared in copies:
        assert set(shared) == {"id", "type", "dateObserved", "location", "sharedBy", "@context"}


def test_withheld_names_are_dropped_from_sub_attributes_and_instances_too(
    index: BoundaryIndex,
) -> None:
    rule = replace(
        GAS_ALERTS_TO_COMUNI,
        attributes=("severity", "location"),
        private=("refDevice",),
    )
    entity = alert(None)
    entity["severity"] = [
        {**prop("high"), "refDevice": {"type": "Relationship", "object": "urn:ngsi-ld:Device:1"}},
        {**prop("low"), "datasetId": "urn:ngsi-ld:Dataset:forecast"},
    ]
    entity["location"] = [
        {**geo(point(*BOLOGNA)), "datasetId": "urn:ngsi-ld:Dataset:reporter"},
        geo(point(*FIRENZE)),  # the default instance routes
    ]
    [(target, shared)] = project(entity, rule, index)
    assert target == "firenze"
    assert shared["severity"] == [prop("high"), entity["severity"][1]]
    assert shared["location"] == entity["location"]


def test_location_routes_but_is_copied_only_when_allow_listed(index: BoundaryIndex) -> None:
    rule = replace(GAS_ALERTS_TO_COMUNI, attributes=("category", "severity"))
    [(target, shared)] = project(alert(point(*FIRENZE)), rule, index)
    assert target == "firenze"
    assert "location" not in shared


def test_a_location_serialized_as_a_string_is_read(index: BoundaryIndex) -> None:
    entity = alert(None)
    entity["location"] = {"type": "GeoProperty", "value": json.dumps(point(*FIRENZE))}
    assert [t for t, _ in project(entity, GAS_ALERTS_TO_COMUNI, index)] == ["firenze"]


def test_targets_are_explicit_slugs_the_region_and_comuni_without_the_owner(
    index: BoundaryIndex,
) -> None:
    rule = SharingRule(
        name="firenze-alerts",
        owner="firenze",
        entity_types=("Alert",),
        attributes=("category",),
        targets=("publiacqua", COMUNI_IT_LIES_IN, REGION, "publiacqua", "toscana"),
    )
    targets = [t for t, _ in project(alert(point(*FIRENZE)), rule, index)]
    assert targets == ["publiacqua", "toscana"]


def test_copies_are_never_shared_on_and_other_types_are_ignored(index: BoundaryIndex) -> None:
    [(_, shared)] = project(alert(point(*FIRENZE)), GAS_ALERTS_TO_COMUNI, index)
    region_rule = replace(GAS_ALERTS_TO_COMUNI, owner="firenze", targets=(REGION,))
    assert project(shared, region_rule, index) == []
    weather = alert(point(*FIRENZE))
    weather["type"] = "WeatherObserved"
    assert project(weather, GAS_ALERTS_TO_COMUNI, index) == []
    multi = alert(point(*FIRENZE))
    multi["type"] = ["Alert", "Incident"]
    [(_, shared)] = project(multi, GAS_ALERTS_TO_COMUNI, index)
    assert shared["type"] == ["Alert", "Incident"]


def test_rules_round_trip_through_plain_dicts() -> None:
    data = json.loads(json.dumps(GAS_ALERTS_TO_COMUNI.to_dict()))
    assert SharingRule.from_dict(data) == GAS_ALERTS_TO_COMUNI
    with pytest.raises(ValueError, match="not a sharing rule"):
        SharingRule.from_dict({**data, "targets": "region"})
    with pytest.raises(ValueError, match="not a sharing rule"):
        SharingRule.from_dict({"name": "x"})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"owner": "Gas Utility"}, "owner"),
        ({"entity_types": ()}, "entity type"),
        ({"targets": ()}, "target"),
        ({"targets": ("Firenze",)}, "neither a tenant slug"),
        ({"attributes": ("id",)}, "'id' is not an attribute"),
        ({"attributes": ("sharedBy",)}, "'sharedBy' is not an attribute"),
        ({"attributes": ("modifiedAt",)}, "'modifiedAt' is not an attribute"),
    ],
)
def test_malformed_rules_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(GAS_ALERTS_TO_COMUNI, **changes)
