"""The change sink of a broker that notifies: each acknowledged write's changes are matched
against the tenant's subscriptions, and their notifications are queued durably before the
write is acknowledged (docs/architecture.md, "Notifications")."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from context_broker._delivery._compose import notification_notice
from context_broker._delivery._group_commit import GroupCommit
from context_broker._delivery._parcels import LocalNotifier, ParcelWriter
from context_broker._delivery._queue import NotificationQueue
from context_broker._errors import TooManyResults
from context_broker._jsonld import ContextValue, TermMap
from context_broker._subscriptions._changes import EntityChange
from context_broker._subscriptions._linked_match import LinkedReads, linked_q_holds
from context_broker._subscriptions._live import LiveSubscriptions
from context_broker._subscriptions._matching import Change, Match
from context_broker._subscriptions._model import context_of
from context_broker._subscriptions._notification import (
    build_notification,
    data_shape,
    notification_data,
)
from context_broker._time import utc_now

Document = dict[str, Any]
log = logging.getLogger("context_broker.notifier")
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
        notifier: LocalNotifier | None = None,
        join_bounds: tuple[int, int] = (3, 1000),
    ):
        self.live = live
        self.terms_of = terms_of
        # (levels, entities) a linked q may read per change: CONTESTO_JOIN_MAX_LEVEL and
        # CONTESTO_JOIN_MAX_ENTITIES, as for a query.
        self.join_bounds = join_bounds
        self.parcels = ParcelWriter(queue)
        self.parcels.notifier = notifier
        self.commits = GroupCommit(self.parcels)

    @property
    def notifier(self) -> LocalNotifier | None:
        """This process's notifier, handed what its writes queued (no claim round trip)."""
        return self.parcels.notifier

    @notifier.setter
    def notifier(self, notifier: LocalNotifier | None) -> None:
        self.parcels.notifier = notifier

    async def listens(self, tenant: str | None) -> bool:
        return len(await self.live.index_of(tenant)) > 0

    async def needs_documents(self, tenant: str | None) -> bool:
        return True  # what changed, and the entities as notified

    async def entities_changed(self, changes: Sequence[EntityChange]) -> None:
        now = utc_now()
        notified: dict[tuple[str | None, str], tuple[Document, list[Shown]]] = {}
        for told in changes:
            index = await self.live.index_of(told.tenant)
            change = Change.between(told.tenant, told.before, told.after)
            match = index.match(change, now)
            shown = _shown(change)
            for subscription in [*match.subscriptions, *await self._linked(change, match)]:
                key = (told.tenant, str(subscription["_id"]))
                _, entities = notified.setdefault(key, (subscription, []))
                entities.append((told.before, shown))
        notices = []
        # Subscriptions of one shape told of the same entities share their rendering. Keyed
        # by the ids of the entities and the term map, which `notified` and `rendered` keep
        # alive until the end of this call (so no id is reused meanwhile).
        rendered: dict[tuple[Any, ...], tuple[TermMap, Any]] = {}
        for (tenant, _), (subscription, entities) in notified.items():
            terms = await self.terms_of(context_of(subscription), tenant)
            seen = tuple(id(entity) for pair in entities for entity in pair)
            shape = (id(terms), data_shape(subscription), seen)
            if shape not in rendered:
                rendered[shape] = (terms, notification_data(subscription, entities, terms))
            data = rendered[shape][1]
            notification = build_notification(subscription, entities, terms, now, data=data)
            notices.append(notification_notice(tenant, subscription, notification))
        if notices:
            await self.commits.add(notices)

    async def _linked(self, change: Change, match: Match) -> list[Document]:
        """The pending subscriptions whose q's linked terms hold for the changed entity."""
        if not match.pending:
            return []
        repo = await self.live.store.repository(change.tenant)
        reads = LinkedReads(repo.get_many, *self.join_bounds)
        notified = []
        for each in match.pending:
            assert each.linked is not None
            try:
                holds = await linked_q_holds(each.linked, change.entity, each.expand, reads)
            except TooManyResults as error:
                log.warning("subscription %s: linked q not resolved: %s", each.id, error)
                continue
            if holds:
                notified.append(each.doc)
        return notified


def _shown(change: Change) -> Document:
    """What a notification shows of the entity: as it is after the change, or its id and
    type alone once deleted."""
    if change.after is not None:
        return change.after
    deleted = change.entity
    kept = {key: deleted[key] for key in _IDENTITY if key in deleted}
    return {**kept, "an": [], "attrs": {}}
