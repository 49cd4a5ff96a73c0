"""Moves fragments from the outbox into each tenant's NGSI-LD broker, exactly as confirmed.

One pass reads the oldest outbox records, merges each tenant's fragments per entity
(the latest observation of each attribute wins), and upserts them in batches. A record
leaves the outbox only when the broker confirmed all of it; a broker that is down or
answers 5xx is retried with exponential backoff and jitter, for as long as it takes.

A pass that found less than a full pass of records is followed by a pause of `linger_s`,
so that at a steady rate each pass writes many messages' worth of entities at once (the
store's cost is per entity written, and an entity's messages within a pass are merged);
an idle publisher sleeps until ingest appends to the outbox.

The copies the sharing stage makes of confirmed fragments are queued in the outbox like
any fragment; the stage's withdrawal of deleted copies runs between passes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ngsild_client import NgsiLdClient, Refused, RetryLater

from ._backoff import Backoff, sleep_or_stop
from ._outbox import OutboxRecord, OutboxStore
from ._rejected import OnRejected, RejectedFragment
from ._sharing_stage import SharingStage

__all__ = ["PublishReport", "Publisher", "coalesce"]

log = logging.getLogger("broker_bridge.publisher")


@dataclass(slots=True)
class PublishReport:
    """What one pass did: records removed, entities written, fragments refused."""

    records: int = 0
    entities: int = 0
    rejected: int = 0
    retry: bool = False


def coalesce(fragments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One fragment per entity: each attribute from the fragment that observed it last.

    Equal or missing `observedAt` keep arrival order, so redelivering a message leaves
    the same state as delivering it once.
    """
    merged: dict[str, dict[str, Any]] = {}
    for fragment in fragments:
        current = merged.get(fragment["id"])
        if current is None:
            merged[fragment["id"]] = dict(fragment)
            continue
        for name, attribute in fragment.items():
            if name in ("id", "type"):
                continue
            older = current.get(name)
            if older is None or _observed(attribute) >= _observed(older):
                current[name] = attribute
    return list(merged.values())


def _observed(attribute: Any) -> str:
    if isinstance(attribute, dict):
        stamp = attribute.get("observedAt")
        if isinstance(stamp, str):
            return stamp
    return ""


class Publisher:
    """Drains the outbox into the targets; run `run()` as a task, or `publish_once()`."""

    def __init__(
        self,
        outbox: OutboxStore,
        clients: Callable[[str], NgsiLdClient],
        on_rejected: OnRejected,
        *,
        sharing: SharingStage | None = None,
        records_per_pass: int = 200,
        entities_per_request: int = 200,
        linger_s: float = 0.0,
        idle_poll_s: float = 0.5,
        backoff_base_s: float = 0.2,
        backoff_cap_s: float = 10.0,
    ) -> None:
        self._outbox = outbox
        self._clients = clients
        self._on_rejected = on_rejected
        self._sharing = sharing
        self._records_per_pass = records_per_pass
        self._chunk = entities_per_request
        self._linger_s = linger_s
        self._idle_poll_s = idle_poll_s
        self._backoff_base_s = backoff_base_s
        self._backoff_cap_s = backoff_cap_s

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set: lingering after a partial pass, waiting for an
        append when idle (or `idle_poll_s`, for other processes' appends), backing off on
        failures."""
        backoff = Backoff(self._backoff_base_s, self._backoff_cap_s)
        while not stop.is_set():
            if self._sharing is not None:
                await self._sharing.between_passes()
            try:
                report = await self.publish_once()
            except Exception:
                log.exception("outbox pass failed; retrying")
                report = PublishReport(retry=True)
            if report.retry:
                await sleep_or_stop(stop, backoff.next_delay())
                continue
            backoff.reset()
            if report.records == 0:
                await self._wait_for_append(stop)
            elif report.records < self._records_per_pass and self._linger_s > 0:
                await sleep_or_stop(stop, self._linger_s)

    async def _wait_for_append(self, stop: asyncio.Event) -> None:
        appended = asyncio.ensure_future(self._outbox.wait_for_append(self._idle_poll_s))
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait([appended, stopped], return_when=asyncio.FIRST_COMPLETED)
        appended.cancel()
        stopped.cancel()

    async def publish_once(self) -> PublishReport:
        """One pass over the oldest records; returns what it did."""
        records = await self._outbox.oldest(self._records_per_pass)
        report = PublishReport()
        if not records:
            return report
        by_tenant: dict[str, list[OutboxRecord]] = {}
        for record in records:
            by_tenant.setdefault(record.tenant, []).append(record)
        outcomes = await asyncio.gather(
            *(self._deliver(tenant, group) for tenant, group in by_tenant.items())
        )
        delivered: list[OutboxRecord] = []
        rejected: list[RejectedFragment] = []
        copies: dict[str, list[dict[str, Any]]] = {}
        for (tenant, group), outcome in zip(by_tenant.items(), outcomes, strict=True):
            if outcome is None:
                report.retry = True
                continue
            confirmed, refused = outcome
            delivered.extend(group)
            rejected.extend(refused)
            report.entities += len(confirmed)
            if self._sharing is not None and confirmed:
                made, unplaced = await self._sharing.copies(tenant, confirmed)
                for target, fragments in made.items():
                    copies.setdefault(target, []).extend(fragments)
                rejected.extend(unplaced)
        if rejected:
            await self._on_rejected(rejected)
        # Copies are queued before their source leaves the outbox: a crash in between
        # makes them again from the same records, which is harmless.
        await self._outbox.append(copies)
        await self._outbox.remove(delivered)
        report.records = len(delivered)
        report.rejected = len(rejected)
        return report

    async def _deliver(
        self, tenant: str, records: list[OutboxRecord]
    ) -> tuple[list[dict[str, Any]], list[RejectedFragment]] | None:
        """Write one tenant's records; None when the target must be retried later."""
        fragments = coalesce([f for record in records for f in record.fragments])
        client = self._clients(tenant)
        refused: list[RejectedFragment] = []
        try:
            for start in range(0, len(fragments), self._chunk):
                chunk = fragments[start : start + self._chunk]
                refused.extend(await self._upsert(tenant, client, chunk))
        except RetryLater as exc:
            log.warning("tenant %s: %s; will retry", tenant, exc)
            return None
        refused_ids = {r.fragment["id"] for r in refused}
        return [f for f in fragments if f["id"] not in refused_ids], refused

    async def _upsert(
        self, tenant: str, client: NgsiLdClient, chunk: list[dict[str, Any]]
    ) -> list[RejectedFragment]:
        try:
            refusals = await client.batch_upsert(chunk)
        except Refused as exc:
            log.error(
                "tenant %s: the broker refused a whole batch (%d): %s",
                tenant,
                exc.status,
                exc.detail,
            )
            return [
                RejectedFragment(tenant, fragment, exc.status, exc.detail) for fragment in chunk
            ]
        return [RejectedFragment(tenant, r.entity, r.status, r.reason) for r in refusals]
