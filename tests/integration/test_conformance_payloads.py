"""`contesto conformance mqtt` against a real Mosquitto, a vendor's device publishing."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import conformance_tests
import contesto._cli_conformance as cli
from sensor_ingest import MqttOptions
from sensor_ingest._mqtt import MqttPublisher

SAMPLES = Path(__file__).parents[1] / "unit" / "data" / "payload-samples"
TOPIC = "v3/toscana-aria@ttn/devices/aq-fi-0001/up"


def _uplink(observed: datetime, pm10: float = 23.4) -> bytes:
    document: dict[str, Any] = json.loads((SAMPLES / "tts-v3-uplink.json").read_text())
    message = document["message"]
    message["received_at"] = observed.isoformat().replace("+00:00", "Z")
    message["uplink_message"]["decoded_payload"]["pm10"] = pm10
    return json.dumps(message).encode()


def _when_subscribed(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """An event set once the command's listener is subscribed, so nothing is published
    before anyone listens."""
    subscribed = threading.Event()
    real_listen = conformance_tests.listen

    def listen(*args: Any, on_ready: Callable[[], None], **kwargs: Any) -> Any:
        def ready() -> None:
            on_ready()
            subscribed.set()

        return real_listen(*args, on_ready=ready, **kwargs)

    monkeypatch.setattr(conformance_tests, "listen", listen)  # the command imports it when run
    return subscribed


def test_mqtt_reports_verdicts_and_timing_of_a_live_device(
    mqtt_port: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    subscribed = _when_subscribed(monkeypatch)
    start = datetime.now(UTC) - timedelta(minutes=10)
    payloads = [
        _uplink(start),
        _uplink(start + timedelta(minutes=1)),
        _uplink(start + timedelta(minutes=2)),
        _uplink(start + timedelta(minutes=3), pm10=-5),
        _uplink(start + timedelta(minutes=9)),  # a six-minute silence
        _uplink(start),  # the first one again
    ]
    failures: list[BaseException] = []

    def device() -> None:
        try:
            assert subscribed.wait(30), "the command never subscribed"
            with MqttPublisher(MqttOptions(port=mqtt_port)) as publisher:
                for payload in payloads:
                    publisher.publish(TOPIC, payload)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=device)
    thread.start()
    report = tmp_path / "report.json"
    junit = tmp_path / "report.xml"
    result = CliRunner().invoke(
        cli.conformance_app,
        [
            "mqtt",
            "--port",
            str(mqtt_port),
            "--topic",
            "v3/+/devices/+/up",
            "--count",
            "6",
            "--seconds",
            "60",
            "--profile",
            "toscana/AirQualityObserved",
            "--json",
            str(report),
            "--junit",
            str(junit),
        ],
    )
    thread.join(30)
    assert not failures, failures
    assert result.exit_code == 1, result.output
    assert "5 of 6 messages conform" in result.output

    data = json.loads(report.read_text())
    assert (data["messages"], data["failed"]) == (6, 1)
    [failed] = [r for r in data["results"] if not r["passed"]]
    assert {v["path"] for v in failed["violations"]} == {"$.pm10.value"}
    assert all(
        r["topic"] == TOPIC and r["device"] == "toscana-aria/aq-fi-0001" for r in data["results"]
    )
    timing = data["timing"]
    assert timing["messages"] == 6 and timing["rate_per_s"] > 0
    # Arrival is up to ten minutes after the payloads' timestamps.
    assert 0 < timing["skew_median_s"] <= timing["skew_max_s"] < 11 * 60
    assert [d["why"] for d in timing["duplicates"]] == ["identical payload"]
    [gap] = timing["gaps"]
    assert (gap["seconds"], gap["median_s"]) == (360.0, 60.0)
    assert "testcase" in junit.read_text()


def test_mqtt_with_no_messages_does_not_pass(
    mqtt_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = CliRunner().invoke(
        cli.conformance_app,
        [
            "mqtt",
            "--port",
            str(mqtt_port),
            "--topic",
            "nobody/+",
            "--seconds",
            "1",
            "-m",
            "AirQualityObserved",
        ],
    )
    assert result.exit_code == 1, result.output
    assert "no messages were checked" in result.output


def test_mqtt_unreachable_broker_is_a_usage_error() -> None:
    result = CliRunner().invoke(
        cli.conformance_app,
        ["mqtt", "--port", "1", "--connect-timeout", "1", "-m", "AirQualityObserved"],
    )
    assert result.exit_code == 2, result.output
    assert "127.0.0.1:1" in result.output
