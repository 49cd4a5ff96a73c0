"""Transient entities (ETSI GS CIM 009 V1.8, the entity member `expiresAt`): the broker
deletes an entity once its expiresAt has passed.

The embedded store keeps no TTL monitor, and MongoDB's runs once a minute, so the broker
sweeps instead. Every write of an entity with an expiresAt records it in one platform
collection (`entity_expiry`, indexed by time), so finding what is due costs one indexed
read whatever the number of tenants. Each API process sweeps every
CONTESTO_EXPIRY_SWEEP_MS: it reads at most a batch of due records, deletes each entity on
condition that its stored expiresAt has passed (so a rewrite with a later expiresAt, or
another process that got there first, leaves nothing to do), reports the deletion as any
deletion is reported, and removes the record if it was not moved in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from context_broker._errors import NgsiLdError
from context_broker._store import translated
from context_broker._time import utc_now

if TYPE_CHECKING:
    from context_broker._service import Broker

Document = dict[str, Any]
log = logging.getLogger("context_broker.expiry")


@dataclass(slots=True, frozen=True)
class Expiring:
    """An entity due to expire: its tenant, id and the expiresAt recorded."""

    tenant: str | None
    entity_id: str
    at: datetime


def _key(tenant: str | None, entity_id: str) -> str:
    return f"{tenant or ''}\n{entity_id}"


class ExpirySchedule:
    """When each transient entity of every tenant expires (platform `entity_expiry`)."""

    def __init__(self, platform: AsyncDatabase[Document]) -> None:
        self.entries: AsyncCollection[Document] = platform["entity_expiry"]

    async def prepare(self) -> None:
        async with translated("expiry schedule"):
            await self.entries.create_index([("at", ASCENDING)], name="at")

    async def keep(self, tenant: str | None, docs: Iterable[Document]) -> None:
        """Record the expiresAt of those of `docs` that have one (one write for all)."""
        writes = [
            UpdateOne(
                {"_id": _key(tenant, doc["_id"])},
                {"$set": {"tenant": tenant, "entity": doc["_id"], "at": doc["expiresAt"]}},
                upsert=True,
            )
            for doc in docs
            if doc.get("expiresAt") is not None
        ]
        if writes:
            async with translated("expiry schedule"):
                await self.entries.bulk_write(writes, ordered=False)

    async def due(self, now: datetime, limit: int) -> list[Expiring]:
        async with translated("expiry schedule"):
            found = await self.entries.find(
                {"at": {"$lte": now}}, sort=[("at", ASCENDING)], limit=limit
            ).to_list()
        return [Expiring(entry["tenant"], entry["entity"], entry["at"]) for entry in found]

    async def done(self, expiring: Expiring) -> None:
        """Forget the record unless a later write moved it."""
        async with translated("expiry schedule"):
            await self.entries.delete_one(
                {"_id": _key(expiring.tenant, expiring.entity_id), "at": expiring.at}
            )


class ExpirySweep:
    """The background task of one process that deletes expired entities; started and
    stopped by the application's lifespan."""

    def __init__(
        self, broker: Broker, schedule: ExpirySchedule, interval_s: float, batch: int
    ) -> None:
        self.broker = broker
        self.schedule = schedule
        self.interval_s = interval_s
        self.batch = batch
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="expiry-sweep")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                while await self.sweep(utc_now()) == self.batch:
                    pass  # a full batch: more may be due at once
            except NgsiLdError as error:  # the store is away: try again next time
                log.warning("expiry sweep failed: %s", error.detail)
            except Exception:  # a sweep that dies would leave every expired entity in place
                log.exception("expiry sweep failed unexpectedly")
            await asyncio.sleep(self.interval_s)

    async def sweep(self, now: datetime) -> int:
        """Delete the entities due at `now`, at most a batch; how many records it handled."""
        due = await self.schedule.due(now, self.batch)
        for expiring in due:
            await self.broker.expire_entity(expiring.tenant, expiring.entity_id, now)
            await self.schedule.done(expiring)
        return len(due)
