"""When each periodic subscription (timeInterval) of every tenant is next due: one
collection of the platform database (`periodic_schedule`), so that finding what is due
costs one indexed read whatever the number of tenants. The subscription operations keep
it (`_service.py`); the notifiers read it and take each period with a conditional update,
so that of several processes one alone sends a period."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from context_broker._store import translated

Document = dict[str, Any]


@dataclass(slots=True, frozen=True)
class Due:
    """A periodic subscription whose period has come: `at` is the time it was due."""

    tenant: str | None
    subscription_id: str
    at: datetime
    interval_s: float


def _key(tenant: str | None, subscription_id: str) -> str:
    return f"{tenant or ''}\n{subscription_id}"


class PeriodicSchedule:
    def __init__(self, platform: AsyncDatabase[Document]) -> None:
        self.entries: AsyncCollection[Document] = platform["periodic_schedule"]

    async def prepare(self) -> None:
        async with translated("periodic schedule"):
            await self.entries.create_index([("next", ASCENDING)], name="next")

    async def keep(self, tenant: str | None, subscription: Document, now: datetime) -> None:
        """Schedule the subscription if it is periodic (first period: now), else forget it."""
        key = _key(tenant, str(subscription["_id"]))
        interval = subscription.get("timeInterval")
        async with translated("periodic schedule"):
            if interval is None:
                await self.entries.delete_one({"_id": key})
                return
            await self.entries.update_one(
                {"_id": key},
                {
                    "$set": {
                        "tenant": tenant,
                        "subscription": str(subscription["_id"]),
                        "interval": interval,
                    },
                    "$setOnInsert": {"next": now},
                },
                upsert=True,
            )

    async def forget(self, tenant: str | None, subscription_id: str) -> None:
        async with translated("periodic schedule"):
            await self.entries.delete_one({"_id": _key(tenant, subscription_id)})

    async def due(self, now: datetime, limit: int = 1000) -> list[Due]:
        async with translated("periodic schedule"):
            found = await self.entries.find({"next": {"$lte": now}}, limit=limit).to_list()
        return [
            Due(entry["tenant"], entry["subscription"], entry["next"], entry["interval"])
            for entry in found
        ]

    async def take(self, due: Due, now: datetime) -> bool:
        """Take this period for this process, moving the next one an interval on: False
        when another process took it first."""
        following = max(due.at + timedelta(seconds=due.interval_s), now)
        async with translated("periodic schedule"):
            result = await self.entries.update_one(
                {"_id": _key(due.tenant, due.subscription_id), "next": due.at},
                {"$set": {"next": following}},
            )
        return result.modified_count == 1
