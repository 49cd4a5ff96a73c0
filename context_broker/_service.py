"""The broker's operations, one function per operation of ETSI GS CIM 009 clause 5.

They take parsed request data (payload, the caller's term map, the tenant) and return
stored documents or outcomes; the HTTP layer turns those into representations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from copy import copy, deepcopy
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, TypeVar

from context_broker._api_validation import ApiValidation
from context_broker._attributes import parse_attribute
from context_broker._entities import (
    AttributeOutcome,
    Document,
    FieldUpdate,
    Fragment,
    append_attributes,
    attributes_update,
    build_document,
    delete_all_attributes,
    delete_attribute,
    delete_scope,
    earliest_written_expiry,
    entity_id_of,
    expire_attributes,
    merge_entity,
    next_expiry,
    parse_fragment,
    partial_attribute_update,
    partial_update_attribute,
    replace_attribute,
    replace_entity,
    update_attributes,
    with_field_update,
)
from context_broker._errors import (
    BadRequestData,
    NgsiLdError,
    NonexistentTenant,
    ResourceNotFound,
    StoreUnavailable,
)
from context_broker._expiry import ExpirySchedule
from context_broker._jsonld import TermMap
from context_broker._linked import fetch_linked
from context_broker._linked_q import LinkedQuery, with_targets
from context_broker._names import check_name, check_uri, decode_field, encode_field
from context_broker._plan_executor import QueryPage, execute
from context_broker._purge import Purge
from context_broker._query._plan import (
    ENTITY_SORT_FIELDS,
    EntityQuery,
    SortKey,
    attribute_sort_field,
    plan,
)
from context_broker._query._q import Query
from context_broker._store import EntityRepository, Store
from context_broker._subscriptions._changes import (
    NO_CHANGES,
    ChangeSink,
    EntityChange,
    NoChanges,
)
from context_broker._time import utc_now

__all__ = [
    "ENTITY_SORT_FIELDS",
    "BatchKind",
    "BatchResult",
    "Broker",
    "EntityQuery",
    "QueryPage",
    "SortKey",
    "attribute_sort_field",
]

T = TypeVar("T")
_SCOPE_FIELD = encode_field("https://uri.etsi.org/ngsi-ld/scope")
_RETRIES = 8
BatchKind = Literal["create", "upsert", "update", "delete", "merge"]


@dataclass(slots=True)
class BatchResult:
    """BatchOperationResult (clause 5.2.16): the ids that succeeded and the errors by id."""

    success: list[str] = field(default_factory=list)
    errors: list[tuple[str, NgsiLdError]] = field(default_factory=list)
    created: set[str] = field(default_factory=set)


class Broker:
    """The NGSI-LD operations over the store, tenant by tenant."""

    def __init__(
        self,
        store: Store,
        changes: ChangeSink = NO_CHANGES,
        expiry: ExpirySchedule | None = None,
        validation: ApiValidation | None = None,
    ) -> None:
        self.store = store
        # Each tenant's API-side validation of its profile's types (`_api_validation.py`).
        self.validation = validation
        # Told of each acknowledged write, for subscriptions (`_subscriptions/_changes.py`).
        self.changes = changes
        # Where entities with an expiresAt are recorded for the sweep (`_expiry.py`).
        self.expiry = expiry

    async def _schedule_expiry(self, tenant: str | None, docs: Sequence[Document]) -> None:
        """Record when the written entities expire, whole or in part, for those that do."""
        if self.expiry is not None:
            await self.expiry.keep(tenant, docs)

    async def _listening(self, tenant: str | None) -> bool:
        """Whether the sink wants the tenant's changes: only then do writes read the versions
        they do not need themselves."""
        return not isinstance(self.changes, NoChanges) and await self.changes.listens(tenant)

    async def _needs_documents(self, tenant: str | None) -> bool:
        """Whether the sink wants the tenant's changes as whole entities before and after
        (notifications do; history needs only what each write stamped)."""
        return not isinstance(self.changes, NoChanges) and await self.changes.needs_documents(
            tenant
        )

    async def _validating(self, tenant: str | None) -> bool:
        """Whether the tenant's writes are checked (then no write takes a fast path that
        would skip the entity as it will be after the write)."""
        if self.validation is None:
            return False
        return (await self.validation.policy(tenant)).mode != "off"

    async def _validate(self, tenant: str | None, doc: Document, terms: TermMap) -> None:
        """Check the entity as it will be stored against the tenant's profile, if asked."""
        if self.validation is None or tenant is None:
            return
        policy = await self.validation.policy(tenant)
        if policy.mode != "off":
            await self.validation.check(tenant, policy, doc, terms)

    async def _report(self, changes: Sequence[EntityChange]) -> None:
        """Tell the sink of acknowledged changes (read while it listened)."""
        if changes:
            await self.changes.entities_changed(changes)

    async def _repo(
        self, tenant: str | None, *, create_if_missing: bool = False
    ) -> EntityRepository:
        return await self.store.repository(tenant, create_if_missing=create_if_missing)

    async def _modify(
        self,
        tenant: str | None,
        repo: EntityRepository,
        entity_id: str,
        change: Callable[[Document], tuple[Document, T]],
        terms: TermMap | None = None,
    ) -> T:
        """Read, change in memory, write back if nobody wrote in between; retry otherwise.
        `change` returns the document to write and the operation's outcome. The change is
        reported with the document as read, which the version check proves it replaced."""
        listening = await self._listening(tenant)
        whole = listening and await self._needs_documents(tenant)
        for _ in range(_RETRIES):
            doc = await repo.get(entity_id)
            if doc is None:
                raise ResourceNotFound(f"entity {entity_id} does not exist")
            before = deepcopy(doc) if whole else _version_of(doc)
            written, result = change(doc)
            if terms is not None:
                await self._validate(tenant, written, terms)
            if await repo.replace(written, before):
                await self._schedule_expiry(tenant, [written])
                if listening:
                    told = before if whole else None
                    await self._report([EntityChange(tenant, entity_id, told, written)])
                return result
        raise StoreUnavailable(f"entity {entity_id} is being changed by others; try again")

    async def _update_existing(
        self, tenant: str | None, repo: EntityRepository, entity_id: str, change: FieldUpdate
    ) -> bool:
        """The one-round-trip attribute update (`EntityRepository.update_existing`); when
        anyone listens, the store answers the entity before it, to report the change."""
        if not await self._listening(tenant):
            updated = await repo.update_existing(entity_id, change)
        else:
            before = await repo.update_existing_before(entity_id, change)
            updated = before is not None
            if before is not None:
                after = with_field_update(before, change)
                await self._report([EntityChange(tenant, entity_id, before, after)])
        expires = earliest_written_expiry(change)
        if updated and expires is not None and self.expiry is not None:
            await self.expiry.keep_times(tenant, [(entity_id, expires)])
        return updated

    # --- clause 5.6: entities -------------------------------------------------------------

    async def create_entity(self, tenant: str | None, payload: object, terms: TermMap) -> str:
        doc = build_document(payload, terms, utc_now())
        await self._validate(tenant, doc, terms)
        repo = await self._repo(tenant, create_if_missing=True)
        await repo.insert(doc)
        await self._schedule_expiry(tenant, [doc])
        if await self._listening(tenant):
            await self._report([EntityChange(tenant, doc["_id"], None, doc)])
        return str(doc["_id"])

    async def retrieve_entity(
        self,
        tenant: str | None,
        entity_id: str,
        attrs: Sequence[str] | None = None,
        *,
        entity_type: str | None = None,
    ) -> Document:
        """Retrieve Entity (clause 5.7.1); `entity_type` (expanded) must be one of its types."""
        check_uri(entity_id, "entity id")
        repo = await self._repo(tenant)
        doc = await repo.get(entity_id, attrs)
        if doc is None:
            raise ResourceNotFound(f"entity {entity_id} does not exist")
        _check_type(doc, entity_type)
        return doc

    async def delete_entity(
        self, tenant: str | None, entity_id: str, *, entity_type: str | None = None
    ) -> None:
        check_uri(entity_id, "entity id")
        repo = await self._repo(tenant)
        if entity_type is not None:
            await self.retrieve_entity(tenant, entity_id, [], entity_type=entity_type)
        listening = await self._listening(tenant)
        deleted = await repo.delete(entity_id, whole=await self._needs_documents(tenant))
        if deleted is None:
            raise ResourceNotFound(f"entity {entity_id} does not exist")
        if listening:
            await self._report([EntityChange(tenant, entity_id, deleted, None)])

    async def replace_entity(
        self, tenant: str | None, entity_id: str, payload: object, terms: TermMap
    ) -> None:
        now = utc_now()
        check_uri(entity_id, "entity id")
        payload = _with_id(payload, entity_id)
        new_doc = build_document(payload, terms, now)
        repo = await self._repo(tenant)
        await self._modify(
            tenant,
            repo,
            entity_id,
            lambda doc: (replace_entity(doc, new_doc, now), None),
            terms,
        )

    async def merge_entity(
        self, tenant: str | None, entity_id: str, payload: object, terms: TermMap
    ) -> None:
        now = utc_now()
        check_uri(entity_id, "entity id")
        fragment = _fragment_for(payload, entity_id, terms, now, allow_null=True)
        repo = await self._repo(tenant)
        await self._modify(
            tenant,
            repo,
            entity_id,
            _in_place(lambda doc: merge_entity(doc, fragment, now)),
            terms,
        )

    async def append_attributes(
        self,
        tenant: str | None,
        entity_id: str,
        payload: object,
        terms: TermMap,
        *,
        no_overwrite: bool,
        entity_type: str | None = None,
    ) -> AttributeOutcome:
        now = utc_now()
        check_uri(entity_id, "entity id")
        fragment = _fragment_for(payload, entity_id, terms, now)
        repo = await self._repo(tenant)
        return await self._modify(
            tenant,
            repo,
            entity_id,
            _in_place(
                _typed(
                    entity_type,
                    lambda doc: append_attributes(doc, fragment, now, no_overwrite=no_overwrite),
                )
            ),
            terms,
        )

    async def update_attributes(
        self,
        tenant: str | None,
        entity_id: str,
        payload: object,
        terms: TermMap,
        *,
        entity_type: str | None = None,
    ) -> AttributeOutcome:
        now = utc_now()
        check_uri(entity_id, "entity id")
        fragment = _fragment_for(payload, entity_id, terms, now)
        repo = await self._repo(tenant)
        fast = attributes_update(fragment, now) if entity_type is None else None
        if fast is not None and await self._validating(tenant):
            fast = None
        if fast is not None and await self._update_existing(tenant, repo, entity_id, fast):
            return AttributeOutcome(updated=[decode_field(encoded) for encoded in fragment.attrs])
        return await self._modify(
            tenant,
            repo,
            entity_id,
            _in_place(_typed(entity_type, lambda doc: update_attributes(doc, fragment, now))),
            terms,
        )

    async def partial_update_attribute(
        self,
        tenant: str | None,
        entity_id: str,
        attr: str,
        payload: object,
        terms: TermMap,
        *,
        entity_type: str | None = None,
    ) -> None:
        now = utc_now()
        encoded = _attribute_field(entity_id, attr, terms)
        if encoded == _SCOPE_FIELD:
            raise BadRequestData("scope is not an attribute: change it with Update or Merge Entity")
        repo = await self._repo(tenant)
        if isinstance(payload, dict) and entity_type is None and not await self._validating(tenant):
            fast = partial_attribute_update(payload, attr, encoded, terms, now)
            if fast is not None and await self._update_existing(tenant, repo, entity_id, fast):
                return
        await self._modify(
            tenant,
            repo,
            entity_id,
            _in_place(
                _typed(
                    entity_type,
                    lambda doc: partial_update_attribute(doc, attr, encoded, payload, terms, now),
                )
            ),
            terms,
        )

    async def replace_attribute(
        self,
        tenant: str | None,
        entity_id: str,
        attr: str,
        payload: object,
        terms: TermMap,
        *,
        entity_type: str | None = None,
    ) -> None:
        now = utc_now()
        encoded = _attribute_field(entity_id, attr, terms)
        instances = parse_attribute(payload, attr, terms, now)
        repo = await self._repo(tenant)
        await self._modify(
            tenant,
            repo,
            entity_id,
            _in_place(
                _typed(
                    entity_type,
                    lambda doc: replace_attribute(doc, attr, encoded, instances, now),
                )
            ),
            terms,
        )

    async def delete_attribute(
        self,
        tenant: str | None,
        entity_id: str,
        attr: str,
        terms: TermMap,
        *,
        dataset_id: str | None,
        delete_all: bool,
        entity_type: str | None = None,
    ) -> None:
        now = utc_now()
        encoded = _attribute_field(entity_id, attr, terms)
        if dataset_id == "@none":
            dataset_id = None
        if dataset_id is not None:
            check_uri(dataset_id, "datasetId")
        repo = await self._repo(tenant)
        if entity_type is not None:
            await self.retrieve_entity(tenant, entity_id, [], entity_type=entity_type)
        if encoded == _SCOPE_FIELD:
            scope_gone = _in_place(lambda doc: delete_scope(doc, now))
            await self._modify(tenant, repo, entity_id, scope_gone)
            return
        await self._modify(
            tenant,
            repo,
            entity_id,
            _in_place(
                lambda doc: delete_attribute(
                    doc, attr, encoded, now, dataset_id=dataset_id, delete_all=delete_all
                )
            ),
        )

    async def delete_attributes(
        self, tenant: str | None, entity_id: str, *, entity_type: str | None = None
    ) -> None:
        """DELETE on the attributes resource (clause 6.6, a Contesto extension): every
        attribute goes, the entity stays; `entity_type` (expanded) must be one of its types."""
        now = utc_now()
        check_uri(entity_id, "entity id")
        repo = await self._repo(tenant)
        await self._modify(
            tenant,
            repo,
            entity_id,
            _in_place(_typed(entity_type, lambda doc: delete_all_attributes(doc, now))),
        )

    # --- clause 5.6.7-5.6.10, 5.6.20: batch operations ------------------------------------

    async def batch(
        self,
        tenant: str | None,
        kind: BatchKind,
        items: list[tuple[object, TermMap]],
        *,
        option: str | None = None,
    ) -> BatchResult:
        """Run a batch operation; each item fails or succeeds on its own."""
        if kind == "delete":
            return await self._batch_delete(tenant, [payload for payload, _ in items])
        result = BatchResult()
        now = utc_now()
        parsed: list[tuple[str, object, TermMap]] = []
        for payload, terms in items:
            try:
                parsed.append((entity_id_of(payload), payload, terms))
            except NgsiLdError as error:
                result.errors.append((_raw_id(payload), error))
        repo = await self._repo(tenant, create_if_missing=True)
        listening = await self._listening(tenant)
        whole = listening and await self._needs_documents(tenant)
        if kind in ("create", "upsert"):
            docs: list[Document] = []
            for entity_id, payload, terms in parsed:
                try:
                    doc = build_document(payload, terms, now)
                    await self._validate(tenant, doc, terms)
                    docs.append(doc)
                except NgsiLdError as error:
                    result.errors.append((entity_id, error))
            docs = _last_wins(docs) if kind == "upsert" else docs
            if kind == "create":
                failures = await repo.insert_many(docs) if docs else {}
                created = {doc["_id"] for i, doc in enumerate(docs) if i not in failures}
                before: dict[str, Document] = {}
            else:
                created, failures, before = (
                    await repo.upsert_many(docs, replace=option != "update", whole=whole)
                    if docs
                    else (set(), {}, {})
                )
            for index, doc in enumerate(docs):
                if index in failures:
                    result.errors.append((doc["_id"], failures[index]))
                else:
                    result.success.append(doc["_id"])
            result.created = set(created)
            written = [doc for index, doc in enumerate(docs) if index not in failures]
            await self._schedule_expiry(tenant, written)
            if whole:
                await self._report_written(tenant, repo, kind, written, before)
            elif listening:  # each entity as written: its stamped attributes
                await self._report([EntityChange(tenant, doc["_id"], None, doc) for doc in written])
            return result
        for entity_id, payload, terms in parsed:
            try:
                if kind == "update":
                    outcome = await self.append_attributes(
                        tenant, entity_id, payload, terms, no_overwrite=option == "noOverwrite"
                    )
                    if outcome.not_updated:
                        kept = ", ".join(terms.compact(name) for name, _ in outcome.not_updated)
                        raise BadRequestData(f"noOverwrite kept the existing attributes {kept}")
                else:
                    await self.merge_entity(tenant, entity_id, payload, terms)
                result.success.append(entity_id)
            except NgsiLdError as error:
                result.errors.append((entity_id, error))
        return result

    async def _batch_delete(self, tenant: str | None, ids: list[object]) -> BatchResult:
        result = BatchResult()
        valid: list[str] = []
        for raw in ids:
            try:
                valid.append(check_uri(raw, "entity id"))
            except NgsiLdError as error:
                result.errors.append((str(raw), error))
        repo = await self._repo(tenant)
        existing = await repo.existing_ids(valid) if valid else set()
        deleted_once: set[str] = set()
        for entity_id in valid:
            if entity_id in existing and entity_id not in deleted_once:
                deleted_once.add(entity_id)
                result.success.append(entity_id)
            else:
                result.errors.append(
                    (entity_id, ResourceNotFound(f"entity {entity_id} does not exist"))
                )
        if existing:
            listening = await self._listening(tenant)
            whole = await self._needs_documents(tenant)
            deleted = await repo.delete_many(sorted(existing), whole=whole)
            if listening:
                await self._report([EntityChange(tenant, doc["_id"], doc, None) for doc in deleted])
        return result

    async def _report_written(
        self,
        tenant: str | None,
        repo: EntityRepository,
        kind: BatchKind,
        written: Sequence[Document],
        before: Mapping[str, Document],
    ) -> None:
        """Report the entities a batch create or upsert wrote: a created entity as built, an
        upserted one as read back after the write (the store merged it with what it held).
        Called only while the sink listens."""
        if not written:
            return
        if kind == "create":
            await self._report([EntityChange(tenant, doc["_id"], None, doc) for doc in written])
            return
        ids = [doc["_id"] for doc in written]
        after = await repo.get_many(ids)
        await self._report(
            [
                EntityChange(tenant, entity_id, before.get(entity_id), after[entity_id])
                for entity_id in ids
                if entity_id in after  # else a deletion came in between, and reports itself
            ]
        )

    # --- clause 5.7: query and discovery ---------------------------------------------------

    async def query_entities(self, tenant: str | None, query: EntityQuery) -> QueryPage:
        """Query Entities (clause 5.7.2): one page in the requested order (by id by default;
        nearest first for a near geo-query, else by id for any geo-query)."""
        repo = await self._repo(tenant)
        return await execute(repo, plan(query, self.store.traits))

    async def purge_entities(
        self, tenant: str | None, query: EntityQuery, purge: Purge, *, batch: int
    ) -> int:
        """Purge Entities (clause 5.6.21): delete the entities `query` selects, or drop
        attributes from them, a page of `batch` entities at a time, each change reported as
        the other writes report theirs. Returns how many entities it deleted or changed."""
        repo = await self._repo(tenant)
        pages = replace(query, names=(), order=(), limit=batch, offset=0, count=False)
        if purge.deletes_entities:
            return await self._purge_deleting(tenant, repo, pages)
        ids = await self._selected_ids(repo, pages, "Purge Entities with drop or keep")
        changed = 0
        now = utc_now()
        for entity_id in ids:
            try:
                if await self._modify(
                    tenant, repo, entity_id, lambda doc: (doc, purge.apply(doc, now))
                ):
                    changed += 1
            except ResourceNotFound:
                continue  # deleted in the meantime
        return changed

    async def matching_ids(self, tenant: str | None, query: EntityQuery) -> list[str]:
        """The ids of every entity `query` selects, in id order, at most the query bound of
        documents (else TooManyResults): the targets a linked `q` term compares with."""
        repo = await self._repo(tenant)
        pages = replace(query, names=(), order=(), limit=1000, offset=0, count=False)
        return await self._selected_ids(repo, pages, "the condition of a linked q term")

    async def _purge_deleting(
        self, tenant: str | None, repo: EntityRepository, pages: EntityQuery
    ) -> int:
        """Delete the first page of matches until none is left."""
        deleted_count = 0
        while True:
            page = await execute(repo, plan(pages, self.store.traits))
            if not page.docs:
                return deleted_count
            listening = await self._listening(tenant)
            whole = await self._needs_documents(tenant)
            deleted = await repo.delete_page([doc["_id"] for doc in page.docs], whole=whole)
            if listening:
                await self._report([EntityChange(tenant, doc["_id"], doc, None) for doc in deleted])
            deleted_count += len(deleted)
            if not page.more or not deleted:
                return deleted_count

    async def _selected_ids(
        self, repo: EntityRepository, pages: EntityQuery, what: str
    ) -> list[str]:
        """Every id `pages` selects, page by page in id order, at most the query bound."""
        ids: list[str] = []
        while True:
            page = await execute(repo, plan(replace(pages, offset=len(ids)), self.store.traits))
            ids += [doc["_id"] for doc in page.docs]
            repo.check_documents(len(ids), what)
            if not page.more:
                return ids

    async def expire_entity(
        self, tenant: str | None, entity_id: str, now: datetime
    ) -> datetime | None:
        """Delete a transient entity whose expiresAt has passed at `now`, else its expired
        attribute instances and sub-attributes (clause 4.22), reporting each as a deletion;
        nothing when it is gone, rewritten to live on, or its tenant gone. When the entity
        expires next, in whole or in part (None: never)."""
        try:
            repo = await self._repo(tenant)
        except NonexistentTenant:
            return None
        listening = await self._listening(tenant)
        deleted = await repo.delete_expired(
            entity_id, now, whole=await self._needs_documents(tenant)
        )
        if deleted is not None:
            if listening:
                await self._report([EntityChange(tenant, entity_id, deleted, None)])
            return None
        doc = await repo.get(entity_id)
        if doc is None:
            return None
        if expire_attributes(deepcopy(doc), now):
            try:
                return await self._modify(tenant, repo, entity_id, _expiring(now))
            except ResourceNotFound:
                return None
        return next_expiry(doc)

    async def resolve_linked_q(
        self, tenant: str | None, linked: LinkedQuery, expand: Callable[[str], str], levels: int
    ) -> Query:
        """`linked.query` with each term through a Relationship (`managedBy{name}=="Acme"`,
        clause 4.9 with 4.5.23) compared with the ids of the entities its condition
        selects; a condition going through Relationships again is resolved first, at most
        `levels` deep (CONTESTO_JOIN_MAX_LEVEL)."""
        targets = []
        for condition in linked.conditions:
            if condition.conditions and levels <= 1:
                raise BadRequestData(
                    "q goes through more Relationships than CONTESTO_JOIN_MAX_LEVEL"
                )
            inner = await self.resolve_linked_q(tenant, condition, expand, levels - 1)
            targets.append(await self.matching_ids(tenant, EntityQuery(q=inner, expand=expand)))
        return with_targets(linked.query, targets)

    async def linked_entities(
        self,
        tenant: str | None,
        docs: Sequence[Document],
        level: int,
        max_entities: int,
        traversed: Iterable[str] = (),
    ) -> dict[str, Document]:
        """The tenant's entities linked from `docs`, up to `level` Relationships away
        (Linked Entity Retrieval, clause 4.5.23), one read per level, without the
        `traversed` ones (containedBy)."""
        if not docs:
            return {}
        repo = await self._repo(tenant)
        return await fetch_linked(repo.get_many, docs, level, max_entities, traversed)

    async def type_attribute_pairs(
        self, tenant: str | None, types: Sequence[str] = ()
    ) -> list[tuple[str, str | None, int]]:
        repo = await self._repo(tenant)
        return await repo.type_attribute_pairs({"type": {"$in": list(types)}} if types else {})

    async def entity_count(self, tenant: str | None, type_iri: str) -> int:
        repo = await self._repo(tenant)
        return await repo.type_count(type_iri)

    async def attribute_count(self, tenant: str | None, attribute_iri: str) -> int:
        repo = await self._repo(tenant)
        return await repo.count({"an": attribute_iri})

    async def attribute_kinds(
        self, tenant: str | None, attribute_iris: Sequence[str], type_iri: str | None = None
    ) -> dict[str, set[str]]:
        """The attribute kinds (Property, Relationship, ...) in use for each attribute."""
        repo = await self._repo(tenant)
        query: dict[str, Any] = {"an": {"$in": list(attribute_iris)}}
        if type_iri is not None:
            query["type"] = type_iri
        return await repo.attribute_kinds(query, attribute_iris)


