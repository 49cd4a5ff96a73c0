"""The store adapter: the only module that speaks to MongoDB (PyMongo's async API).

One database per tenant (`<prefix>` for the default tenant, `<prefix>_<tenant>` for the
others) holding an `entities` collection; a platform database `<prefix>__platform` holds
the tenant registry and the hosted @contexts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from bson.errors import InvalidDocument
from pymongo import ASCENDING, AsyncMongoClient, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    ConnectionFailure,
    DuplicateKeyError,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
)
from pymongo.monitoring import CommandListener

from context_broker._budget import QueryBudget, StoreTurns, TenantGate
from context_broker._entities import FieldUpdate
from context_broker._errors import (
    AlreadyExists,
    BadRequestData,
    NgsiLdError,
    NonexistentTenant,
    StoreUnavailable,
    TooComplexQuery,
    TooManyResults,
)
from context_broker._names import encode_field
from context_broker._query._pages import Bucket, total
from context_broker._query._plan import ID_ORDER, SortSpec
from context_broker._query._store_traits import QUERY_TRAITS, StoreTraits
from context_broker._single_commit import SingleCommitWriter
from context_broker._type_pages import Change, TypeRanges, stored_types, type_changes
from regional_tenants import MongoTenantDirectory, platform_database, tenant_database
from store_edge import API_SERVER_SELECTION_MS, HEARTBEAT_MS, Reachability, client_options

Document = dict[str, Any]
Filter = dict[str, Any]
MAX_VALUE_INDEXES = 24
"""On-demand indexes of attribute members that queries compare, per tenant."""
_INDEX_NOT_FOUND = 27
# A batch size no answer reaches: the whole answer in one round trip (a reply is still
# split at 16 MiB), instead of a first batch of 101 documents and a getMore for the rest.
_ALL = 1_000_000
_OPTIMISTIC_RETRIES = 8
"""Reads and conditional writes of one entity before giving up to concurrent writers."""

_UNREACHABLE = "the entity store is not reachable; try again shortly"
_WRITE_PROJECTION = {"type": 1, "an": 1, "gc": 1, "gp": 1}
"""What a batch upsert reads of the entities it writes (`_upsert_operation`)."""


def store_error(error: PyMongoError, what: str) -> NgsiLdError:
    """Translate a driver error into the error a client sees."""
    if isinstance(error, DuplicateKeyError):
        return AlreadyExists(f"{what} already exists")
    if isinstance(error, ConnectionFailure | ServerSelectionTimeoutError | AutoReconnect):
        return StoreUnavailable(_UNREACHABLE)
    return StoreUnavailable(f"the entity store failed: {error}")


@asynccontextmanager
async def translated(what: str) -> AsyncIterator[None]:
    try:
        yield
    except PyMongoError as error:
        raise store_error(error, what) from error
    except (InvalidDocument, OverflowError) as error:
        raise BadRequestData(f"{what} cannot be stored: {error}") from error


class EntityRepository:
    """One tenant's entities."""

    def __init__(
        self,
        database: AsyncDatabase[Document],
        budget: QueryBudget | None = None,
        turns: StoreTurns | None = None,
    ) -> None:
        self.database = database
        self.budget = budget or QueryBudget()
        self._gate = TenantGate.of(self.budget, turns)
        self._ms = self.budget.time_ms
        self.entities: AsyncCollection[Document] = database["entities"]
        self._single_commit = SingleCommitWriter(self.entities)
        self._ranges = TypeRanges(database, self.entities)
        self._geo_indexed: set[str] | None = None
        self._value_indexed: set[str] | None = None

    @asynccontextmanager
    async def _reading(self, what: str) -> AsyncIterator[None]:
        """One read of this tenant's entities: a slot of the tenant's gate, then the time
        budget (`_budgeted`)."""
        async with self._gate.slot(), self._budgeted(what):
            yield

    @asynccontextmanager
    async def _budgeted(self, what: str) -> AsyncIterator[None]:
        """The time budget of one read, errors translated. Each read sends the budget as
        maxTimeMS (`self._ms`), and the store answers "exceeded time limit" in time; the
        broker's own wait, a little longer so that the connection survives an ordinary
        expiry, bounds a store that does not."""
        async with translated(what):
            try:
                async with asyncio.timeout(self.budget.wait_s):
                    yield
            except (ExecutionTimeout, TimeoutError):
                raise self._over_budget() from None

    def _over_budget(self) -> TooComplexQuery:
        return TooComplexQuery(
            f"the query did not finish within its time budget of "
            f"{self.budget.time_ms} ms (CONTESTO_QUERY_TIME_BUDGET_MS); narrow it "
            "(type, q, a smaller area) or ask without count"
        )

    def check_time(self, started: float) -> None:
        """Refuse a query whose reads, since `started` (`time.monotonic()`), took over the
        time budget: a query read in several reads is checked between them."""
        if time.monotonic() - started > self.budget.time_ms / 1000:
            raise self._over_budget()

    @property
    def max_documents(self) -> int:
        """The most entities one read may bring into the broker."""
        return self.budget.max_documents

    def check_documents(self, found: int, what: str) -> None:
        """Refuse a read that would hold more than the bound of documents in the broker."""
        if found > self.budget.max_documents:
            raise TooManyResults(
                f"{what} selects over {self.budget.max_documents} entities, the most one "
                "query may hold (CONTESTO_QUERY_MAX_DOCUMENTS); narrow it"
            )

    async def prepare(self) -> None:
        async with translated("entity store"):
            await self.entities.create_index([("modifiedAt", ASCENDING)])
            await self.entities.create_index([("an", ASCENDING)])
            # A type's id range (a page of it) is read through this index alone; it also
            # serves every lookup by type. The embedded store updates each index on every
            # write of an entity, changed or not (about 0.35 ms of store CPU per index), so
            # no index on the type alone is made. One that an earlier version made is left:
            # dropping it holds the embedded store for seconds (docs/operations.md).
            await self.entities.create_index([("type", ASCENDING), ("_id", ASCENDING)])
            await self._ranges.prepare()

    async def type_ranges(self, type_iri: str) -> list[Bucket]:
        """The type's id ranges in id order and how many entities each holds."""
        async with self._reading("entities"):
            return await self._ranges.of(type_iri)

    async def range_matches(
        self,
        type_iri: str,
        ids: Mapping[str, str],
        rest: Mapping[str, Any] | None,
        fields: Sequence[str],
    ) -> list[Document]:
        """The entities of the type whose ids meet `ids` (a condition on `_id`) and that
        match `rest`, with `fields` and their id only. The store reads the range through
        the (`type`, `_id`) index alone, holding its lock for those entities only, and
        tests `rest` on them after (a second `$match`, never merged into the first)."""
        pipeline: list[dict[str, Any]] = [{"$match": {"type": type_iri, "_id": dict(ids)}}]
        if rest:
            pipeline.append({"$match": dict(rest)})
        pipeline.append({"$project": dict.fromkeys(fields, 1) or {"_id": 1}})
        async with self._reading("entities"):
            cursor = await self.entities.aggregate(pipeline, batchSize=_ALL, maxTimeMS=self._ms)
            return await cursor.to_list()

    async def type_count(self, type_iri: str) -> int:
        """How many entities have the type, from its id ranges' counts."""
        return total(await self.type_ranges(type_iri))

    async def _count_types(self, changes: Iterable[Change]) -> None:
        """Keep the types' id ranges in step with entities written or deleted."""
        async with translated("entity store"):
            await self._ranges.count(changes)

    async def ensure_geo_indexes(self, docs: Iterable[Document]) -> None:
        """Keep the geo indexes of every GeoProperty name the documents use."""
        await self.ensure_geo_fields(
            field
            for doc in docs
            for field, instance in doc.get("attrs", {}).items()
            if instance.get("type") == "GeoProperty"
        )

    async def ensure_geo_fields(self, fields: Iterable[str]) -> None:
        """Per GeoProperty name a point key index (`gp.<field>`) and a cell index
        (`gc.<field>`), also for data the broker did not write itself.

        Earlier versions also kept a 2dsphere index per GeoProperty; no query uses one, and
        on the embedded store it more than doubled the cost of every write, so those are
        dropped when first seen (the broker validates GeoJSON itself)."""
        wanted = set(fields)
        if not wanted:
            return
        if self._geo_indexed is None:
            async with translated("entity store"):
                info = await self.entities.index_information()
            keys = {spec["key"][0][0] for spec in info.values()}
            self._geo_indexed = {
                key[len("gc.") :]
                for key in keys
                if key.startswith("gc.") and f"gp.{key[len('gc.') :]}" in keys
            }
            for name, spec in info.items():
                if spec["key"][0][1] == "2dsphere" and spec["key"][0][0].startswith("attrs."):
                    await self._drop_index(name)
        for field in wanted - self._geo_indexed:
            async with translated("entity store"):
                await self.entities.create_index([(f"gp.{field}", ASCENDING)])
                await self.entities.create_index([(f"gc.{field}", ASCENDING)])
            self._geo_indexed.add(field)

    async def _drop_index(self, name: str) -> None:
        async with translated("entity store"):
            try:
                await self.entities.drop_index(name)
            except OperationFailure as error:
                if error.code != _INDEX_NOT_FOUND:  # else another process dropped it first
                    raise

    async def insert(self, doc: Document) -> None:
        await self.ensure_geo_indexes([doc])
        async with translated(f"entity {doc['_id']}"):
            await self.entities.insert_one(doc)
        await self._count_types(type_changes(doc["_id"], (), doc["type"]))

    async def get(self, entity_id: str, names: Sequence[str] | None = None) -> Document | None:
        projection = None if names is None else _projection(names)
        # A read by id costs the store one document: it takes no slot of the tenant's gate,
        # which is there for reads whose cost grows with the tenant.
        async with self._budgeted(f"entity {entity_id}"):
            return await self.entities.find_one(
                {"_id": entity_id}, projection, max_time_ms=self._ms
            )

    async def replace(self, doc: Document, before: Document) -> bool:
        """Write a changed document if nobody else wrote it since `before` (the document as
        read, at least its `type` and `v`) was read. False when another write came in
        between and nothing was written."""
        await self.ensure_geo_indexes([doc])
        async with translated(f"entity {doc['_id']}"):
            result = await self.entities.replace_one(_unchanged_since(before), doc)
        if result.matched_count == 0:
            return False
        await self._count_types(type_changes(doc["_id"], before["type"], doc["type"]))
        return True

    async def update_existing(self, entity_id: str, change: FieldUpdate) -> bool:
        """One-round-trip update of default attribute instances the entity must already have
        (of the given kind, when one is given): the hot path of attribute updates. False
        when the entity lacks one of them."""
        await self.ensure_geo_indexes([change.written])
        query, update = _existing_update(entity_id, change)
        async with translated(f"entity {entity_id}"):
            result = await self.entities.update_one(query, update)
        return result.matched_count == 1

    async def update_existing_before(self, entity_id: str, change: FieldUpdate) -> Document | None:
        """`update_existing`, answering the entity's whole stored document as it was before
        the update (`with_field_update` gives it after); None when the entity lacks one of
        the attributes and nothing was written. A read, then an update on condition that
        the entity's version is still the one read: on the embedded store a find-and-modify
        costs twice the store time of the two (docs/architecture.md, "Notifications")."""
        await self.ensure_geo_indexes([change.written])
        query, update = _existing_update(entity_id, change)
        for _ in range(_OPTIMISTIC_RETRIES):
            before = await self.get(entity_id)
            if before is None or not _has_required(before, change):
                return None
            async with translated(f"entity {entity_id}"):
                result = await self.entities.update_one(
                    {**query, **_unchanged_since(before)}, update
                )
            if result.matched_count == 1:
                return before
        raise StoreUnavailable(f"entity {entity_id} is being changed by others; try again")

    async def delete(self, entity_id: str, *, whole: bool = False) -> Document | None:
        """Delete the entity; return the document deleted (its types only, unless `whole`),
        None when there was none. A read and a delete on condition of the version read, as
        in `update_existing_before`."""
        projection = None if whole else {"type": 1, "v": 1}
        for _ in range(_OPTIMISTIC_RETRIES):
            async with self._budgeted(f"entity {entity_id}"):
                deleted: Document | None = await self.entities.find_one(
                    {"_id": entity_id}, projection, max_time_ms=self._ms
                )
            if deleted is None:
                return None
            async with translated(f"entity {entity_id}"):
                result = await self.entities.delete_one(_unchanged_since(deleted))
            if result.deleted_count == 1:
                await self._count_types(type_changes(entity_id, deleted["type"], ()))
                return deleted
        raise StoreUnavailable(f"entity {entity_id} is being changed by others; try again")

    async def delete_expired(
        self, entity_id: str, now: datetime, *, whole: bool = False
    ) -> Document | None:
        """Delete the entity if its expiresAt has passed at `now`; the document deleted (its
        types only, unless `whole`), None when it is gone or not (or no longer) expired.
        Any number of processes may try the same entity: one deletes it."""
        projection = None if whole else {"type": 1, "v": 1}
        expired = {"_id": entity_id, "expiresAt": {"$lte": now}}
        async with self._budgeted(f"entity {entity_id}"):
            found: Document | None = await self.entities.find_one(
                expired, projection, max_time_ms=self._ms
            )
        if found is None:
            return None
        async with translated(f"entity {entity_id}"):
            result = await self.entities.delete_one(_unchanged_since(found))
        if result.deleted_count != 1:
            return None  # written in between: its new expiresAt is scheduled anew
        await self._count_types(type_changes(entity_id, found["type"], ()))
        return found

    async def existing_ids(self, ids: Sequence[str]) -> set[str]:
        async with self._reading("entities"):
            cursor = self.entities.find(
                {"_id": {"$in": list(ids)}}, {"_id": 1}, max_time_ms=self._ms
            )
            return {doc["_id"] async for doc in cursor}

    async def get_many(
        self, ids: Sequence[str], names: Sequence[str] | None = None
    ) -> dict[str, Document]:
        projection = None if names is None else _projection(names)
        async with self._reading("entities"):
            cursor = self.entities.find(
                {"_id": {"$in": list(ids)}}, projection, max_time_ms=self._ms
            )
            return {doc["_id"]: doc async for doc in cursor}

    async def geometries(
        self, lookup: Mapping[str, Any], rest: Mapping[str, Any], field: str
    ) -> list[tuple[str, tuple[dict[str, Any], list[str]]]]:
        """(id, (GeoJSON value of attrs.<field>, types)) of the entities matching `lookup`
        and `rest`.

        `lookup` must be a one-field indexed condition. The embedded store looks a filter up
        by its first field and scans for one with a top-level operator: a plain `rest` is
        appended to the lookup in one find (there the cheapest form, per query and per
        document), any other runs as a second `$match` stage after it.
        """
        projection = {f"attrs.{field}.value": 1, "type": 1}
        bound = self.budget.max_documents + 1
        if not any(key.startswith("$") or key in lookup for key in rest):
            async with self._reading("entities"):
                found = self.entities.find(
                    {**lookup, **rest},
                    projection,
                    batch_size=_ALL,
                    limit=bound,
                    max_time_ms=self._ms,
                )
                rows = [(doc["_id"], _geometry_and_types(doc, field)) async for doc in found]
        else:
            pipeline: list[dict[str, Any]] = [{"$match": dict(lookup)}]
            if rest:
                pipeline.append({"$match": dict(rest)})
            pipeline += [{"$limit": bound}, {"$project": projection}]
            async with self._reading("entities"):
                cursor = await self.entities.aggregate(pipeline, batchSize=_ALL, maxTimeMS=self._ms)
                rows = [(doc["_id"], _geometry_and_types(doc, field)) async for doc in cursor]
        self.check_documents(len(rows), "the geo-query")
        return rows

    async def exists(self, query: Mapping[str, Any]) -> bool:
        """Whether any entity matches `query`."""
        async with self._reading("entities"):
            found = await self.entities.find_one(query, {"_id": 1}, max_time_ms=self._ms)
            return found is not None

    async def scan(
        self, queries: Sequence[Mapping[str, Any]], fields: Sequence[str], *, limit: int
    ) -> list[Document]:
        """The entities matching any of `queries`, with only `fields` (and `_id`), each id
        once; stops once more than `limit` are found (the caller refuses that many)."""
        projection = dict.fromkeys(fields, 1) or {"_id": 1}
        found: dict[str, Document] = {}
        for query in queries:
            async with self._reading("entities"):
                cursor = self.entities.find(
                    query, projection, limit=limit + 1, batch_size=_ALL, max_time_ms=self._ms
                )
                async for doc in cursor:
                    found.setdefault(doc["_id"], doc)
            if len(found) > limit:
                break
        return list(found.values())

    async def insert_many(self, docs: Sequence[Document]) -> dict[int, NgsiLdError]:
        """Insert what can be inserted; return the errors by position."""
        await self.ensure_geo_indexes(docs)
        errors: dict[int, NgsiLdError] = {}
        try:
            await self.entities.insert_many(list(docs), ordered=False)
        except BulkWriteError as error:
            errors = {
                item["index"]: _write_error(item, docs[item["index"]]["_id"])
                for item in error.details["writeErrors"]
            }
        except PyMongoError as error:
            raise store_error(error, "entities") from error
        except (InvalidDocument, OverflowError) as error:
            raise BadRequestData(f"entities cannot be stored: {error}") from error
        await self._count_types(
            change
            for index, doc in enumerate(docs)
            if index not in errors
            for change in type_changes(doc["_id"], (), doc["type"])
        )
        return errors

    async def upsert_many(
        self, docs: Sequence[Document], *, replace: bool, whole: bool = False
    ) -> tuple[set[str], dict[int, NgsiLdError], dict[str, Document]]:
        """Create or update many entities in one bulk write; return the ids created and errors.

        `replace`: the entity's attributes become those given; else they are added/replaced
        one by one. createdAt of existing entities and attributes survives either way only at
        entity level (attributes given are written anew). A batch that succeeds whole is
        committed once; one with errors is written entity by entity, for each one's answer.
        Also returns the entities that existed, by id, as read before the write (their
        types, attribute names and geo-query keys only, unless `whole`).
        """
        await self.ensure_geo_indexes(docs)
        ids = [doc["_id"] for doc in docs]
        projection = None if whole else _WRITE_PROJECTION
        # Read and written in one commit, the update of each entity does only what the
        # entity as read needs (the store refuses the commit if it changed since): the
        # embedded store's cost of an update grows with its paths. Else written with
        # updates that need no read.
        batch = await self._single_commit.bulk_write_after_read(
            ids, projection, lambda found: _upsert_operations(docs, found, replace=replace)
        )
        if batch is not None:
            found, result = batch
            before = {doc["_id"]: doc for doc in found}
            created = {docs[i]["_id"] for i in result.upserted_ids or {}}
            errors: dict[int, NgsiLdError] = {}
        else:
            before = await self._stored(ids, whole=whole)
            created, errors = await self._upsert(docs, replace=replace)
        changes: list[Change] = []
        for index, doc in enumerate(docs):
            entity_id = doc["_id"]
            if index in errors:
                continue
            stored = before.get(entity_id)
            old = set() if entity_id in created or stored is None else stored_types(stored["type"])
            new = stored_types(doc["type"]) | (set() if replace else old)
            changes += type_changes(entity_id, old, new)
        await self._count_types(changes)
        return created, errors, before

    async def _stored(self, ids: Sequence[str], *, whole: bool) -> dict[str, Document]:
        """Those of the entities that exist, by id: their types, or whole when `whole`."""
        async with translated("entities"):
            cursor = self.entities.find({"_id": {"$in": list(ids)}}, None if whole else {"type": 1})
            return {doc["_id"]: doc async for doc in cursor}

    async def _upsert(
        self, docs: Sequence[Document], *, replace: bool
    ) -> tuple[set[str], dict[int, NgsiLdError]]:
        operations = [_upsert_operation(doc, replace=replace) for doc in docs]
        try:
            result = await self.entities.bulk_write(operations, ordered=False)
        except BulkWriteError as error:
            created = {docs[u["index"]]["_id"] for u in error.details.get("upserted", [])}
            return created, {
                item["index"]: _write_error(item, docs[item["index"]]["_id"])
                for item in error.details["writeErrors"]
            }
        except PyMongoError as error:
            raise store_error(error, "entities") from error
        except (InvalidDocument, OverflowError) as error:
            raise BadRequestData(f"entities cannot be stored: {error}") from error
        upserted = result.upserted_ids or {}
        return {docs[i]["_id"] for i in upserted}, {}

    async def delete_page(self, ids: Sequence[str], *, whole: bool = False) -> list[Document]:
        """`delete_many` in one read and one commit when the store allows it (Purge
        Entities): each entity deleted at the version read, all or none, else one by one."""
        projection = None if whole else {"type": 1, "v": 1}
        async with self._reading("entities"):
            cursor = self.entities.find(
                {"_id": {"$in": list(ids)}}, projection, max_time_ms=self._ms
            )
            found = [doc async for doc in cursor]
        async with translated("entities"):
            whole_page = await self._single_commit.delete_all(
                [_unchanged_since(doc) for doc in found]
            )
        if not whole_page:
            return await self.delete_many(ids, whole=whole)
        await self._count_types(
            change for doc in found for change in type_changes(doc["_id"], doc["type"], ())
        )
        return found

    async def delete_many(self, ids: Sequence[str], *, whole: bool = False) -> list[Document]:
        """Delete the entities, one by one: each deletion names the types it takes away.
        Returns the documents deleted, in the order of `ids` (their types only, unless
        `whole`)."""
        changes: list[Change] = []
        gone: list[Document] = []
        projection = None if whole else {"type": 1}
        async with translated("entities"):
            for entity_id in ids:
                deleted = await self.entities.find_one_and_delete({"_id": entity_id}, projection)
                if deleted is not None:
                    gone.append(deleted)
                    changes += type_changes(entity_id, deleted["type"], ())
        await self._count_types(changes)
        return gone

    async def _find(
        self,
        query: Mapping[str, Any],
        projection: Mapping[str, Any] | None,
        sort: SortSpec,
        skip: int,
        limit: int,
        collation: str | None,
    ) -> list[Document]:
        async with self._reading("entities"):
            cursor = self.entities.find(
                query,
                projection,
                sort=list(sort),
                skip=skip,
                limit=limit,
                collation=None if collation is None else {"locale": collation},
                max_time_ms=self._ms,
            )
            return await cursor.to_list()

    async def find(
        self,
        queries: Sequence[Mapping[str, Any]],
        *,
        names: Sequence[str] | None,
        sort: SortSpec,
        skip: int,
        limit: int,
        collation: str | None,
    ) -> list[Document]:
        """One page of the entities matching any of `queries`, each run on its own so that
        each can use an index; several merge on `sort`, which must name scalar fields every
        entity has."""
        projection = None if names is None else _projection(names)
        if len(queries) == 1:
            return await self._find(queries[0], projection, sort, skip, limit, collation)
        self.check_documents(skip + limit, "offset + limit over several alternatives")
        keys = dict.fromkeys((field for field, _ in sort), 1)
        rows: dict[str, Document] = {}
        for query in queries:
            # the first skip+limit of each alternative hold the first skip+limit of all
            for row in await self._find(query, keys, sort, 0, skip + limit, collation):
                rows[row["_id"]] = row
        ordered = list(rows.values())
        for field, direction in reversed(sort):
            ordered.sort(key=lambda row: row[field], reverse=direction < 0)
        page = [row["_id"] for row in ordered[skip : skip + limit]]
        if not page:
            return []
        found = await self._find({"_id": {"$in": page}}, projection, ID_ORDER, 0, len(page), None)
        by_id = {doc["_id"]: doc for doc in found}
        return [by_id[entity_id] for entity_id in page if entity_id in by_id]

    async def count(self, query: Mapping[str, Any]) -> int:
        async with self._reading("entities"):
            return await self.entities.count_documents(query, maxTimeMS=self._ms)

    async def count_any(
        self, queries: Sequence[Mapping[str, Any]], *, collation: str | None
    ) -> int:
        """How many entities match any of `queries`."""
        locale = None if collation is None else {"locale": collation}
        if len(queries) == 1:
            async with self._reading("entities"):
                return await self.entities.count_documents(
                    queries[0], collation=locale, maxTimeMS=self._ms
                )
        ids: set[str] = set()
        bound = self.budget.max_documents + 1
        for query in queries:
            async with self._reading("entities"):
                cursor = self.entities.find(
                    query, {"_id": 1}, collation=locale, limit=bound, max_time_ms=self._ms
                )
                ids.update([doc["_id"] async for doc in cursor])
            self.check_documents(len(ids), "counting over several alternatives")
        return len(ids)

    async def ensure_value_indexes(self, fields: Sequence[str]) -> None:
        """Index attribute members that queries look up, on first use, up to
        MAX_VALUE_INDEXES per tenant; past that, queries on other members scan."""
        if not fields:
            return
        if self._value_indexed is None:
            async with translated("entity store"):
                info = await self.entities.index_information()
            self._value_indexed = {
                spec["key"][0][0]
                for spec in info.values()
                if len(spec["key"]) == 1
                and spec["key"][0][1] == ASCENDING
                and spec["key"][0][0].startswith(("attrs.", "ds."))
            }
        for field in fields:
            if field in self._value_indexed or len(self._value_indexed) >= MAX_VALUE_INDEXES:
                continue
            async with translated("entity store"):
                await self.entities.create_index([(field, ASCENDING)])
            self._value_indexed.add(field)

    async def type_attribute_pairs(
        self, query: Mapping[str, Any]
    ) -> list[tuple[str, str | None, int]]:
        """(type, attribute name, entity count) for every type and attribute in use."""
        pipeline: list[dict[str, Any]] = [
            {"$match": dict(query)},
            {"$project": {"type": 1, "an": 1}},
            {"$unwind": "$type"},
            {"$unwind": {"path": "$an", "preserveNullAndEmptyArrays": True}},
            {"$group": {"_id": {"t": "$type", "a": "$an"}, "n": {"$sum": 1}}},
        ]
        async with self._reading("entities"):
            cursor = await self.entities.aggregate(pipeline, maxTimeMS=self._ms)
            rows = await cursor.to_list()
        return [(row["_id"]["t"], row["_id"].get("a"), row["n"]) for row in rows]

    async def attribute_kinds(
        self, query: Mapping[str, Any], names: Sequence[str]
    ) -> dict[str, set[str]]:
        """The kinds (Property, Relationship, ...) of the stored instances of each named
        attribute, for discovery details; read in batches, never all entities at once."""
        kinds: dict[str, set[str]] = {name: set() for name in names}
        fields = {name: encode_field(name) for name in names}
        async with self._reading("entities"):
            cursor = self.entities.find(
                query, _kind_projection(names), batch_size=1000, max_time_ms=self._ms
            )
            async for doc in cursor:
                for name, field in fields.items():
                    instance = doc.get("attrs", {}).get(field)
                    if instance is not None:
                        kinds[name].add(instance["type"])
                    kinds[name].update(other["type"] for other in doc.get("ds", {}).get(field, []))
        return kinds


