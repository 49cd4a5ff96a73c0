"""A tenant's subscriptions in its own database (`subscriptions` collection): the only module
of the subscription feature that speaks to MongoDB."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from context_broker._store import translated

Document = dict[str, Any]


class SubscriptionRepository:
    """One tenant's subscriptions, keyed by id; `v` counts writes for optimistic updates."""

    def __init__(self, database: AsyncDatabase[Document], time_ms: int) -> None:
        self.subscriptions: AsyncCollection[Document] = database["subscriptions"]
        self.versions: AsyncCollection[Document] = database["subscription_version"]
        self._ms = time_ms

    async def insert(self, doc: Document) -> None:
        async with translated(f"subscription {doc['_id']}"):
            await self.subscriptions.insert_one({**doc, "v": 1})

    async def get(self, subscription_id: str) -> Document | None:
        async with translated(f"subscription {subscription_id}"):
            return await self.subscriptions.find_one({"_id": subscription_id}, max_time_ms=self._ms)

    async def replace(self, doc: Document, expected_version: int) -> bool:
        """Write a changed subscription if nobody wrote it since it was read. The delivery
        status (`sent`) is left as the notifier last wrote it."""
        written = {key: value for key, value in doc.items() if key != "sent"}
        written["v"] = expected_version + 1
        async with translated(f"subscription {doc['_id']}"):
            result = await self.subscriptions.update_one(
                {"_id": doc["_id"], "v": expected_version},
                {"$set": {k: v for k, v in written.items() if k != "_id"}, "$unset": _absent(doc)},
            )
        return result.matched_count == 1

    async def delete(self, subscription_id: str) -> bool:
        async with translated(f"subscription {subscription_id}"):
            result = await self.subscriptions.delete_one({"_id": subscription_id})
        return result.deleted_count == 1

    async def page(self, offset: int, limit: int) -> list[Document]:
        """Subscriptions by id, one page."""
        async with translated("subscriptions"):
            cursor = self.subscriptions.find(
                {}, sort=[("_id", ASCENDING)], skip=offset, limit=limit, max_time_ms=self._ms
            )
            return await cursor.to_list()

    async def count(self) -> int:
        async with translated("subscriptions"):
            return await self.subscriptions.count_documents({}, maxTimeMS=self._ms)

    async def bump_version(self) -> None:
        """Tell every process that this tenant's subscriptions changed (`_live.py`)."""
        async with translated("subscription version"):
            await self.versions.update_one({"_id": _VERSION}, {"$inc": {"v": 1}}, upsert=True)

    async def version(self) -> int:
        async with translated("subscription version"):
            found = await self.versions.find_one({"_id": _VERSION})
        return int(found["v"]) if found is not None else 0

    async def record_deliveries(self, outcomes: Mapping[str, Mapping[str, Any]]) -> None:
        """Add a notifier's outcomes to each subscription's `sent` status, in one request:
        `$inc` counts and `$max` times, so notifiers in several processes add up."""
        if not outcomes:
            return
        updates = [UpdateOne({"_id": key}, dict(update)) for key, update in outcomes.items()]
        async with translated("subscription delivery status"):
            await self.subscriptions.bulk_write(updates, ordered=False)

    async def all(self, query: Mapping[str, Any] | None = None) -> list[Document]:
        """Every subscription (to build the tenant's matching index)."""
        async with translated("subscriptions"):
            cursor = self.subscriptions.find(dict(query or {}), batch_size=1000)
            return await cursor.to_list()


_VERSION = "subscriptions"
_OPTIONAL = (
    "subscriptionName",
    "description",
    "entities",
    "watchedAttributes",
    "timeInterval",
    "q",
    "qNames",
    "geoQ",
    "scopeQ",
    "lang",
    "expiresAt",
    "throttling",
    "jsonldContext",
)


def _absent(doc: Document) -> dict[str, str]:
    """The optional members a patched subscription no longer has."""
    return {member: "" for member in _OPTIONAL if member not in doc} or {"_none": ""}
