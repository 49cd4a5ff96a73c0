"""The delivery status a subscription shows (`notification.timesSent`, `lastSuccess`,
`status`, ...): each notifier adds its outcomes with `$inc` and `$max`, batched to one
update per subscription and one request per tenant, so the notifiers of several processes
add up."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from context_broker._errors import NgsiLdError
from context_broker._subscriptions._store import SubscriptionRepository

log = logging.getLogger("context_broker.notifier")
RepositoryOf = Callable[[str | None], Awaitable[SubscriptionRepository]]


@dataclass(slots=True)
class _Tally:
    sent: int = 0
    failed: int = 0
    last_success: datetime | None = None
    last_failure: datetime | None = None
    failing: bool = False

    def update(self) -> dict[str, Any]:
        last = max(t for t in (self.last_success, self.last_failure) if t is not None)
        latest: dict[str, Any] = {"sent.lastNotification": last}
        if self.last_success is not None:
            latest["sent.lastSuccess"] = self.last_success
        if self.last_failure is not None:
            latest["sent.lastFailure"] = self.last_failure
        return {
            "$inc": {"sent.timesSent": self.sent, "sent.timesFailed": self.failed},
            "$max": latest,
            "$set": {"sent.failing": self.failing},
        }


class DeliveryStatus:
    """Outcomes not yet written, by (tenant, subscription)."""

    def __init__(self) -> None:
        self._tallies: dict[tuple[str | None, str], _Tally] = {}

    def delivered(self, tenant: str | None, subscription_id: str, at: datetime) -> None:
        tally = self._tallies.setdefault((tenant, subscription_id), _Tally())
        tally.sent += 1
        tally.last_success = max(at, tally.last_success or at)
        tally.failing = False

    def failed(self, tenant: str | None, subscription_id: str, at: datetime) -> None:
        tally = self._tallies.setdefault((tenant, subscription_id), _Tally())
        tally.failed += 1
        tally.last_failure = max(at, tally.last_failure or at)
        tally.failing = True

    def __bool__(self) -> bool:
        return bool(self._tallies)

    async def flush(self, repository_of: RepositoryOf) -> None:
        """Write every subscription's outcomes (one request per tenant); a tenant gone is
        skipped."""
        tallies, self._tallies = self._tallies, {}
        by_tenant: dict[str | None, dict[str, dict[str, Any]]] = {}
        for (tenant, subscription_id), tally in tallies.items():
            by_tenant.setdefault(tenant, {})[subscription_id] = tally.update()
        for tenant, updates in by_tenant.items():
            try:
                repo = await repository_of(tenant)
                await repo.record_deliveries(updates)
            except NgsiLdError as error:
                log.warning("delivery status of tenant %s not recorded: %s", tenant, error)
