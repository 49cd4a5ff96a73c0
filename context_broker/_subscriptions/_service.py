"""The subscription operations of clause 5.8, one method each, per tenant."""

from __future__ import annotations

from dataclasses import dataclass

from context_broker._errors import ResourceNotFound, StoreUnavailable
from context_broker._jsonld import TermMap
from context_broker._names import check_uri
from context_broker._store import Store
from context_broker._subscriptions._endpoints import check_endpoint_address
from context_broker._subscriptions._live import LiveSubscriptions
from context_broker._subscriptions._model import (
    Document,
    TypeParser,
    parse_subscription,
    patch_subscription,
)
from context_broker._subscriptions._schedule import PeriodicSchedule
from context_broker._subscriptions._store import SubscriptionRepository
from context_broker._time import utc_now

_RETRIES = 8


@dataclass(slots=True, frozen=True)
class SubscriptionPage:
    docs: list[Document]
    total: int | None
    more: bool


class Subscriptions:
    """Create, retrieve, query, update and delete subscriptions (clauses 5.8.1-5.8.5)."""

    def __init__(
        self,
        store: Store,
        types: TypeParser,
        *,
        allow_private: bool,
        live: LiveSubscriptions | None = None,
        schedule: PeriodicSchedule | None = None,
    ) -> None:
        self.store = store
        self.types = types
        self.allow_private = allow_private
        # The matching side, told of each write; the operations answer once every process
        # has seen it (`_live.py`).
        self.live = live
        # Where the notifiers find the periodic subscriptions of every tenant.
        self.schedule = schedule

    async def _repo(
        self, tenant: str | None, *, create_if_missing: bool = False
    ) -> SubscriptionRepository:
        entities = await self.store.repository(tenant, create_if_missing=create_if_missing)
        return SubscriptionRepository(entities.database, entities.budget.time_ms)

    async def create_subscription(self, tenant: str | None, payload: object, terms: TermMap) -> str:
        doc = parse_subscription(payload, terms, utc_now(), self.types)
        await self._check_endpoint(doc)
        repo = await self._repo(tenant, create_if_missing=True)
        await repo.insert(doc)  # a duplicate id is AlreadyExists (409)
        await self._published(tenant, repo, doc)
        return str(doc["_id"])

    async def retrieve_subscription(self, tenant: str | None, subscription_id: str) -> Document:
        check_uri(subscription_id, "subscription id")
        repo = await self._repo(tenant)
        doc = await repo.get(subscription_id)
        if doc is None:
            raise ResourceNotFound(f"subscription {subscription_id} does not exist")
        return doc

    async def query_subscriptions(
        self, tenant: str | None, *, limit: int, offset: int, count: bool
    ) -> SubscriptionPage:
        repo = await self._repo(tenant)
        docs = await repo.page(offset, limit + 1) if limit else []
        more = len(docs) > limit
        total = await repo.count() if count else None
        return SubscriptionPage(docs[:limit], total, more)

    async def update_subscription(
        self, tenant: str | None, subscription_id: str, fragment: object, terms: TermMap
    ) -> None:
        check_uri(subscription_id, "subscription id")
        repo = await self._repo(tenant)
        for _ in range(_RETRIES):
            stored = await repo.get(subscription_id)
            if stored is None:
                raise ResourceNotFound(f"subscription {subscription_id} does not exist")
            doc = patch_subscription(stored, fragment, terms, utc_now(), self.types)
            if doc["notification"]["endpoint"] != stored["notification"]["endpoint"]:
                await self._check_endpoint(doc)
            if await repo.replace(doc, stored.get("v", 0)):
                await self._published(tenant, repo, doc)
                return
        raise StoreUnavailable(f"subscription {subscription_id} is being changed by others")

    async def delete_subscription(self, tenant: str | None, subscription_id: str) -> None:
        check_uri(subscription_id, "subscription id")
        repo = await self._repo(tenant)
        if not await repo.delete(subscription_id):
            raise ResourceNotFound(f"subscription {subscription_id} does not exist")
        await self._published(tenant, repo, {"_id": subscription_id})

    async def _published(
        self, tenant: str | None, repo: SubscriptionRepository, doc: Document
    ) -> None:
        """Schedule or unschedule its periods, move the tenant's subscription version, and
        wait until every process saw it."""
        if self.schedule is not None:
            await self.schedule.keep(tenant, doc, utc_now())
        await repo.bump_version()
        if self.live is not None:
            self.live.forget(tenant)
            await self.live.settled()

    async def _check_endpoint(self, doc: Document) -> None:
        uri = doc["notification"]["endpoint"]["uri"]
        await check_endpoint_address(uri, allow_private=self.allow_private)
