"""The notifications of writes made together, queued as one record per tenant and endpoint:
the group commit (`_group_commit.py`) hands over the notices (`_compose.notification_notice`)
of every write that waited for the same insert, so 100 subscriptions notified by a write,
or 8 writes in flight to one endpoint, cost the store one record, not 100 or 8."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from context_broker._delivery._queue import Claim, NotificationQueue, Queued, parcel_record
from context_broker._time import utc_now

Document = dict[str, Any]
_WHERE = ("tenant", "endpoint")


class LocalNotifier(Protocol):
    """The notifier of the process the sink runs in (`_notifier.py`)."""

    def claim_for(self, endpoint: str) -> Claim | None: ...

    def hand_over(self, records: Sequence[Queued]) -> None: ...

    def wake(self) -> None: ...


class ParcelWriter:
    """Queues notices durably, grouped into records; hands those it could claim for this
    process's notifier straight to it (no claim round trip), wakes it for the others."""

    def __init__(self, queue: NotificationQueue) -> None:
        self.queue = queue
        self.notifier: LocalNotifier | None = None

    async def add(self, records: Sequence[Document]) -> None:
        now = utc_now()
        grouped: dict[tuple[str | None, str], list[Document]] = {}
        for notice in records:
            entry = {key: value for key, value in notice.items() if key not in _WHERE}
            grouped.setdefault((notice["tenant"], notice["endpoint"]), []).append(entry)
        notifier = self.notifier
        parcels = [
            parcel_record(
                tenant,
                endpoint,
                entries,
                now,
                notifier.claim_for(endpoint) if notifier is not None else None,
            )
            for (tenant, endpoint), entries in grouped.items()
        ]
        await self.queue.add(parcels)
        if notifier is None:
            return
        handed = [each for parcel in parcels if parcel["claim"] for each in Queued.each(parcel)]
        if handed:
            notifier.hand_over(handed)
        if any(parcel["claim"] is None for parcel in parcels):
            notifier.wake()
