"""Transient entities and attributes (ETSI GS CIM 009 V1.9 clause 4.22, the member
`expiresAt`): the broker deletes an entity, attribute instance or sub-attribute once its
expiresAt has passed.

The embedded store keeps no TTL monitor, and MongoDB's runs once a minute, so the broker
sweeps instead. Every write of an entity with an expiresAt, its own or an attribute's,
records the earliest in one platform collection (`entity_expiry`, one record per entity,
indexed by time), so finding what is due costs one indexed read whatever the number of
tenants. Each API process sweeps every CONTESTO_EXPIRY_SWEEP_MS: it reads at most a batch
of due records; for each, the broker deletes the entity if its stored expiresAt has passed,
else removes its expired attributes (so a rewrite with a later expiresAt, or another process
that got there first, leaves nothing to do), reports that as any deletion is reported, and
the record moves to the entity's next expiresAt, or goes, unless a write moved it between.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from context_broker._cancel import cancel_and_wait
from context_broker._entities import next_expiry
from context_broker._errors import NgsiLdError
from context_broker._store import translated
from context_broker._time import utc_now

if TYPE_CHECKING:
    from context_broker._service import Broker

Document = dict[str, Any]
log = logging.getLogger("context_broker.expiry")


@dataclass(slots=True, frozen=True)
class Expiring:
    """An entity due to expire, whole or in part: its tenant, id and the time recorded."""

    tenant: str | None
    entity_id: str
    at: datetime
    writes: int | None  # None: recorded before records counted writes


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
        """Record when each of `docs` (entities as written) next expires, whole or in part,
        for those that do (one write for all)."""
        await self.keep_times(
            tenant, [(doc["_id"], at) for doc in docs if (at := next_expiry(doc)) is not None]
        )

    async def keep_times(self, tenant: str | None, times: Sequence[tuple[str, datetime]]) -> None:
        """Record that each entity expires, whole or in part, at the time given, unless it is
        due earlier already. A write may not see the whole entity (an upsert that updates,
        a field update), so a record can be early, never late: the sweep moves an early one
        on to the entity's real next time."""
        writes = [
            UpdateOne(
                {"_id": _key(tenant, entity_id)},
                {
                    "$min": {"at": at},
                    "$set": {"tenant": tenant, "entity": entity_id},
                    "$inc": {"writes": 1},
                },
                upsert=True,
            )
            for entity_id, at in times
        ]
        if writes:
            async with translated("expiry schedule"):
                await self.entries.bulk_write(writes, ordered=False)

    async def due(self, now: datetime, limit: int) -> list[Expiring]:
        async with translated("expiry schedule"):
            found = await self.entries.find(
                {"at": {"$lte": now}}, sort=[("at", ASCENDING)], limit=limit
            ).to_list()
        return [
            Expiring(entry["tenant"], entry["entity"], entry["at"], entry.get("writes"))
            for entry in found
        ]

    async def done(self, expiring: Expiring, next_at: datetime | None) -> None:
        """Move the record to the entity's next expiresAt, or forget it when there is none,
        unless a write recorded a time in between (the next sweep then looks again)."""
        unmoved = {
            "_id": _key(expiring.tenant, expiring.entity_id),
            "at": expiring.at,
            "writes": expiring.writes,
        }
        async with translated("expiry schedule"):
            if next_at is None:
                await self.entries.delete_one(unmoved)
            else:
                await self.entries.update_one(unmoved, {"$set": {"at": next_at}})


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
            await cancel_and_wait([self._task])
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
        """Delete what is due at `now` (entities, attributes), at most a batch of entities;
        how many records it handled."""
        due = await self.schedule.due(now, self.batch)
        for expiring in due:
            next_at = await self.broker.expire_entity(expiring.tenant, expiring.entity_id, now)
            await self.schedule.done(expiring, next_at)
        return len(due)
