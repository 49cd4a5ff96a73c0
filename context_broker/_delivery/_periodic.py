"""Periodic subscriptions (timeInterval, clause 5.8.1): every interval, the entities that
match the subscription now, in one notification.

The due periods come from the platform's schedule (`_subscriptions/_schedule.py`), each
taken with a conditional update, so of several notifiers one alone sends each period.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from context_broker._delivery._compose import notification_record
from context_broker._delivery._queue import NotificationQueue
from context_broker._delivery._sink import TermsOf
from context_broker._errors import NgsiLdError, NonexistentTenant
from context_broker._linked_q import parse_linked_q
from context_broker._query import Query, parse_q, parse_scope_q
from context_broker._query._plan import EntityQuery
from context_broker._service import Broker
from context_broker._subscriptions._model import (
    context_of,
    geo_query_of,
    q_expander,
    subscription_status,
)
from context_broker._subscriptions._notification import build_notification
from context_broker._subscriptions._schedule import Due, PeriodicSchedule
from context_broker._subscriptions._store import SubscriptionRepository

Document = dict[str, Any]
log = logging.getLogger("context_broker.notifier")


def entity_queries(subscription: Document, limit: int, q: Query | None = None) -> list[EntityQuery]:
    """The queries of the entities a subscription selects now: one per entity selector,
    each with the subscription's q (or `q`, its linked terms resolved), geoQ and scopeQ."""
    expand = q_expander(dict(subscription.get("qNames", [])))
    if q is None and "q" in subscription:
        q = parse_q(subscription["q"])
    geo = geo_query_of(subscription["geoQ"]) if "geoQ" in subscription else None
    scope = parse_scope_q(subscription["scopeQ"]) if "scopeQ" in subscription else None
    return [
        EntityQuery(
            ids=(selector["id"],) if "id" in selector else (),
            id_pattern=selector.get("idPattern"),
            types=tuple(tuple(group) for group in selector.get("types", [])),
            q=q,
            scope_q=scope,
            geo=geo,
            expand=expand,
            limit=limit,
        )
        for selector in subscription.get("entities", [])
    ]


class PeriodicSweep:
    """Queues the notifications of the periodic subscriptions that are due, every tenant."""

    def __init__(
        self,
        broker: Broker,
        queue: NotificationQueue,
        schedule: PeriodicSchedule,
        terms_of: TermsOf,
        max_entities: int,
        on_queued: Callable[[], None] = lambda: None,
        join_max_level: int = 3,
    ) -> None:
        self.broker = broker
        self.queue = queue
        self.schedule = schedule
        self.terms_of = terms_of
        self.max_entities = max_entities
        self.on_queued = on_queued
        self.join_max_level = join_max_level

    async def sweep(self, now: datetime) -> int:
        """Queue each due periodic notification once; returns how many were queued."""
        records = []
        for due in await self.schedule.due(now):
            if not await self.schedule.take(due, now):
                continue  # another notifier took this period
            try:
                record = await self._due_record(due, now)
            except NonexistentTenant:
                await self.schedule.forget(due.tenant, due.subscription_id)
                continue
            except NgsiLdError as error:
                log.warning("periodic notification of %s: %s", due.subscription_id, error)
                continue
            if record is not None:
                records.append(record)
        if records:
            await self.queue.add(records)
            self.on_queued()
        return len(records)

    async def _due_record(self, due: Due, now: datetime) -> Document | None:
        entities = await self.broker.store.repository(due.tenant)
        repo = SubscriptionRepository(entities.database, entities.budget.time_ms)
        subscription = await repo.get(due.subscription_id)
        if subscription is None:
            await self.schedule.forget(due.tenant, due.subscription_id)
            return None
        if subscription_status(subscription, now) != "active":
            return None
        return await self._notification(due.tenant, subscription, now)

    async def _notification(
        self, tenant: str | None, subscription: Document, now: datetime
    ) -> Document | None:
        found: dict[str, Document] = {}
        q = None
        linked = parse_linked_q(subscription["q"]) if "q" in subscription else None
        if linked is not None and linked.conditions:
            expand = q_expander(dict(subscription.get("qNames", [])))
            levels = self.join_max_level
            q = await self.broker.resolve_linked_q(tenant, linked, expand, levels)
        for query in entity_queries(subscription, self.max_entities, q):
            page = await self.broker.query_entities(tenant, query)
            for doc in page.docs:
                found.setdefault(str(doc["_id"]), doc)
                if len(found) >= self.max_entities:
                    break
        if not found:
            return None
        terms = await self.terms_of(context_of(subscription), tenant)
        notification = build_notification(
            subscription, [(None, doc) for doc in found.values()], terms, now
        )
        return notification_record(tenant, subscription, notification, now)