def _geometry_and_types(doc: Document, field: str) -> tuple[dict[str, Any], list[str]]:
    return doc["attrs"][field]["value"], doc["type"]


def _projection(names: Sequence[str]) -> dict[str, int]:
    projection = {"type": 1, "scope": 1, "createdAt": 1, "modifiedAt": 1, "v": 1, "an": 1}
    projection["expiresAt"] = 1
    for name in names:
        field = encode_field(name)
        projection[f"attrs.{field}"] = 1
        projection[f"ds.{field}"] = 1
    return projection


def _kind_projection(names: Sequence[str]) -> dict[str, int]:
    projection: dict[str, int] = {"an": 1}
    for name in names:
        field = encode_field(name)
        projection[f"attrs.{field}.type"] = 1
        projection[f"ds.{field}.type"] = 1
    return projection


def _unchanged_since(doc: Document) -> Filter:
    """The filter of an entity still at the version `doc` was read at."""
    version = doc.get("v")
    return {"_id": doc["_id"], "v": version if version is not None else {"$exists": False}}


def _has_required(doc: Document, change: FieldUpdate) -> bool:
    """Whether `doc` has the attribute instances `change` requires, as the filter of
    `_existing_update` tests them (an instance of the kind, in any dataset)."""
    attrs = doc.get("attrs", {})
    for field, kind in change.required:
        instances = attrs.get(field)
        if not isinstance(instances, list):
            instances = [instances]
        if not any(
            isinstance(each, dict) and "type" in each and (kind is None or each["type"] == kind)
            for each in instances
        ):
            return False
    return True


