"""Each tenant's subscriptions as this process matches them.

One `SubscriptionIndex` per tenant, reloaded when the tenant's subscription version moved
(every subscription write moves it, `_store.py`). The version is read at most every
`refresh_s`: a subscription written through another process is matched here within that
time, and the subscription operations answer only once it has passed (`_service.py`), so
every write that starts after the answer is matched against it, whatever the process.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from context_broker._store import Store
from context_broker._subscriptions._matching import SubscriptionIndex
from context_broker._subscriptions._store import SubscriptionRepository


@dataclass(slots=True, frozen=True)
class _Loaded:
    index: SubscriptionIndex
    version: int
    checked: float


class LiveSubscriptions:
    """The subscription indexes of the tenants this process has seen, kept current."""

    def __init__(self, store: Store, refresh_s: float) -> None:
        self.store = store
        self.refresh_s = refresh_s
        self._loaded: dict[str | None, _Loaded] = {}
        self._locks: dict[str | None, asyncio.Lock] = {}

    async def repository(self, tenant: str | None) -> SubscriptionRepository:
        entities = await self.store.repository(tenant)
        return SubscriptionRepository(entities.database, entities.budget.time_ms)

    async def index_of(self, tenant: str | None) -> SubscriptionIndex:
        """The tenant's subscriptions, as they were at most `refresh_s` before the call."""
        called = time.monotonic()
        loaded = self._loaded.get(tenant)
        if loaded is not None and called - loaded.checked < self.refresh_s:
            return loaded.index
        async with self._locks.setdefault(tenant, asyncio.Lock()):
            # A read that another caller started while this one waited will do: measured
            # from the call, not from the lock, or callers queued behind a slow read would
            # each read again.
            loaded = self._loaded.get(tenant)
            if loaded is not None and called - loaded.checked < self.refresh_s:
                return loaded.index
            started = time.monotonic()  # before the read: the index is as fresh as this
            repo = await self.repository(tenant)
            version = await repo.version()
            if loaded is not None and loaded.version == version:
                index = loaded.index
            else:
                index = SubscriptionIndex(await repo.all())
            self._loaded[tenant] = _Loaded(index, version, started)
            return index

    def forget(self, tenant: str | None) -> None:
        """Read the tenant's subscriptions afresh at the next change (this process wrote
        them)."""
        self._loaded.pop(tenant, None)

    async def settled(self) -> None:
        """Wait until every process has read the version a subscription write just moved."""
        await asyncio.sleep(self.refresh_s)
