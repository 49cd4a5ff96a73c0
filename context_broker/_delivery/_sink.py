"""The change sink of a broker that notifies: each acknowledged write's changes are matched
against the tenant's subscriptions, and their notifications are queued durably before the
write is acknowledged (docs/architecture.md, "Notifications")."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import orjson

from context_broker._delivery._queue import NotificationQueue, queue_record
from context_broker._jsonld import ContextValue, TermMap
from context_broker._subscriptions._changes import EntityChange
from context_broker._subscriptions._live import LiveSubscriptions
from context_broker._subscriptions._matching import Change
from context_broker._subscriptions._model import context_of
from context_broker._subscriptions._notification import Notification, build_notification
from context_broker._time import utc_now

Document = dict[str, Any]
TermsOf = Callable[[ContextValue | None, str | None], Awaitable[TermMap]]
"""Resolves a subscription's stored @context, for a tenant, to its term map."""
Shown = tuple[Document | None, Document]
"""An entity in a notification: before the change (None: unknown or new) and as shown."""
_IDENTITY = ("_id", "type", "createdAt", "modifiedAt")


class QueueingSink:
    """Matches changes, builds their notifications and queues them."""

    def __init__(self, live: LiveSubscriptions, queue: NotificationQueue, terms_of: TermsOf):
        self.live = live
        self.queue = queue
        self.terms_of = terms_of

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
        for (tenant, subscription_id), (subscription, entities) in notified.items():
            terms = await self.terms_of(context_of(subscription), tenant)
            notification = build_notification(subscription, entities, terms, now)
            records.append(_record(tenant, subscription_id, subscription, notification, now))
        if records:
            await self.queue.add(records)


def _shown(change: Change) -> Document:
    """What a notification shows of the entity: as it is after the change, or its id and
    type alone once deleted."""
    if change.after is not None:
        return change.after
    deleted = change.entity
    kept = {key: deleted[key] for key in _IDENTITY if key in deleted}
    return {**kept, "an": [], "attrs": {}}


def _record(
    tenant: str | None,
    subscription_id: str,
    subscription: Document,
    notification: Notification,
    now: datetime,
) -> Document:
    endpoint = subscription["notification"]["endpoint"]
    headers = dict(notification.headers)
    for pair in endpoint.get("receiverInfo", []):
        headers[pair["key"]] = pair["value"]
    notifier = {pair["key"]: pair["value"] for pair in endpoint.get("notifierInfo", [])}
    body = orjson.dumps(notification.body)
    return queue_record(tenant, subscription_id, endpoint["uri"], headers, body, notifier, now)
