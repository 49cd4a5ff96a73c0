"""The shipped catalogue: models, offline $refs, examples, profiles and attribution."""

from __future__ import annotations

from importlib import resources

import pytest

from datamodels import CatalogueError, Profile, load_catalogue, validate_entity

CATALOGUE = load_catalogue()
# Upstream examples that break their own schema (see catalogue/ATTRIBUTION.md).
QUIRKS = {
    ("AirQualityObserved", "normalized"): {"$.tsp.value", "$.windDirection.value"},
    ("AirQualityObserved", "v2"): {"$.tsp"},
}


def test_catalogue_holds_the_regional_models() -> None:
    wanted = {
        "AirQualityObserved",
        "WeatherObserved",
        "ParkingSpot",
        "OffStreetParking",
        "TrafficFlowObserved",
        "WasteContainer",
        "Streetlight",
        "WaterQualityObserved",
        "SmartMeteringObservation",
        "WaterConsumptionObserved",
        "Consumption",
        "Device",
        "DeviceMeasurement",
        "Alert",
    }
    assert wanted <= set(CATALOGUE.models)


@pytest.mark.parametrize("model", sorted(CATALOGUE.models))
@pytest.mark.parametrize("form", ["normalized", "keyValues"])
def test_shipped_ngsi_ld_examples_validate(model: str, form: str) -> None:
    result = validate_entity(CATALOGUE.example(model, form))
    assert {v.path for v in result.violations} == QUIRKS.get((model, form), set())


@pytest.mark.parametrize("model", sorted(CATALOGUE.models))
def test_ngsi_v2_examples_break_only_the_ngsi_ld_id_rule(model: str) -> None:
    result = validate_entity(CATALOGUE.example(model, "v2"))
    schema_paths = {v.path for v in result.violations if v.rule != "ngsi-ld.id"}
    assert schema_paths == QUIRKS.get((model, "v2"), set())


def test_refs_resolve_from_shipped_files_only() -> None:
    uris = set(CATALOGUE.registry)
    assert "https://smart-data-models.github.io/data-models/common-schema.json" in uris
    assert (
        "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/"
        "master/Environment-schema.json" in uris
    )


def test_device_ip_address_is_checked_by_format() -> None:
    entity = CATALOGUE.example("Device", "keyValues")
    assert validate_entity(entity).ok
    entity["ipAddress"] = ["not-an-ip"]
    result = validate_entity(entity)
    assert [v.path for v in result.violations] == ["$.ipAddress[0]"]
    assert result.violations[0].rule == "schema.oneOf"


def test_models_know_their_context_and_attribute_kinds() -> None:
    model = CATALOGUE.model("ParkingSpot")
    assert model.context.endswith("dataModel.Parking/master/context.jsonld")
    assert model.attributes["refParkingSite"].kind == "Relationship"
    assert model.attributes["location"].kind == "GeoProperty"
    assert model.attributes["status"].kind == "Property"
    assert CATALOGUE.model("AirQualityObserved").attributes["dateObserved"].datetime


def test_unknown_model_suggests_close_names() -> None:
    with pytest.raises(CatalogueError, match="did you mean ParkingSpot"):
        CATALOGUE.model("ParkingSpt")


def test_toscana_profiles_ship() -> None:
    aq = CATALOGUE.profile("toscana/AirQualityObserved")
    assert aq.base == "AirQualityObserved"
    assert aq.attributes["temperature"].unit_code == "CEL"
    water = CATALOGUE.profile("toscana/WaterConsumptionObserved")
    assert water.personal["waterConsumption"].retention_days == 730
    assert "alarmTamper" in water.private
    assert "toscana/ParkingSpot" in CATALOGUE.profiles


@pytest.mark.parametrize(
    "text",
    [
        "attributes: {}\n",  # no base
        "base: ParkingSpot\nattributes: {width: {unitCode: metres}}\n",
        "base: ParkingSpot\npersonal: {name: {}}\n",
        "base: ParkingSpot\ncolour: red\n",
        "- a list\n",
        "base: [unclosed\n",
    ],
)
def test_malformed_profiles_are_refused(text: str) -> None:
    with pytest.raises(CatalogueError):
        Profile.from_text("city/Bad", text)


def test_profile_over_an_unknown_model_is_refused() -> None:
    with pytest.raises(CatalogueError, match="unknown base model"):
        CATALOGUE.with_profiles([Profile.from_text("city/X", "base: Nope\n")])


def test_attribution_and_licences_ship_with_the_data() -> None:
    root = resources.files("datamodels") / "catalogue"
    attribution = (root / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert "Smart Data Models Program (smartdatamodels.org)" in attribution
    assert "Redistribution and use in source and binary forms" in (
        root / "Consumption" / "LICENSE.md"
    ).read_text(encoding="utf-8")
    assert (root / "common" / "LICENSE-CC-BY-4.0.md").is_file()
