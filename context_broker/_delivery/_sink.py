"""The change sink of a broker that notifies: each acknowledged write's changes are matched
against the tenant's subscriptions, and their notifications are queued durably before the
write is acknowledged (docs/architecture.md, "Notifications")."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from context_broker._delivery._compose import notification_record
from context_broker._delivery._queue import NotificationQueue
from context_broker._jsonld import ContextValue, TermMap
from context_broker._subscriptions._changes import EntityChange
from context_broker._subscriptions._live import LiveSubscriptions
from context_broker._subscriptions._matching import Change
from context_broker._subscriptions._model import context_of
from context_broker._subscriptions._notification import build_notification
from context_broker._time import utc_now

Document = dict[str, Any]
TermsOf = Callable[[ContextValue | None, str | None], Awaitable[TermMap]]
"""Resolves a subscription's stored @context, for a tenant, to its term map."""
Shown = tuple[Document | None, Document]
"""An entity in a notification: before the change (None: unknown or new) and as shown."""
_IDENTITY = ("_id", "type", "createdAt", "modifiedAt")


class QueueingSink:
    """Matches changes, builds their notifications and queues them."""

    def __init__(
        self,
        live: LiveSubscriptions,
        queue: NotificationQueue,
        terms_of: TermsOf,
        on_queued: Callable[[], None] | None = None,
    ):
        self.live = live
        self.queue = queue
        self.terms_of = terms_of
        # Told once notifications are queued: this process's notifier sends them at once.
        self.on_queued = on_queued

    async def listens(self, tenant: str | None) -> bool:
        return len(await self.live.index_of(tenant)) > 0

    async def entities_changed(self, changes: Sequence[EntityChange]) -> None:
        now = utc_now()
        notified: dict[tuple[str | None, str], tuple[Document, list[Shown]]] = {}
        for told in changes:
            index = await self.live.index_of(told.tenant)
            change = Change.between(told.tenant, told.before, told.after)
            for subscription in index.match(change, now).subscriptions:
                key = (told.tenant, str(subscription["_id"]))
                _, entities = notified.setdefault(key, (subscription, []))
                entities.append((told.before, _shown(change)))
        records = []
        for (tenant, _), (subscription, entities) in notified.items():
            terms = await self.terms_of(context_of(subscription), tenant)
            notification = build_notification(subscription, entities, terms, now)
            records.append(notification_record(tenant, subscription, notification, now))
        if records:
            await self.queue.add(records)
            if self.on_queued is not None:
                self.on_queued()


def _shown(change: Change) -> Document:
    """What a notification shows of the entity: as it is after the change, or its id and
    type alone once deleted."""
    if change.after is not None:
        return change.after
    deleted = change.entity
    kept = {key: deleted[key] for key in _IDENTITY if key in deleted}
    return {**kept, "an": [], "attrs": {}}
