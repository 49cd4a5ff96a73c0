"""A running `contesto up` as its operator sees it: one scrape of the API's /metrics shows
the ingest process's counters too, readiness covers MQTT and ingest, and with
CONTESTO_LOG_FORMAT=json every log line is a JSON object carrying the request id."""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections.abc import Callable, Iterator

import httpx
import orjson
import pytest
from _stack_up import Up, free_port

from sensor_ingest._mqtt import MqttOptions, MqttPublisher

pytestmark = pytest.mark.integration

STORED = 'contesto_ingest_messages_total{format="iotagent-json",outcome="stored"}'


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """One stack for the module: starting one takes most of the time."""
    env = {"CONTESTO_LOG_FORMAT": "json", "CONTESTO_ACCESS_LOG": "true"}
    running = Up(tmp_path_factory.mktemp("stack"), free_port(), env=env)
    try:
        running.wait_until_up()
        yield running
    finally:
        running.close()


def _provision(up: Up, tenant: str, key: str) -> None:
    group = {
        "services": [
            {
                "apikey": key,
                "entity_type": "Probe",
                "resource": "/iot/json",
                "attributes": [{"object_id": "t", "name": "temperature", "type": "Property"}],
            }
        ]
    }
    answer = httpx.post(
        f"http://127.0.0.1:{up.provisioning_port}/iot/services",
        json=group,
        headers={"fiware-service": tenant, "fiware-servicepath": "/"},
        timeout=20.0,
    )
    assert answer.status_code == 201, answer.text


def _metric(exposition: str, sample: str) -> float:
    for line in exposition.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout_s} s")
        time.sleep(0.2)


def test_one_scrape_shows_ingest_and_readiness_covers_it(up: Up) -> None:
    """An MQTT message that went through moves the ingest counter on the API's /metrics;
    /health/ready reports the store, ingest, MQTT, outbox and lag checks, all passing;
    ingest's own port answers its health and metrics too."""
    base = f"http://127.0.0.1:{up.port}"
    tenant, key = f"t{secrets.token_hex(4)}", f"k{secrets.token_hex(4)}"
    _provision(up, tenant, key)
    assert _metric(httpx.get(f"{base}/metrics").text, STORED) == 0

    with MqttPublisher(MqttOptions(port=up.mqtt_port)) as mqtt:
        mqtt.publish(f"/json/{key}/probe-1/attrs", orjson.dumps({"t": 21.5}))
    _until(
        lambda: _metric(httpx.get(f"{base}/metrics").text, STORED) == 1,
        15,
        "the ingest counter did not reach 1 on the API's /metrics",
    )

    def ready() -> bool:
        return httpx.get(f"{base}/health/ready").status_code == 200

    _until(ready, 10, "the stack did not become ready")
    checks = httpx.get(f"{base}/health/ready").json()["checks"]
    assert set(checks) == {"store", "ingest", "mqtt", "outbox", "ingestLag"}
    assert all(check["ok"] for check in checks.values())

    # Ingest answers its own probes and scrape on the provisioning port, without a key.
    ingest = f"http://127.0.0.1:{up.provisioning_port}"
    assert httpx.get(f"{ingest}/health/live").status_code == 200
    own = httpx.get(f"{ingest}/health/ready")
    assert own.status_code == 200, own.text
    assert set(own.json()["checks"]) == {"ingest", "mqtt", "outbox", "ingestLag"}
    assert _metric(httpx.get(f"{ingest}/metrics").text, STORED) == 1


def test_json_logs_carry_the_request_id(up: Up) -> None:
    """With CONTESTO_LOG_FORMAT=json the API's log lines are JSON objects with time, level,
    logger, message and the request id the client sent (echoed in the answer); the ingest
    process's lines are JSON too."""
    answer = httpx.get(f"{up.url}/types", headers={"X-Request-Id": "operator-check-7"})
    assert answer.headers["x-request-id"] == "operator-check-7"

    def logged() -> list[dict[str, object]]:
        lines = [line for line in up.output().splitlines() if line.startswith("{")]
        return [orjson.loads(line) for line in lines]

    _until(
        lambda: any(entry["requestId"] == "operator-check-7" for entry in logged()),
        5,
        "no log line with the request id",
    )
    entry = next(entry for entry in logged() if entry["requestId"] == "operator-check-7")
    assert {"time", "level", "logger", "message", "requestId"} <= entry.keys()
    assert "/ngsi-ld/v1/types" in str(entry["message"])
    ingest_lines = (up.data_dir / "ingest.log").read_text().splitlines()
    ingest_logged = [orjson.loads(line) for line in ingest_lines if line.startswith("{")]
    assert any(str(entry["logger"]).startswith("sensor_ingest") for entry in ingest_logged)


def test_a_restarted_child_is_counted_and_readiness_follows_it(up: Up) -> None:
    """Killing the ingest process makes the API not ready (ingest check failed) until the
    supervisor restarted it; the restart is counted on /metrics."""
    base = f"http://127.0.0.1:{up.port}"
    restarts = 'contesto_child_restarts_total{child="ingest"}'
    assert _metric(httpx.get(f"{base}/metrics").text, restarts) == 0
    os.kill(up.children()["ingest"], signal.SIGKILL)

    def ingest_failed() -> bool:
        answer = httpx.get(f"{base}/health/ready")
        return answer.status_code == 503 and not answer.json()["checks"]["ingest"]["ok"]

    _until(ingest_failed, 10, "the API did not report the dead ingest process")
    up.wait_for_output("the ingest process runs again", timeout_s=30)
    _until(
        lambda: httpx.get(f"{base}/health/ready").status_code == 200,
        15,
        "the stack was not ready again",
    )
    assert _metric(httpx.get(f"{base}/metrics").text, restarts) == 1
