"""The durable notification queue: the platform database's `notifications` collection.

A write's notifications are queued (journaled) before the write is acknowledged
(`_sink.py`); notifiers claim them under a lease, and delete them once delivered or
given up. A notifier that dies leaves its claims to expire: another claims them again,
so a notification is sent at least once, and more than once only when a notifier died
between sending and deleting.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from context_broker._store import translated

Document = dict[str, Any]
NEVER = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True, frozen=True)
class Queued:
    """One notification to send to one endpoint, as the queue holds it."""

    id: ObjectId
    tenant: str | None
    subscription_id: str
    endpoint: str
    headers: dict[str, str]
    body: bytes
    notifier_info: dict[str, str]
    attempts: int
    queued_at: datetime
    claim: str

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> Queued:
        return cls(
            id=record["_id"],
            tenant=record["tenant"],
            subscription_id=record["subscription"],
            endpoint=record["endpoint"],
            headers=dict(record["headers"]),
            body=bytes(record["body"]),
            notifier_info=dict(record.get("notifierInfo", {})),
            attempts=record["attempts"],
            queued_at=record["queuedAt"],
            claim=record["claim"],
        )


@dataclass(slots=True, frozen=True)
class Claim:
    """A notifier's hold on records: its token, until when."""

    token: str
    until: datetime


def queue_record(
    tenant: str | None,
    subscription_id: str,
    endpoint: str,
    headers: Mapping[str, str],
    body: bytes,
    notifier_info: Mapping[str, str],
    now: datetime,
    claim: Claim | None = None,
) -> Document:
    """A new queue record, due at once: free for any notifier, or already held under
    `claim` by the notifier it is handed to."""
    return {
        "_id": ObjectId(),
        "tenant": tenant,
        "subscription": subscription_id,
        "endpoint": endpoint,
        "headers": dict(headers),
        "body": body,
        "notifierInfo": dict(notifier_info),
        "attempts": 0,
        "queuedAt": now,
        "due": now,
        "lease": NEVER if claim is None else claim.until,
        "claim": None if claim is None else claim.token,
    }


class NotificationQueue:
    """Queued notifications of every tenant (each record names its tenant)."""

    def __init__(self, platform: AsyncDatabase[Document]) -> None:
        self.records: AsyncCollection[Document] = platform["notifications"]

    async def prepare(self) -> None:
        async with translated("notification queue"):
            await self.records.create_index([("due", ASCENDING)], name="due")
            await self.records.create_index([("claim", ASCENDING)], name="claim")

    async def add(self, records: Sequence[Document]) -> None:
        """Queue records durably (the store's journaled write concern)."""
        async with translated("notification queue"):
            await self.records.insert_many(list(records), ordered=False)

    async def claim(
        self,
        now: datetime,
        limit: int,
        lease_s: float,
        busy_endpoints: Sequence[str] = (),
    ) -> list[Queued]:
        """Claim up to `limit` due records, oldest first, for `lease_s` seconds; records of
        `busy_endpoints` stay for later. Records another notifier claimed in between are
        not returned."""
        query: Document = {"due": {"$lte": now}, "lease": {"$lte": now}}
        if busy_endpoints:
            query["endpoint"] = {"$nin": list(busy_endpoints)}
        token = uuid.uuid4().hex
        async with translated("notification queue"):
            found = await self.records.find(query, {"_id": 1}, sort=[("due", ASCENDING)]).to_list(
                limit
            )
            if not found:
                return []
            ids = [record["_id"] for record in found]
            until = now + timedelta(seconds=lease_s)
            await self.records.update_many(
                {"_id": {"$in": ids}, "lease": {"$lte": now}},
                {"$set": {"lease": until, "claim": token}},
            )
            claimed = await self.records.find({"claim": token}).to_list(None)
        claimed.sort(key=lambda record: record["_id"])
        return [Queued.of(record) for record in claimed]

    async def done(self, records: Sequence[Queued]) -> None:
        """Forget records delivered or given up (only while this notifier's claim holds)."""
        if not records:
            return
        async with translated("notification queue"):
            await self.records.delete_many(
                {
                    "_id": {"$in": [record.id for record in records]},
                    "claim": {"$in": sorted({record.claim for record in records})},
                }
            )

    async def retry(self, retries: Sequence[tuple[Queued, datetime]]) -> None:
        """Put records back, each due at its time, with one more attempt counted."""
        if not retries:
            return
        async with translated("notification queue"):
            await self.records.bulk_write(
                [
                    UpdateOne(
                        {"_id": record.id, "claim": record.claim},
                        {
                            "$set": {"due": due, "lease": NEVER, "claim": None},
                            "$inc": {"attempts": 1},
                        },
                    )
                    for record, due in retries
                ],
                ordered=False,
            )

    async def release(self, records: Sequence[Queued]) -> None:
        """Give claimed records back unsent, due as they were (a notifier stopping)."""
        if not records:
            return
        async with translated("notification queue"):
            await self.records.update_many(
                {
                    "_id": {"$in": [record.id for record in records]},
                    "claim": {"$in": sorted({record.claim for record in records})},
                },
                {"$set": {"lease": NEVER, "claim": None}},
            )

    async def pending(self) -> int:
        """How many notifications wait, of every tenant."""
        async with translated("notification queue"):
            return await self.records.count_documents({})
