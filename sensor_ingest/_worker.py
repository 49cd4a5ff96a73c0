"""An ingest worker: MQTT batches through the pipeline, acknowledged once stored.

Nothing is acknowledged before the outbox and the dead-letter store confirmed it; when
the store is down the worker keeps the batch and retries, and MQTT holds the rest. When
the outbox is past its limit the worker stops taking messages (back-pressure): the MQTT
broker stops sending once `receive_maximum` messages are unacknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Protocol

from broker_bridge import Backoff, OutboxStore, sleep_or_stop
from store_edge import StoreError

from ._decode import TOPIC_FILTERS
from ._messages import InboundMessage
from ._mqtt import Delivery, MqttFeed, MqttOptions
from ._pipeline import BatchOutcome, Pipeline

__all__ = ["BatchObserver", "IngestCounters", "IngestWorker"]

log = logging.getLogger("sensor_ingest.worker")

_OUTBOX_CHECK_EVERY_S = 0.5


@dataclass(slots=True)
class IngestCounters:
    """Running totals since start, for logs and tests."""

    messages: int = 0
    fragments: int = 0
    refused: int = 0
    paused_s: float = 0.0


class BatchObserver(Protocol):
    """Told of every batch once it is stored and acknowledged (for the metrics)."""

    def batch_done(self, messages: list[InboundMessage], outcome: BatchOutcome) -> None: ...


class IngestWorker:
    """Runs one MQTT feed through the pipeline until stopped."""

    def __init__(
        self,
        options: MqttOptions,
        pipeline: Pipeline,
        outbox: OutboxStore,
        *,
        outbox_limit: int = 2000,
        batch_size: int = 1000,
        batch_wait_s: float = 0.02,
        observer: BatchObserver | None = None,
    ) -> None:
        self._options = options
        self._pipeline = pipeline
        self._outbox = outbox
        self._outbox_limit = outbox_limit
        self._batch_size = batch_size
        self._batch_wait_s = batch_wait_s
        self._outbox_checked = 0.0
        self._observer = observer
        self._feed: MqttFeed | None = None
        self.counters = IngestCounters()
        self.ready = asyncio.Event()

    @property
    def mqtt_connected(self) -> bool:
        """Whether the worker's MQTT session is open now."""
        return self._feed is not None and self._feed.connected

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; unacknowledged messages stay with the MQTT broker."""
        async with MqttFeed(self._options, TOPIC_FILTERS) as feed:
            self._feed = feed
            self.ready.set()
            while not stop.is_set():
                await self._wait_for_room(stop)
                batch = await feed.next_batch(self._batch_size, self._batch_wait_s)
                if not batch:
                    continue
                outcome = await self._handle(batch, stop)
                if outcome is None:
                    return
                feed.acknowledge(batch)
                self._count(len(batch), outcome)
                if self._observer is not None:
                    self._observer.batch_done([d.message for d in batch], outcome)

    async def _handle(self, batch: list[Delivery], stop: asyncio.Event) -> BatchOutcome | None:
        """Process and store until it works; None if stopped first (nothing acknowledged).

        The store may be down (registry lookups and writes fail): the batch is kept and
        retried with backoff, and MQTT holds what comes after it.
        """
        backoff = Backoff()
        messages = [d.message for d in batch]
        while True:
            try:
                outcome = await self._pipeline.handle(messages)
            except StoreError as exc:
                delay = backoff.next_delay()
                log.warning("cannot process a batch (%.300s); retrying in %.1f s", exc, delay)
            else:
                return outcome
            if await sleep_or_stop(stop, delay):
                return None

    async def _wait_for_room(self, stop: asyncio.Event) -> None:
        now = time.monotonic()
        if now - self._outbox_checked < _OUTBOX_CHECK_EVERY_S:
            return
        self._outbox_checked = now
        while not stop.is_set():
            try:
                waiting = await self._outbox.size()
            except StoreError:
                return
            if waiting <= self._outbox_limit:
                break
            log.info("outbox holds %d records; pausing consumption", waiting)
            await sleep_or_stop(stop, _OUTBOX_CHECK_EVERY_S)
            self.counters.paused_s += _OUTBOX_CHECK_EVERY_S

    def _count(self, messages: int, outcome: BatchOutcome) -> None:
        counters = self.counters
        counters.messages += messages
        counters.fragments += sum(len(f) for f in outcome.fragments.values())
        counters.refused += len(outcome.refused)
