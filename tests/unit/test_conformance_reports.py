"""The conformance kit's reports (JUnit, JSON, HTML) and `contesto conformance payloads`."""

from __future__ import annotations

import json
import re
import shlex
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conformance_tests import MessageResult, Report, to_html, to_json, to_junit
from contesto._cli_conformance import conformance_app
from datamodels import Violation

SAMPLES = Path(__file__).parent / "data" / "payload-samples"
PROFILE = "toscana/AirQualityObserved"
WHEN = datetime(2026, 11, 23, 8, 15, tzinfo=UTC)
BAD = Violation(
    "$.pm10.value",
    "profile.minimum",
    "`pm10.value` must be >= 0 `GQ` (microgram per cubic metre); got -5",
    "PM10 in µg/m³",
)


def _report() -> Report:
    ok = MessageResult(
        "up.jsonl:1",
        "/json/k/aq-1/attrs",
        b'{"pm10": 3}',
        (),
        ({"id": "urn:ngsi-ld:AirQualityObserved:aq-1", "type": "AirQualityObserved"},),
        "k/aq-1",
        WHEN,
    )
    bad = MessageResult(
        "up.jsonl:2",
        "/json/k/aq-1/attrs",
        b'{"pm10": -5, "note": "<script>alert(1)</script>"}',
        (BAD, Violation("$.location", "schema.required", "`location` is required", "add it")),
        device="k/aq-1",
    )
    return Report("payloads", f"{PROFILE} (default mapping)", WHEN, (ok, bad))


def test_junit_has_one_testcase_per_message_and_failures_list_every_violation() -> None:
    root = ET.fromstring(to_junit(_report()))
    [suite] = root.findall("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["up.jsonl:1", "up.jsonl:2"]
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None
    assert failure.get("type") == "profile.minimum"
    assert failure.get("message", "").startswith("$.pm10.value: ")
    assert failure.text == (
        "$.pm10.value [profile.minimum] `pm10.value` must be >= 0 `GQ` (microgram per cubic "
        "metre); got -5 (hint: PM10 in µg/m³)\n"
        "$.location [schema.required] `location` is required (hint: add it)"
    )


def test_json_report_carries_verdicts_violations_and_entities() -> None:
    data = json.loads(to_json(_report()))
    assert (data["passed"], data["messages"], data["failed"]) == (False, 2, 1)
    assert data["target"] == "toscana/AirQualityObserved (default mapping)"
    first, second = data["results"]
    assert first["passed"] and first["observed_at"] == "2026-11-23T08:15:00Z"
    assert first["entities"][0]["id"] == "urn:ngsi-ld:AirQualityObserved:aq-1"
    assert second["violations"][0] == {
        "path": "$.pm10.value",
        "rule": "profile.minimum",
        "message": BAD.message,
        "hint": "PM10 in µg/m³",
    }
    assert data["timing"] is None


def test_html_is_self_contained_and_escapes_the_payload() -> None:
    page = to_html(_report())
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<style>" in page
    for external in ("<link", "src=", "http://", "https://", "@import"):
        assert external not in page
    assert "FAILED" in page and "PM10 in µg/m³" in page


def test_payloads_command_exit_codes_and_report_files(tmp_path: Path) -> None:
    runner = CliRunner()
    good = str(SAMPLES / "tts-v3-uplink.json")
    result = runner.invoke(conformance_app, ["payloads", good, "--profile", PROFILE])
    assert result.exit_code == 0, result.output
    assert "1 of 1 messages conform" in result.output

    document = json.loads((SAMPLES / "tts-v3-uplink.json").read_text())
    document["message"]["uplink_message"]["decoded_payload"]["pm10"] = -5
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))
    junit, html, report = tmp_path / "r.xml", tmp_path / "r.html", tmp_path / "r.json"
    result = runner.invoke(
        conformance_app,
        [
            "payloads",
            good,
            str(bad),
            "-p",
            PROFILE,
            "--junit",
            str(junit),
            "--html",
            str(html),
            "--json",
            str(report),
        ],
    )
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output and "$.pm10.value" in result.output
    assert ET.parse(junit).getroot().find("testsuite") is not None
    assert json.loads(report.read_text())["failed"] == 1
    assert html.read_text().startswith("<!DOCTYPE html>")


def test_payloads_command_usage_errors_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    good = str(SAMPLES / "tts-v3-uplink.json")
    result = runner.invoke(conformance_app, ["payloads", good, "--profile", "toscana/Nope"])
    assert result.exit_code == 2
    assert "toscana/AirQualityObserved" in result.output
    result = runner.invoke(
        conformance_app, ["payloads", str(tmp_path / "missing.json"), "-m", "AirQualityObserved"]
    )
    assert result.exit_code == 2
    assert "cannot read" in result.output
    result = runner.invoke(conformance_app, ["payloads", good])
    assert result.exit_code == 2
    assert "--model or --profile" in result.output


def test_the_vendor_docs_commands_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every `contesto conformance` line of docs/vendors.md's sh blocks, run from the root."""
    root = Path(__file__).parents[2]
    text = (root / "docs" / "vendors.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)
    commands = [line for block in blocks for line in block.splitlines() if line.strip()]
    assert len(commands) == 2
    monkeypatch.chdir(root)
    exits = []
    for command in commands:
        words = shlex.split(command)
        assert words[:2] == ["contesto", "conformance"]
        words = [str(tmp_path / w) if w.endswith(".json") and "/" not in w else w for w in words]
        exits.append(CliRunner().invoke(conformance_app, words[2:]).exit_code)
    assert exits == [0, 1]
    assert (
        json.loads((tmp_path / "report.json").read_text())["results"][0]["violations"][0]["path"]
        == "$.location"
    )
