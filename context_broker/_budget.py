"""What one read may cost the shared store: a time budget, a document bound, and turns:
a tenant's reads wait in its own queue, and the store serves the tenants in turn.

The embedded store runs every command on Python threads under one interpreter lock: a
tenant with scans in flight slows every other tenant's reads many times over, so the
broker lets each tenant have only a few store reads in flight at once and, when reads
of several tenants wait for the store, lets one of each tenant's in by turns.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from context_broker._errors import TenantBusy


@dataclass(slots=True, frozen=True)
class QueryBudget:
    """The bounds of every store read: time (sent to the store as maxTimeMS, and the
    broker's own wait), documents one read may bring into the broker, the reads of one
    tenant in flight, waiting, and how long they wait; the reads of all tenants in flight."""

    time_ms: int = 5_000
    max_documents: int = 20_000
    tenant_slots: int = 1
    tenant_queue: int = 64
    tenant_wait_ms: int = 10_000
    store_slots: int = 0

    @property
    def wait_s(self) -> float:
        """How long the broker waits for one read: the budget and some slack, since the
        store notices an expired budget between documents, not at once."""
        return self.time_ms * 1.5 / 1000 + 0.5


class StoreTurns:
    """At most `slots` reads in the store at once (0: no limit); a freed slot goes to the
    next tenant in turn, so a tenant with many reads waiting gets one turn in each round."""

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._unlimited = slots <= 0
        self._waiting: dict[object, deque[asyncio.Future[None]]] = {}

    @asynccontextmanager
    async def turn(self, tenant: object) -> AsyncIterator[None]:
        if self._unlimited:
            yield
            return
        if self._free > 0 and not self._waiting:
            self._free -= 1
        else:
            granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting.setdefault(tenant, deque()).append(granted)
            try:
                await granted
            except asyncio.CancelledError:
                if granted.done() and not granted.cancelled():
                    self._pass_on()  # granted as it was cancelled: the turn goes on
                else:
                    self._forget(tenant, granted)
                raise
        try:
            yield
        finally:
            self._pass_on()

    def _pass_on(self) -> None:
        while self._waiting:
            tenant, queue = next(iter(self._waiting.items()))
            del self._waiting[tenant]
            granted = queue.popleft()
            if queue:  # back of the round
                self._waiting[tenant] = queue
            if not granted.done():
                granted.set_result(None)
                return
        self._free += 1

    def _forget(self, tenant: object, granted: asyncio.Future[None]) -> None:
        queue = self._waiting.get(tenant)
        if queue is not None and granted in queue:
            queue.remove(granted)
            if not queue:
                del self._waiting[tenant]


class TenantGate:
    """At most `slots` store reads of one tenant at a time; the others wait in the
    tenant's own queue, at most `queue` of them and at most `wait_s` each (for a slot and
    the store's turn), or are refused with 503 and a Retry-After."""

    def __init__(
        self, slots: int, queue: int, wait_s: float, turns: StoreTurns | None = None
    ) -> None:
        self._free = asyncio.Semaphore(max(1, slots))
        self._queue = queue
        self._wait_s = wait_s
        self._waiting = 0
        self._turns = turns or StoreTurns(0)

    @classmethod
    def of(cls, budget: QueryBudget, turns: StoreTurns | None = None) -> TenantGate:
        return cls(budget.tenant_slots, budget.tenant_queue, budget.tenant_wait_ms / 1000, turns)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._free.locked() and self._waiting >= self._queue:
            raise self._busy(f"{self._queue} of this tenant's reads are already waiting")
        async with AsyncExitStack() as held:
            self._waiting += 1
            try:
                async with asyncio.timeout(self._wait_s):
                    await self._free.acquire()
                    held.callback(self._free.release)
                    await held.enter_async_context(self._turns.turn(self))
            except TimeoutError:
                raise self._busy(
                    f"this tenant's reads waited over {self._wait_s:g} s for the store"
                ) from None
            finally:
                self._waiting -= 1
            yield

    def _busy(self, why: str) -> TenantBusy:
        return TenantBusy(
            f"too many concurrent reads for this tenant: {why}; retry later",
            retry_after_s=max(1, math.ceil(self._wait_s / 2)),
        )