def _version_of(doc: Document) -> Document:
    """What `EntityRepository.replace` needs of the document read when nobody listens: its
    id, types and version, copied before a change edits them in place."""
    kept: Document = {"_id": doc["_id"], "type": copy(doc["type"])}
    if "v" in doc:
        kept["v"] = doc["v"]
    return kept


def _check_type(doc: Document, entity_type: str | None) -> None:
    """A single-entity operation's `type` (clause 6.5.3.1): another type is not found."""
    if entity_type is not None and entity_type not in doc["type"]:
        raise ResourceNotFound(f"entity {doc['_id']} is not of type {entity_type}")


def _typed(entity_type: str | None, change: Callable[[Document], T]) -> Callable[[Document], T]:
    """`change`, on an entity of `entity_type` only (None: of any type)."""

    def checked(doc: Document) -> T:
        _check_type(doc, entity_type)
        return change(doc)

    return checked


def _in_place(change: Callable[[Document], T]) -> Callable[[Document], tuple[Document, T]]:
    """A change that edits the document it reads, as `Broker._modify` takes it."""
    return lambda doc: (doc, change(doc))


def _expiring(now: datetime) -> Callable[[Document], tuple[Document, datetime | None]]:
    """The change that removes the attributes expired at `now`; its outcome is when the
    entity expires next."""

    def change(doc: Document) -> tuple[Document, datetime | None]:
        expire_attributes(doc, now)
        return doc, next_expiry(doc)

    return change