def _existing_update(entity_id: str, change: FieldUpdate) -> tuple[Filter, dict[str, Any]]:
    """The filter and update of `EntityRepository.update_existing`."""
    update: dict[str, Any] = {"$set": dict(change.set_fields), "$inc": {"v": 1}}
    if change.unset_fields:
        update["$unset"] = dict.fromkeys(change.unset_fields, "")
    query: Filter = {"_id": entity_id}
    for field, kind in change.required:
        query[f"attrs.{field}.type"] = {"$exists": True} if kind is None else kind
    return query, update


def _write_error(item: Mapping[str, Any], entity_id: str) -> NgsiLdError:
    if item.get("code") == 11000:
        return AlreadyExists(f"entity {entity_id} already exists")
    return BadRequestData(f"entity {entity_id} could not be stored: {item.get('errmsg')}")


def _upsert_operations(
    docs: Sequence[Document], found: Sequence[Document], *, replace: bool
) -> list[UpdateOne]:
    """The updates of `docs` given the entities `found` as they are (read in the same
    commit): one that is not there is known to be new."""
    stored = {doc["_id"]: doc for doc in found}
    return [
        _upsert_operation(doc, replace=replace, stored=stored.get(doc["_id"], {})) for doc in docs
    ]


def _upsert_operation(doc: Document, *, replace: bool, stored: Document | None = None) -> UpdateOne:
    """The upsert of `doc`. With `stored`, the entity as it is (empty: not there), types and
    attribute names it holds are not added again, and only the geo-query keys it holds are
    removed; without, every key the attributes may have had is removed."""
    set_fields: dict[str, Any] = {"modifiedAt": doc["modifiedAt"]}
    update: dict[str, Any] = {
        "$setOnInsert": {"createdAt": doc["createdAt"]},
        "$inc": {"v": 1},
    }
    unset_fields: dict[str, str] = {}
    if replace:
        set_fields.update({"type": doc["type"], "an": doc["an"], "attrs": doc["attrs"]})
        for member in ("ds", "gc", "gp"):
            set_fields[member] = doc.get(member, {})
        for member in ("scope", "expiresAt"):
            if member in doc:
                set_fields[member] = doc[member]
            else:
                unset_fields[member] = ""
    else:
        added = {
            member: [name for name in doc[member] if name not in _held(stored, member, list)]
            for member in ("type", "an")
        }
        update["$addToSet"] = {member: {"$each": names} for member, names in added.items() if names}
        if not update["$addToSet"]:
            del update["$addToSet"]
        grid = {member: _held(stored, member, dict) for member in ("gc", "gp")}
        for field, instance in doc["attrs"].items():
            set_fields[f"attrs.{field}"] = instance
            for member in ("gc", "gp"):  # the grid keys of the attribute's new value
                if field in doc.get(member, {}):
                    set_fields[f"{member}.{field}"] = doc[member][field]
                elif stored is None or field in grid[member]:
                    unset_fields[f"{member}.{field}"] = ""
        for field, instances in doc.get("ds", {}).items():
            set_fields[f"ds.{field}"] = instances
        for member in ("scope", "expiresAt"):
            if member in doc:
                set_fields[member] = doc[member]
    update["$set"] = set_fields
    if unset_fields:
        update["$unset"] = unset_fields
    return UpdateOne({"_id": doc["_id"]}, update, upsert=True)


