"""The conformance kit's pure core: files -> samples -> verdicts, exactly as ingest decides."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conformance_tests import (
    Checker,
    MessageResult,
    TargetError,
    make_target,
    samples_from_text,
    timing_facts,
)
from datamodels import Violation, load_catalogue

SAMPLES = Path(__file__).parent / "data" / "payload-samples"
PROFILE = "toscana/AirQualityObserved"


def _ttn() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((SAMPLES / "tts-v3-uplink.json").read_text())
    return document


async def _check(
    text: str,
    *,
    model: str | None = None,
    profile: str | None = None,
    mapping: Any = None,
    topic: str | None = None,
) -> list[MessageResult]:
    catalogue = load_catalogue()
    target = make_target(catalogue, model, profile, mapping)
    return await Checker(target, catalogue).check(samples_from_text(text, "f.json", topic))


async def test_a_valid_ttn_uplink_passes_under_a_permissive_mapping() -> None:
    text = (SAMPLES / "tts-v3-uplink.json").read_text()
    for target in ({"model": "AirQualityObserved"}, {"profile": PROFILE}):
        [result] = await _check(text, **target)
        assert result.passed, result.violations
        assert result.topic == "v3/toscana-aria@ttn/devices/aq-fi-0001/up"
        assert result.device == "toscana-aria/aq-fi-0001"
        assert result.observed_at == datetime(2026, 11, 23, 8, 15, 2, 512345, tzinfo=UTC)
        [entity] = result.entities
        assert entity["id"] == "urn:ngsi-ld:AirQualityObserved:aq-fi-0001"


async def test_a_negative_pm10_fails_the_tuscan_profile_with_path_and_hint() -> None:
    document = _ttn()
    document["message"]["uplink_message"]["decoded_payload"]["pm10"] = -5
    [result] = await _check(json.dumps(document), profile=PROFILE)
    assert not result.passed
    by_rule = {v.rule: v for v in result.violations}
    assert set(by_rule) == {"schema.minimum", "profile.minimum"}
    violation = by_rule["profile.minimum"]
    assert violation.path == "$.pm10.value"
    assert "got -5" in violation.message
    assert "µg/m³" in violation.hint
    assert result.entities == ()


async def test_every_violation_is_reported_not_only_the_first_five() -> None:
    document = _ttn()
    decoded = document["message"]["uplink_message"]["decoded_payload"]
    decoded.update({"pm10": -1, "pm25": -1, "no2": -1, "o3": -1, "so2": -1, "co": -1})
    [result] = await _check(json.dumps(document), profile=PROFILE)
    paths = {v.path.split(".")[1] for v in result.violations}
    assert {"pm10", "pm25", "no2", "o3", "so2", "co"} <= paths


async def test_a_vendor_mapping_in_the_iot_agent_shape_is_applied() -> None:
    mapping = {
        "services": [
            {
                "apikey": "toscana-aria",
                "format": "ttn-v3",
                "entity_type": "AirQualityObserved",
                "attributes": [
                    {
                        "object_id": "humidity",
                        "name": "relativeHumidity",
                        "type": "Number",
                        "scale": 0.01,
                    },
                    {
                        "object_id": "pm10",
                        "name": "pm10",
                        "type": "Number",
                        "metadata": {"unitCode": {"type": "Text", "value": "GQ"}},
                    },
                ],
            }
        ]
    }
    text = (SAMPLES / "tts-v3-uplink.json").read_text()
    [result] = await _check(text, profile=PROFILE, mapping=mapping)
    # The mapping gives no unitCode for pm25, no2 and temperature: the profile wants them.
    assert {v.path for v in result.violations} == {
        "$.pm25.unitCode",
        "$.no2.unitCode",
        "$.temperature.unitCode",
    }
    mapping["services"][0]["attributes"] = [
        {"object_id": "humidity", "name": "relativeHumidity", "type": "Number", "scale": 0.01},
        *(
            {
                "object_id": n,
                "name": n,
                "type": "Number",
                "metadata": {"unitCode": {"type": "Text", "value": u}},
            }
            for n, u in (("pm10", "GQ"), ("pm25", "GQ"), ("no2", "GQ"), ("temperature", "CEL"))
        ),
    ]
    [result] = await _check(text, profile=PROFILE, mapping=mapping)
    assert result.passed, result.violations
    assert result.entities[0]["relativeHumidity"]["value"] == pytest.approx(0.585)


async def test_json_lines_with_a_broken_line_reports_that_line_as_undecodable() -> None:
    uplink = json.dumps(_ttn()["message"])
    text = f"{uplink}\n{{not json\n\n{uplink}\n"
    results = await _check(text, model="AirQualityObserved")
    assert [r.source for r in results] == ["f.json:1", "f.json:2", "f.json:4"]
    assert [r.passed for r in results] == [True, False, True]
    [violation] = results[1].violations
    assert violation.rule == "ingest.undecodable"
    assert violation.path == "line 2"
    # The uplinks carry no topic: it is read from their ids.
    assert results[0].topic == "v3/toscana-aria/devices/aq-fi-0001/up"


async def test_with_a_topic_a_broken_line_gets_the_decoders_own_verdict() -> None:
    text = '{"t": 21.5}\n{"t": \n'
    results = await _check(text, model="AirQualityObserved", topic="/json/k/aq-1/attrs/t")
    # Per-attribute topics take raw values: the decoder reads the broken text as a string.
    assert results[0].passed
    results = await _check(text, model="AirQualityObserved", topic="/json/k/aq-1/attrs")
    assert results[1].violations[0].rule == "ingest.undecodable"
    assert results[1].violations[0].hint


def test_the_sample_files_shapes_are_read_with_their_topics() -> None:
    text = (SAMPLES / "iotagent-json-mqtt.json").read_text()
    samples = samples_from_text(text, "io.json")
    assert [s.topic for s in samples][:2] == [
        "/json/TOSCANA4ARIA2026KEY/aq-fi-0001/attrs",
        "/TOSCANA4ARIA2026KEY/aq-fi-0001/attrs",
    ]
    assert samples[3].payload == b"23.4"
    chirpstack = samples_from_text((SAMPLES / "chirpstack-v4-up.json").read_text(), "c.json")
    assert chirpstack[0].topic is not None
    assert chirpstack[0].topic.startswith("application/0c1d5b7e")


def test_a_message_without_a_topic_is_reported_not_guessed() -> None:
    [sample] = samples_from_text('{"t": 1}', "m.json")
    assert sample.problem is not None
    assert sample.problem.rule == "ingest.unsupported-topic"


async def test_ngsi_ld_entities_are_validated_with_the_data_models() -> None:
    catalogue = load_catalogue()
    entity = catalogue.example("ParkingSpot", "normalized")
    [result] = await _check(json.dumps(entity), model="ParkingSpot")
    assert result.passed, result.violations
    assert result.device == entity["id"]
    entity["status"] = {"type": "Property", "value": "<broken>"}
    [result] = await _check(json.dumps([entity]), model="ParkingSpot")
    assert not result.passed
    assert any(v.path.startswith("$.status") for v in result.violations)


def test_an_unknown_target_is_a_usage_error_listing_the_known_ones() -> None:
    catalogue = load_catalogue()
    with pytest.raises(TargetError, match=r"Known profiles: .*toscana/AirQualityObserved"):
        make_target(catalogue, None, "toscana/Nope")
    with pytest.raises(TargetError, match=r"Known models: .*ParkingSpot"):
        make_target(catalogue, "Nope", None)
    with pytest.raises(TargetError, match="service group"):
        make_target(catalogue, "AirQualityObserved", None, {"services": [{"apikey": 1}]})


def _result(
    source: str, device: str, observed: datetime, received: datetime, payload: bytes
) -> MessageResult:
    return MessageResult(source, "t", payload, (), (), device, observed, received)


def test_timing_facts_rate_skew_duplicates_and_gaps() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    results = []
    minutes = [0, 1, 2, 3, 10, 11, 11]  # a 7-minute silence, then a repeat of minute 11
    for index, minute in enumerate(minutes):
        observed = start + timedelta(minutes=minute)
        results.append(
            _result(
                f"#{index}",
                "k/aq-1",
                observed,
                observed + timedelta(seconds=2 + index),
                f'{{"m": {minute}, "i": {index}}}'.encode(),
            )
        )
    results.append(
        _result("#7", "k/aq-1", start, start + timedelta(seconds=1), results[0].payload or b"")
    )
    facts = timing_facts(results, seconds=4.0)
    assert facts.rate_per_s == 2.0
    assert facts.skew_median_s == pytest.approx(4.5)
    assert facts.skew_max_s == 8.0
    assert [(d.source, d.first, d.why) for d in facts.duplicates] == [
        ("#6", "#5", "same device and timestamp"),
        ("#7", "#0", "identical payload"),
    ]
    [gap] = facts.gaps
    assert (gap.device, gap.seconds, gap.median_s) == ("k/aq-1", 420.0, 60.0)


def test_files_have_no_rate_nor_skew() -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    result = MessageResult("a", "t", b"{}", (Violation("$", "r", "m"),), (), "d", moment, None)
    facts = timing_facts([result])
    assert (facts.rate_per_s, facts.skew_median_s, facts.gaps) == (None, None, ())