def _attribute_field(entity_id: str, attr: str, terms: TermMap) -> str:
    """The stored field of the attribute a URL names, after checking the URL's names."""
    check_uri(entity_id, "entity id")
    return encode_field(terms.expand(check_name(attr, "attribute name")))


def _with_id(payload: object, entity_id: str) -> object:
    if not isinstance(payload, dict):
        raise BadRequestData("the payload must be a JSON object")
    given = payload.get("id")
    if given is not None and given != entity_id:
        raise BadRequestData(f"the payload's id {given!r} differs from the entity id in the URL")
    return {**payload, "id": entity_id}


def _fragment_for(
    payload: object, entity_id: str, terms: TermMap, now: datetime, *, allow_null: bool = False
) -> Fragment:
    if isinstance(payload, dict) and payload.get("id", entity_id) != entity_id:
        raise BadRequestData(
            f"the payload's id {payload.get('id')!r} differs from the entity id in the URL"
        )
    return parse_fragment(payload, terms, now, allow_null=allow_null)


def _last_wins(docs: list[Document]) -> list[Document]:
    """In an upsert batch an id given twice keeps its last payload (the spec's order)."""
    by_id = {doc["_id"]: doc for doc in docs}
    return list(by_id.values())


def _raw_id(payload: object) -> str:
    if isinstance(payload, dict):
        return str(payload.get("id", ""))
    return ""
