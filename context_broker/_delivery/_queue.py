"""The durable notification queue: the platform database's `notifications` collection.

A write's notifications are queued (journaled) before the write is acknowledged
(`_sink.py`). A record holds the notifications to one endpoint of one tenant that writes
made together queued, in order (`notifications`); the store's cost is per record, so a
write that notifies 100 subscriptions costs one record, not 100. Notifiers claim records
under a lease, delete them once all their notifications were delivered or given up, and
otherwise keep only those to send again. A notifier that dies leaves its claims to expire:
another claims them again, so a notification is sent at least once, and more than once
only when a notifier died between sending and deleting.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

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
    index: int = 0
    """Its place among its record's notifications (the record is `id`)."""

    @classmethod
    def each(cls, record: Mapping[str, Any]) -> list[Queued]:
        """The notifications of a queue record, in the order they were queued."""
        # A record queued before records held several notifications is one notification.
        notifications = record.get("notifications") or [record]
        return [
            cls(
                id=record["_id"],
                tenant=record["tenant"],
                subscription_id=notification["subscription"],
                endpoint=record["endpoint"],
                headers=dict(notification["headers"]),
                body=bytes(notification["body"]),
                notifier_info=dict(notification.get("notifierInfo", {})),
                attempts=record["attempts"],
                queued_at=record["queuedAt"],
                claim=record["claim"],
                index=index,
            )
            for index, notification in enumerate(notifications)
        ]

    def entry(self) -> Document:
        """As its record holds it."""
        return notification_entry(self.subscription_id, self.headers, self.body, self.notifier_info)


@dataclass(slots=True, frozen=True)
class Claim:
    """A notifier's hold on records: its token, until when."""

    token: str
    until: datetime


def notification_entry(
    subscription_id: str,
    headers: Mapping[str, str],
    body: bytes,
    notifier_info: Mapping[str, str],
) -> Document:
    """One notification as a queue record holds it (the endpoint is the record's)."""
    return {
        "subscription": subscription_id,
        "headers": dict(headers),
        "body": body,
        "notifierInfo": dict(notifier_info),
    }


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
    """A new queue record of one notification (see `parcel_record`)."""
    entry = notification_entry(subscription_id, headers, body, notifier_info)
    return parcel_record(tenant, endpoint, [entry], now, claim)


def parcel_record(
    tenant: str | None,
    endpoint: str,
    notifications: Sequence[Document],
    now: datetime,
    claim: Claim | None = None,
) -> Document:
    """A new queue record of notifications to one endpoint (`notification_entry`), due at
    once: free for any notifier, or already held under `claim` by the notifier it is
    handed to."""
    return {
        "_id": ObjectId(),
        "tenant": tenant,
        "endpoint": endpoint,
        "notifications": list(notifications),
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
            if "claim" in await self.records.index_information():
                # No read needs it any more; it only made every insert and delete dearer.
                with contextlib.suppress(OperationFailure):  # another process dropped it
                    await self.records.drop_index("claim")

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
        """Claim up to `limit` due records, oldest first, for `lease_s` seconds, and answer
        their notifications; records of `busy_endpoints` stay for later. Records another
        notifier claimed in between are not returned."""
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
            claimed = await self.records.find({"_id": {"$in": ids}, "claim": token}).to_list(None)
        claimed.sort(key=lambda record: record["_id"])
        return [queued for record in claimed for queued in Queued.each(record)]

    async def done(self, records: Sequence[Queued]) -> None:
        """Forget the records of these notifications, each of which was delivered or given
        up with all its record's others (only while this notifier's claim holds)."""
        if not records:
            return
        async with translated("notification queue"):
            await self.records.delete_many(
                {
                    "_id": {"$in": list({record.id: None for record in records})},
                    "claim": {"$in": sorted({record.claim for record in records})},
                }
            )

    async def retry(
        self, retries: Sequence[tuple[Queued, datetime]], *, attempted: bool = True
    ) -> None:
        """Put records back holding only these notifications, due at the latest of their
        times, with one more attempt counted if `attempted`; the record's other
        notifications are forgotten (delivered or given up)."""
        if not retries:
            return
        by_record: dict[ObjectId, tuple[list[Queued], datetime]] = {}
        for record, due in retries:
            kept, latest = by_record.setdefault(record.id, ([], due))
            kept.append(record)
            by_record[record.id] = (kept, max(latest, due))
        updates = []
        for kept, due in by_record.values():
            kept.sort(key=lambda record: record.index)
            update: Document = {
                "$set": {
                    "notifications": [record.entry() for record in kept],
                    "due": due,
                    "lease": NEVER,
                    "claim": None,
                }
            }
            if attempted:
                update["$inc"] = {"attempts": 1}
            updates.append(UpdateOne({"_id": kept[0].id, "claim": kept[0].claim}, update))
        async with translated("notification queue"):
            await self.records.bulk_write(updates, ordered=False)

    async def pending(self) -> int:
        """How many notifications wait, of every tenant."""
        async with translated("notification queue"):
            return await self.records.count_documents({})
