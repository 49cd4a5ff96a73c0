"""The durable outbox: entity fragments waiting to be written into a tenant's broker.

Ingest appends one record per tenant per batch of messages, and acknowledges the
messages to MQTT only after the append returned; the publisher removes a record only
after the broker confirmed every fragment of it. A publisher in the same process is woken
by each append instead of polling the store.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from bson import ObjectId
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from store_edge import store_operation

__all__ = ["Outbox", "OutboxRecord", "OutboxStore"]

COLLECTION = "outbox"


@dataclass(slots=True, frozen=True)
class OutboxRecord:
    """Fragments for one tenant, in the order their messages arrived."""

    id: Any
    tenant: str
    fragments: list[dict[str, Any]]
    queued_at: datetime


class OutboxStore(Protocol):
    """The outbox as ingest and the publisher see it; its errors are `store_edge`'s."""

    async def append(self, batches: dict[str, list[dict[str, Any]]]) -> None: ...
    async def wait_for_append(self, timeout_s: float) -> None: ...
    async def oldest(self, limit: int) -> list[OutboxRecord]: ...
    async def remove(self, records: list[OutboxRecord]) -> None: ...
    async def size(self) -> int: ...


class Outbox:
    """The `OutboxStore` on MongoDB: append, read oldest-first, remove what was delivered."""

    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self._records = database[COLLECTION]
        self._appended = asyncio.Event()

    @store_operation("an outbox append")
    async def append(self, batches: dict[str, list[dict[str, Any]]]) -> None:
        """Store each tenant's fragments durably; returns once the store confirmed."""
        if not batches:
            return
        now = datetime.now(UTC)
        await self._records.insert_many(
            [
                {"_id": ObjectId(), "tenant": tenant, "fragments": fragments, "queued": now}
                for tenant, fragments in batches.items()
                if fragments
            ],
            ordered=True,
        )
        self._appended.set()

    async def wait_for_append(self, timeout_s: float) -> None:
        """Return once this process appended since the last `oldest()`, or after `timeout_s`
        (records other processes append are only seen by reading)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._appended.wait(), timeout_s)

    @store_operation("an outbox read")
    async def oldest(self, limit: int) -> list[OutboxRecord]:
        """Up to `limit` records, oldest first."""
        self._appended.clear()
        cursor = self._records.find({}, sort=[("_id", ASCENDING)], limit=limit)
        return [
            OutboxRecord(doc["_id"], doc["tenant"], doc["fragments"], doc["queued"])
            async for doc in cursor
        ]

    @store_operation("an outbox removal")
    async def remove(self, records: list[OutboxRecord]) -> None:
        if records:
            await self._records.delete_many({"_id": {"$in": [r.id for r in records]}})

    @store_operation("the outbox's oldest record")
    async def oldest_queued_at(self) -> datetime | None:
        """When the oldest waiting record was appended; None when the outbox is empty.
        Unlike `oldest`, it leaves the publisher's wake-up alone."""
        found = await self._records.find_one({}, {"queued": 1}, sort=[("_id", ASCENDING)])
        if found is None:
            return None
        queued: datetime = found["queued"]
        return queued if queued.tzinfo is not None else queued.replace(tzinfo=UTC)

    @store_operation("the outbox's size")
    async def size(self) -> int:
        """Records waiting (an estimate from the store's metadata: cheap enough to poll)."""
        return await self._records.estimated_document_count()
