"""The ingest process's metrics and its status for the readiness checks.

Counters move with every stored batch (`IngestMetrics.batch_done`); once a second the
status reporter reads the outbox's depth and its oldest record's age (the ingest lag: how
long the newest data waits before the broker has it) and keeps them, with whether MQTT is
connected, for ingest's own `/health/ready` and in the status file the API's reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from broker_bridge import Outbox
from sensor_ingest import BatchOutcome, InboundMessage, IngestWorker, format_of
from store_edge import StoreError

__all__ = ["STATUS_EVERY_S", "IngestMetrics", "report_status"]

log = logging.getLogger("contesto.ingest")

STATUS_EVERY_S = 1.0


class IngestMetrics:
    """Messages by format and outcome, dead letters by reason, outbox depth and lag."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        registry = self.registry
        self.messages = Counter(
            "contesto_ingest_messages",
            "MQTT messages stored by ingest, by payload format and outcome",
            ["format", "outcome"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "contesto_dead_letters",
            "Messages turned into dead letters, by reason",
            ["reason"],
            registry=registry,
        )
        self.outbox_depth = Gauge(
            "contesto_outbox_depth",
            "Outbox records waiting for the broker",
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self.lag = Gauge(
            "contesto_ingest_lag_seconds",
            "Age of the oldest outbox record: how long the newest data waits for the broker",
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self.mqtt_connected = Gauge(
            "contesto_ingest_mqtt_connected",
            "1 while the ingest worker's MQTT session is open",
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        # The latest status `report_status` made (JSON), for ingest's own /health/ready.
        self.status: bytes | None = None

    def exposition(self) -> bytes:
        """This process's metrics in the Prometheus text format."""
        return generate_latest(self.registry)

    def batch_done(self, messages: list[InboundMessage], outcome: BatchOutcome) -> None:
        refused = {id(message) for message, _, _ in outcome.refused}
        for message in messages:
            verdict = "dead-letter" if id(message) in refused else "stored"
            self.messages.labels(format_of(message.topic) or "unknown", verdict).inc()
        for _, rejection, _ in outcome.refused:
            self.dead_letters.labels(rejection.reason).inc()


async def report_status(
    worker: IngestWorker,
    outbox: Outbox,
    metrics: IngestMetrics,
    status_file: Path | None,
    stop: asyncio.Event,
) -> None:
    """Every `STATUS_EVERY_S`, refresh the gauges and write the status file until `stop`."""
    while not stop.is_set():
        connected = worker.mqtt_connected
        depth, lag = await _outbox_state(outbox)
        metrics.mqtt_connected.set(1 if connected else 0)
        if depth is not None and lag is not None:
            metrics.outbox_depth.set(depth)
            metrics.lag.set(lag)
        status: dict[str, object] = {
            "at": time.time(),
            "mqttConnected": connected,
            "outboxDepth": depth,
            "lagSeconds": lag,
        }
        metrics.status = orjson.dumps(status)
        if status_file is not None:
            try:
                _write_atomically(status_file, metrics.status)
            except OSError as exc:  # the API then reports ingest's status as missing or stale
                log.warning("cannot write the ingest status to %s: %s", status_file, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), STATUS_EVERY_S)


async def _outbox_state(outbox: Outbox) -> tuple[int | None, float | None]:
    """The outbox's depth and its oldest record's age; None when the store does not answer."""
    try:
        depth = await outbox.size()
        queued_at = await outbox.oldest_queued_at()
    except StoreError as exc:
        log.debug("no outbox state this time: %s", exc)
        return None, None
    return depth, (datetime.now(UTC) - queued_at).total_seconds() if queued_at else 0.0


def _write_atomically(path: Path, data: bytes) -> None:
    """Readers see the old or the new status, never half of one."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_bytes(data)
    partial.replace(path)
