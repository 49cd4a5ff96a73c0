"""`contesto models ...`: exit codes and the report a vendor reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from contesto._cli_models import models_app
from datamodels import load_catalogue

RUNNER = CliRunner()
DATA = Path(__file__).parent / "data" / "datamodels"
CATALOGUE = load_catalogue()


def _write(tmp_path: Path, name: str, data: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def test_list_shows_models_and_profiles() -> None:
    result = RUNNER.invoke(models_app, ["list"])
    assert result.exit_code == 0
    assert "WasteContainer" in result.output
    assert "toscana/ParkingSpot" in result.output


def test_show_model_and_profile() -> None:
    result = RUNNER.invoke(models_app, ["show", "ParkingSpot"])
    assert result.exit_code == 0
    assert "refParkingSite" in result.output and "Relationship" in result.output
    result = RUNNER.invoke(models_app, ["show", "toscana/WaterConsumptionObserved"])
    assert result.exit_code == 0
    assert "personal data: waterConsumption, kept 730 days" in result.output
    result = RUNNER.invoke(models_app, ["show", "ParkingSpot", "--schema"])
    assert json.loads(result.output)["$id"].endswith("ParkingSpot/schema.json")
    assert RUNNER.invoke(models_app, ["show", "Parking"]).exit_code == 2


def test_validate_valid_files_exits_zero(tmp_path: Path) -> None:
    spot = _write(tmp_path, "spot.json", CATALOGUE.example("ParkingSpot", "normalized"))
    batch = _write(
        tmp_path,
        "batch.json",
        [CATALOGUE.example("WasteContainer", "keyValues"), CATALOGUE.example("Alert")],
    )
    result = RUNNER.invoke(models_app, ["validate", spot, batch])
    assert result.exit_code == 0, result.output
    assert f"{batch}[1]: urn:ngsi-ld:Alert:Alert:1 [Alert, normalized] ok" in result.output
    assert result.output.rstrip().endswith("3 checked, 3 valid, 0 with violations")


def test_validate_report_golden(tmp_path: Path) -> None:
    entity = json.loads((DATA / "aq-fi-0001.json").read_text(encoding="utf-8"))
    entity["temperature"] = {"type": "Property", "value": 70.1, "unitCode": "F"}
    path = _write(tmp_path, "aq.json", entity)
    result = RUNNER.invoke(models_app, ["validate", path, "-p", "toscana/AirQualityObserved"])
    assert result.exit_code == 1
    assert result.output == (
        f"{path}: urn:ngsi-ld:AirQualityObserved:fi-0001 "
        "[AirQualityObserved + toscana/AirQualityObserved, normalized] FAIL (2 violations)\n"
        "  error $.temperature.value [profile.maximum] `temperature.value` must be <= 60 "
        "`CEL` (degree Celsius); got 70.1\n"
        "      hint: air temperature in °C\n"
        "  error $.temperature.unitCode [profile.unitCode] `temperature.unitCode` must be "
        '`CEL`; got `"F"`\n'
        '      hint: send `temperature` in `CEL` (degree Celsius) with "unitCode": "CEL" '
        "(UN/CEFACT)\n"
        "1 checked, 0 valid, 1 with violations\n"
    )


def test_validate_json_report_and_city_profile_file(tmp_path: Path) -> None:
    profile = tmp_path / "prato-ParkingSpot.yaml"
    profile.write_text("base: ParkingSpot\nattributes:\n  status: {enum: [free]}\n")
    spot = _write(tmp_path, "spot.json", CATALOGUE.example("ParkingSpot"))
    result = RUNNER.invoke(models_app, ["validate", spot, "--profile", str(profile), "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert row["ok"] and row["profile"] == "prato-ParkingSpot"


def test_validate_reports_unreadable_json(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json", encoding="utf-8")
    result = RUNNER.invoke(models_app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "FAIL cannot read JSON" in result.output


def test_validate_usage_errors_exit_two(tmp_path: Path) -> None:
    spot = _write(tmp_path, "spot.json", CATALOGUE.example("ParkingSpot"))
    assert RUNNER.invoke(models_app, ["validate", spot, "--model", "Nope"]).exit_code == 2
    assert RUNNER.invoke(models_app, ["validate", spot, "--form", "compact"]).exit_code == 2


def test_validate_with_explicit_model_and_form(tmp_path: Path) -> None:
    kv = CATALOGUE.example("WeatherObserved", "keyValues")
    kv["temperature"] = "warm"
    path = _write(tmp_path, "w.json", kv)
    result = RUNNER.invoke(
        models_app, ["validate", path, "--model", "WeatherObserved", "--form", "keyValues"]
    )
    assert result.exit_code == 1
    assert "error $.temperature [schema.type] `temperature` must be a number" in result.output
