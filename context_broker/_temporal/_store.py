"""Each tenant's recorded attribute instances (`temporal_instances` in its own database) and
a summary of each attribute with a history (`temporal_attributes`: its entity's types and
when it was first recorded, written once): the only module of the history that speaks to
the store.

Indexes: (entity, attr, t) serves every read, which asks for one attribute of one entity in
time windows (`_windows.py`) of its observedAt (`t`); a read by createdAt or modifiedAt
(`at`) selects by the same entity and attribute and windows of `at`. `at` alone, with
expireAfterSeconds, is the retention (CONTESTO_TEMPORAL_RETENTION_DAYS), which MongoDB's TTL
monitor applies (and `_retention.py` where there is none). Each index costs every recorded
instance an entry, so there are no more."""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, ExecutionTimeout, OperationFailure

from context_broker._errors import TooComplexQuery
from context_broker._store import EntityRepository, Store, translated
from context_broker._temporal._aggregation import Aggregation, pipeline
from context_broker._temporal._query import OBSERVED, RECORDED_AT, TemporalQuery
from context_broker._temporal._windows import Walk
from context_broker._time import utc_now

Document = dict[str, Any]
COLLECTION = "temporal_instances"
SUMMARIES = "temporal_attributes"
RETENTION_INDEX = "retention"
_BY_ATTRIBUTE = [(name, ASCENDING) for name in ("entity", "attr", OBSERVED)]
_INDEX_OPTIONS_CONFLICT = (85, 86)


@dataclass(slots=True, frozen=True)
class _Tenant:
    instances: AsyncCollection[Document]
    summaries: AsyncCollection[Document]