def _held(stored: Document | None, member: str, kind: type) -> Any:
    """What the stored entity holds in `member` (names or keys) when it is of the `kind`
    the broker writes, else nothing: names are then all added, and removing a key from
    what is not a document is no change."""
    if stored is None:
        return kind()
    held = stored.get(member, kind())
    return held if isinstance(held, kind) else kind()


class Store:
    """The store client, the tenant directory and each tenant's repository."""

    traits: StoreTraits = QUERY_TRAITS
    """How queries are shaped for the store (`_query/_store_traits.py`)."""

    def __init__(
        self,
        client: AsyncMongoClient[Document],
        prefix: str,
        *,
        auto_create: bool,
        budget: QueryBudget | None = None,
        reachability: Reachability | None = None,
    ):
        self.client = client
        self.reachability = reachability or Reachability()
        self.prefix = prefix
        self.budget = budget or QueryBudget()
        self._turns = StoreTurns(self.budget.store_slots)
        self.platform: AsyncDatabase[Document] = client[platform_database(prefix)]
        self.directory = MongoTenantDirectory(client, prefix, auto_create=auto_create)
        self._known: dict[str | None, EntityRepository] = {}
        # A tenant deleted or suspended anywhere: its next request opens it afresh (or
        # finds it gone) instead of writing into a dropped database.
        self.directory.on_forget(self._forget)

    @classmethod
    def connect(
        cls,
        url: str,
        prefix: str,
        *,
        auto_create: bool,
        journaled: bool = True,
        budget: QueryBudget | None = None,
        listeners: Sequence[CommandListener] = (),
    ) -> Store:
        # A store that is down makes requests fail fast (503), not hang; one that is
        # busy is waited for.
        reachability = Reachability()
        client: AsyncMongoClient[Document] = AsyncMongoClient(
            url,
            **client_options(url, journaled=journaled, server_selection_ms=API_SERVER_SELECTION_MS),
            heartbeatFrequencyMS=HEARTBEAT_MS,
            event_listeners=[reachability, *listeners],
        )
        return cls(
            client, prefix, auto_create=auto_create, budget=budget, reachability=reachability
        )

    async def close(self) -> None:
        await self.client.close()

    async def first_contact(self, within_s: float) -> None:
        """Wait until the client's first heartbeat has ended, at most `within_s`: a fresh
        client on a busy store takes longer to find it than a request waits for a store."""
        await self.client.aconnect()
        deadline = time.monotonic() + within_s
        while not self.reachability.heard and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    async def server_version(self, within_s: float) -> str | None:
        """The store server's version, or None when it does not answer within `within_s`."""
        if self.reachability.down:
            return None
        try:
            async with asyncio.timeout(within_s):
                info = await self.client.admin.command("buildInfo")
        except (PyMongoError, TimeoutError):
            return None
        version = info.get("version")
        return str(version) if version is not None else None

    async def tenant_count(self, within_s: float) -> int | None:
        """How many tenants the directory holds, or None when it does not answer in time."""
        if self.reachability.down:
            return None
        try:
            async with asyncio.timeout(within_s):
                return len(await self.directory.entries())
        except (PyMongoError, TimeoutError):
            return None

    def is_open(self, tenant: str) -> bool:
        """Whether this process has opened the tenant's repository (the tenant exists)."""
        return tenant in self._known

    def _forget(self, tenant: str) -> None:
        self._known.pop(tenant, None)

    async def repository(
        self, tenant: str | None, *, create_if_missing: bool = False
    ) -> EntityRepository:
        """The tenant's repository. An unknown tenant is created when `create_if_missing`
        and the directory allows it (the first write of creation operations), else it is
        NonexistentTenant."""
        if self.reachability.down:
            raise StoreUnavailable(_UNREACHABLE)
        if tenant is not None:
            async with translated("tenant registry"):
                if create_if_missing:
                    present = await self.directory.create_if_allowed(tenant)
                else:
                    present = await self.directory.exists(tenant)
            if not present:
                raise NonexistentTenant(f"tenant {tenant!r} does not exist", tenant=tenant)
        known = self._known.get(tenant)
        if known is not None:
            return known
        repository = EntityRepository(
            self.client[tenant_database(self.prefix, tenant)], self.budget, self._turns
        )
        await repository.prepare()
        # Requests that found the tenant unknown together share the first repository (and
        # with it the tenant's read gate).
        return self._known.setdefault(tenant, repository)

    @property
    def contexts(self) -> AsyncCollection[Document]:
        return self.platform["contexts"]
