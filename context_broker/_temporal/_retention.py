"""Retention where no TTL monitor applies it: each API process deletes, every hour, the
instances recorded more than CONTESTO_TEMPORAL_RETENTION_DAYS ago, tenant by tenant (one
indexed delete each, on the retention index's `at`). MongoDB's TTL monitor does the same
on its own; the embedded store keeps none, so without this its history would only grow."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from context_broker._cancel import cancel_and_wait
from context_broker._errors import NgsiLdError
from context_broker._temporal._store import TemporalStore
from context_broker._time import utc_now

log = logging.getLogger("context_broker.temporal")
SWEEP_INTERVAL_S = 3600.0
FIRST_SWEEP_S = 60.0
"""The first sweep waits for the process to have settled in."""


class RetentionSweep:
    def __init__(
        self,
        history: TemporalStore,
        interval_s: float = SWEEP_INTERVAL_S,
        first_s: float = FIRST_SWEEP_S,
    ) -> None:
        self.history = history
        self.interval_s = interval_s
        self.first_s = first_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="history-retention")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None

    async def _run(self) -> None:
        await asyncio.sleep(self.first_s)
        while True:
            try:
                await self.sweep(utc_now())
            except NgsiLdError as error:  # the store is away: try again next time
                log.warning("history retention sweep failed: %s", error.detail)
            except Exception:  # a sweep that dies would keep every instance for ever
                log.exception("history retention sweep failed unexpectedly")
            await asyncio.sleep(self.interval_s)

    async def sweep(self, now: datetime) -> int:
        """Delete every tenant's instances older than the retention; how many went."""
        cutoff = now - timedelta(seconds=self.history.retention_s)
        deleted = 0
        for tenant in [None, *await self.history.tenants()]:
            try:
                deleted += await self.history.expire(tenant, cutoff)
            except NgsiLdError as error:  # deleted or suspended meanwhile, or the store away
                log.warning("history retention of tenant %s failed: %s", tenant, error.detail)
        return deleted