class TemporalStore:
    """The recorded instances of every tenant, through the tenant's repository (which says
    whether the tenant exists and names its database)."""

    def __init__(self, store: Store, retention_days: int) -> None:
        self.store = store
        self.retention_s = retention_days * 86_400
        self.time_ms = store.budget.time_ms
        # Per repository: a tenant dropped and made again gets a new one, and its indexes.
        self._prepared: weakref.WeakKeyDictionary[EntityRepository, _Tenant]
        self._prepared = weakref.WeakKeyDictionary()

    async def _tenant(self, tenant: str | None) -> _Tenant:
        """The tenant's collections, indexes made on first use; NonexistentTenant when the
        tenant does not exist."""
        repository = await self.store.repository(tenant)
        known = self._prepared.get(repository)
        if known is not None:
            return known
        prepared = _Tenant(repository.database[COLLECTION], repository.database[SUMMARIES])
        async with translated("history"):
            await prepared.instances.create_index(_BY_ATTRIBUTE)
            await self._retention_index(prepared.instances)
            await prepared.summaries.create_index([("entity", ASCENDING)])
        return self._prepared.setdefault(repository, prepared)

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[None]:
        """One read of history, within the query time budget (sent as maxTimeMS)."""
        async with translated("history"):
            try:
                yield
            except ExecutionTimeout:
                raise TooComplexQuery(
                    f"the history read did not finish within its time budget of {self.time_ms}"
                    " ms (CONTESTO_QUERY_TIME_BUDGET_MS); narrow it (timerel, lastN, attrs)"
                ) from None

    async def collection(self, tenant: str | None) -> AsyncCollection[Document]:
        """The tenant's instances."""
        return (await self._tenant(tenant)).instances

    async def _retention_index(self, collection: AsyncCollection[Document]) -> None:
        """The TTL index with the configured expiry; one with another expiry is made again."""
        try:
            await self._create_retention(collection)
        except OperationFailure as error:
            if error.code not in _INDEX_OPTIONS_CONFLICT:
                raise
            await collection.drop_index(RETENTION_INDEX)
            await self._create_retention(collection)

    async def _create_retention(self, collection: AsyncCollection[Document]) -> None:
        await collection.create_index(
            [(RECORDED_AT, ASCENDING)], name=RETENTION_INDEX, expireAfterSeconds=self.retention_s
        )

    async def add(
        self, tenant: str | None, records: Sequence[Document], summaries: Sequence[Document]
    ) -> None:
        """Insert the instances of one tenant's writes in one journaled request, and the
        summaries of attributes new to their entities (those already summarised stay)."""
        prepared = await self._tenant(tenant)
        async with translated("history"):
            if records:
                await prepared.instances.insert_many(list(records), ordered=False)
            if summaries:
                try:
                    await prepared.summaries.insert_many(list(summaries), ordered=False)
                except BulkWriteError as error:
                    if any(e.get("code") != 11000 for e in error.details["writeErrors"]):
                        raise

    async def summaries(
        self, tenant: str | None, entity_id: str, names: Sequence[str] | None
    ) -> list[Document]:
        """The summaries of the entity's attributes that have a history (of `names`), by
        expanded name: `entity`, `attr`, `types` and `first` (when first recorded)."""
        prepared = await self._tenant(tenant)
        query: Document = {"entity": entity_id}
        if names is not None:
            query["attr"] = {"$in": list(names)}
        async with self._reading():
            found = await prepared.summaries.find(query, max_time_ms=self.time_ms).to_list()
        return sorted(found, key=lambda summary: str(summary["attr"]))

    async def instances(
        self, tenant: str | None, summary: Document, query: TemporalQuery, limit: int
    ) -> list[Document]:
        """At most `limit` instances of the summary's attribute that the query selects:
        the earliest ones first, or with lastN the latest ones first; read window by window
        (`_windows.py`) until there are enough."""
        instances = await self.collection(tenant)
        newest_first = query.last_n is not None
        direction = DESCENDING if newest_first else ASCENDING
        field = query.time_field
        # Instances of the same time come in the order they were written.
        sort = [(field, direction), (RECORDED_AT if field != RECORDED_AT else "_id", direction)]
        selected = {"entity": summary["entity"], "attr": summary["attr"]}
        anchor = utc_now() if newest_first else summary["first"]
        walk = Walk(query.window(), anchor, newest_first)
        found: list[Document] = []
        held = 0
        while (window := walk.next(held, limit - len(found))) is not None:
            async with self._reading():
                read = await instances.find(
                    {**selected, **window.filter(field)},
                    sort=sort,
                    limit=limit - len(found),
                    max_time_ms=self.time_ms,
                ).to_list()
            held = len(read)
            found += read
            if len(found) >= limit:
                break
        return found

    async def aggregate(
        self,
        tenant: str | None,
        summary: Document,
        query: TemporalQuery,
        aggregation: Aggregation,
        limit: int,
    ) -> tuple[list[Document], datetime]:
        """The attribute's periods (`_aggregation.py`), at most `limit` of them, the earliest
        first (the latest first with lastN), and where the periods start."""
        instances = await self.collection(tenant)
        selected = {"entity": summary["entity"], "attr": summary["attr"], **query.time_filter()}
        if query.timerel in ("after", "between") and query.time_at is not None:
            start = query.time_at
        else:  # the earliest instance selected, read through a walk: about one is read
            earliest = await self.instances(tenant, summary, replace(query, last_n=None), 1)
            if not earliest:
                return [], summary["first"]
            start = earliest[0][query.time_field]
        stages = pipeline(selected, query, aggregation, start, limit)
        async with self._reading():
            cursor = await instances.aggregate(stages, maxTimeMS=self.time_ms)
            groups = await cursor.to_list()
        return groups, start

    async def tenants(self) -> list[str]:
        """Every tenant the directory holds (the default tenant is not among them)."""
        async with translated("tenant registry"):
            return [entry.name for entry in await self.store.directory.entries()]

    async def expire(self, tenant: str | None, cutoff: datetime) -> int:
        """Delete the tenant's instances written before `cutoff`; how many went. Summaries
        keep their earliest times: windows are only sized from them."""
        instances = await self.collection(tenant)
        async with translated("history"):
            result = await instances.delete_many({RECORDED_AT: {"$lt": cutoff}})
        return result.deleted_count

    async def delete_entity(self, tenant: str | None, entity_id: str) -> int:
        """Delete the entity's whole history; how many documents (instances and summaries)
        went."""
        prepared = await self._tenant(tenant)
        async with translated("history"):
            result = await prepared.instances.delete_many({"entity": entity_id})
            summaries = await prepared.summaries.delete_many({"entity": entity_id})
        return result.deleted_count + summaries.deleted_count
