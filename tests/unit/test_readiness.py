"""The API's readiness covers every ingest worker of the stack: each one's status must be
fresh and its MQTT session up; the shared outbox is checked once."""

from __future__ import annotations

import time

import orjson

from context_broker._health import Readiness, ReadinessLimits, health_body
from context_broker._settings import BrokerSettings

LIMITS = ReadinessLimits(max_ingest_lag_s=30.0, max_outbox_depth=100, max_status_age_s=5.0)


def status(*, age_s: float = 0.0, connected: bool = True) -> bytes:
    return orjson.dumps(
        {"at": time.time() - age_s, "mqttConnected": connected, "outboxDepth": 0, "lagSeconds": 0}
    )


def verdict(*statuses: bytes | None) -> tuple[bool, dict[str, dict[str, object]]]:
    readiness = Readiness(lambda: False, [lambda s=s: s for s in statuses], LIMITS)
    ok, body = health_body(readiness.checks())
    return ok, orjson.loads(body)["checks"]


def test_all_workers_reporting_is_ready_with_one_check_of_the_outbox() -> None:
    ok, checks = verdict(status(), status(), status())
    assert ok
    assert set(checks) == {
        "store",
        "ingest",
        "mqtt",
        "outbox",
        "ingestLag",
        "ingest-1",
        "mqtt-1",
        "ingest-2",
        "mqtt-2",
    }


def test_a_worker_without_status_or_with_a_stale_one_makes_the_api_not_ready() -> None:
    ok, checks = verdict(status(), None)
    assert not ok
    assert checks["ingest-1"] == {"ok": False, "detail": "ingest worker 1 has written no status"}
    assert checks["ingest"] == {"ok": True}

    ok, checks = verdict(status(), status(age_s=9.0))
    assert not ok
    assert checks["ingest-1"]["detail"] == "ingest worker 1's status is 9 s old"


def test_a_worker_off_mqtt_is_named() -> None:
    ok, checks = verdict(status(), status(connected=False))
    assert not ok
    assert checks["mqtt-1"] == {
        "ok": False,
        "detail": "ingest worker 1 is not connected to the MQTT broker",
    }


def test_a_lone_ingest_process_keeps_its_names() -> None:
    ok, checks = verdict(None)
    assert not ok
    assert checks["ingest"]["detail"] == "the ingest process has written no status"


def test_the_status_files_setting_names_each_worker_in_order() -> None:
    settings = BrokerSettings(ingest_status_file="/v/ingest-status.json:/v/ingest-status-1.json")
    assert [str(p) for p in settings.ingest_status_paths()] == [
        "/v/ingest-status.json",
        "/v/ingest-status-1.json",
    ]
    assert BrokerSettings(ingest_status_file=None).ingest_status_paths() == []
