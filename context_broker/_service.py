"""The broker's operations, one function per operation of ETSI GS CIM 009 clause 5.

They take parsed request data (payload, the caller's term map, the tenant) and return
stored documents or outcomes; the HTTP layer turns those into representations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from context_broker._attributes import (
    REPLACEABLE_MEMBERS,
    VALUE_MEMBERS,
    parse_attribute,
    parse_instance,
)
from context_broker._entities import (
    GRID_MEMBERS,
    AttributeOutcome,
    Document,
    Fragment,
    append_attributes,
    build_document,
    delete_attribute,
    entity_id_of,
    grid_keys,
    is_null_instance,
    merge_entity,
    parse_fragment,
    partial_update_attribute,
    replace_attribute,
    replace_entity,
    update_attributes,
)
from context_broker._errors import (
    BadRequestData,
    NgsiLdError,
    ResourceNotFound,
    StoreUnavailable,
)
from context_broker._geo_search import geo_search
from context_broker._jsonld import TermMap
from context_broker._names import check_name, check_uri, decode_field, encode_field
from context_broker._pattern_search import matching_candidates, ordered_by_store, page_in_order
from context_broker._query import AttrPath, Query, ScopeQuery, scope_q_to_mongo, to_mongo
from context_broker._query._geo import GeoQuery
from context_broker._query._patterns import PatternPlan, plan_patterns
from context_broker._query._regex import anchored_prefix
from context_broker._query._to_mongo import prefix_range
from context_broker._query._types import TypeSelection, type_filter
from context_broker._store import ID_ORDER, EntityRepository, Filter, SortSpec, Store
from context_broker._time import utc_now

T = TypeVar("T")
_RETRIES = 8
BatchKind = Literal["create", "upsert", "update", "delete", "merge"]


@dataclass(slots=True)
class BatchResult:
    """BatchOperationResult (clause 5.2.16): the ids that succeeded and the errors by id."""

    success: list[str] = field(default_factory=list)
    errors: list[tuple[str, NgsiLdError]] = field(default_factory=list)
    created: set[str] = field(default_factory=set)


_INSTANCE_MEMBERS = frozenset({"observedAt", "createdAt", "modifiedAt", "unitCode"})
ENTITY_SORT_FIELDS = {
    "id": "_id",
    "type": "type",
    "createdAt": "createdAt",
    "modifiedAt": "modifiedAt",
}
# Sort fields every entity has as one scalar: results of several filters merge on them.
_MERGEABLE_SORT = frozenset({"_id", "createdAt", "modifiedAt"})
# Alternatives a selection may split into, each one indexed lookup: a q term on a value has
# three (Property value, ListProperty, an instance with a datasetId), so three AND-ed terms
# take 27; past this the selection runs as one filter, which the embedded store scans.
_MAX_BRANCHES = 32


@dataclass(slots=True, frozen=True)
class SortKey:
    """One key of an orderBy (clause 4.23): a stored field and its direction."""

    field: str
    descending: bool = False


@dataclass(slots=True, frozen=True)
class EntityQuery:
    """Query Entities (clause 5.7.2): the selection, the attributes to fetch, order and page."""

    ids: tuple[str, ...] = ()
    id_pattern: str | None = None
    types: TypeSelection = ()
    attrs: tuple[str, ...] = ()
    q: Query | None = None
    scope_q: ScopeQuery | None = None
    geo: GeoQuery | None = None
    expand: Callable[[str], str] = str
    names: tuple[str, ...] | None = None
    order: tuple[SortKey, ...] = ()
    collation: str | None = None
    limit: int = 20
    offset: int = 0
    count: bool = False


@dataclass(slots=True, frozen=True)
class QueryPage:
    """One page of a query: the entities, the total when counted, whether more follow."""

    docs: list[Document]
    total: int | None
    more: bool


def attribute_sort_field(path: AttrPath, expand: Callable[[str], str]) -> str:
    """The stored field an orderBy attribute path orders by (its value, or a named member)."""
    base = "attrs." + encode_field(expand(path.attribute))
    subs = path.sub_attributes
    member = "value"
    if subs and subs[-1] in _INSTANCE_MEMBERS:
        member, subs = subs[-1], subs[:-1]
        if path.json_path:
            raise BadRequestData(f"orderBy: {member} has no members to address with [...]")
    if path.json_path == ("*",):
        raise BadRequestData("orderBy: [*] selects many values; name one member")
    for name in subs:
        base += ".sub." + encode_field(expand(name))
    field = f"{base}.{member}"
    return ".".join((field, *path.json_path))


class Broker:
    """The NGSI-LD operations over the store, tenant by tenant."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def _repo(self, tenant: str | None, *, for_write: bool) -> EntityRepository:
        return await self.store.repository(tenant, for_write=for_write)

    async def _modify(
        self, repo: EntityRepository, entity_id: str, change: Callable[[Document], T]
    ) -> T:
        """Read, change in memory, write back if nobody wrote in between; retry otherwise."""
        for _ in range(_RETRIES):
            doc = await repo.get(entity_id)
            if doc is None:
                raise ResourceNotFound(f"entity {entity_id} does not exist")
            version = doc.get("v", 0)
            result = change(doc)
            if await repo.replace(doc, version):
                return result
        raise StoreUnavailable(f"entity {entity_id} is being changed by others; try again")

    # --- clause 5.6: entities -------------------------------------------------------------

    async def create_entity(self, tenant: str | None, payload: object, terms: TermMap) -> str:
        doc = build_document(payload, terms, utc_now())
        repo = await self._repo(tenant, for_write=True)
        await repo.insert(doc)
        return str(doc["_id"])

    async def retrieve_entity(
        self, tenant: str | None, entity_id: str, attrs: Sequence[str] | None = None
    ) -> Document:
        check_uri(entity_id, "entity id")
        repo = await self._repo(tenant, for_write=False)
        doc = await repo.get(entity_id, attrs)
        if doc is None:
            raise ResourceNotFound(f"entity {entity_id} does not exist")
        return doc

    async def delete_entity(self, tenant: str | None, entity_id: str) -> None:
        check_uri(entity_id, "entity id")
        repo = await self._repo(tenant, for_write=False)
        if not await repo.delete(entity_id):
            raise ResourceNotFound(f"entity {entity_id} does not exist")

    async def replace_entity(
        self, tenant: str | None, entity_id: str, payload: object, terms: TermMap
    ) -> None:
        check_uri(entity_id, "entity id")
        payload = _with_id(payload, entity_id)
        new_doc = build_document(payload, terms, utc_now())
        repo = await self._repo(tenant, for_write=False)
        for _ in range(_RETRIES):
            doc = await repo.get(entity_id)
            if doc is None:
                raise ResourceNotFound(f"entity {entity_id} does not exist")
            replaced = replace_entity(doc, new_doc, utc_now())
            if await repo.replace(replaced, doc.get("v", 0)):
                return
        raise StoreUnavailable(f"entity {entity_id} is being changed by others; try again")

    async def merge_entity(
        self, tenant: str | None, entity_id: str, payload: object, terms: TermMap
    ) -> None:
        check_uri(entity_id, "entity id")
        fragment = _fragment_for(payload, entity_id, terms, allow_null=True)
        repo = await self._repo(tenant, for_write=False)
        await self._modify(repo, entity_id, lambda doc: merge_entity(doc, fragment, utc_now()))

    async def append_attributes(
        self,
        tenant: str | None,
        entity_id: str,
        payload: object,
        terms: TermMap,
        *,
        no_overwrite: bool,
    ) -> AttributeOutcome:
        check_uri(entity_id, "entity id")
        fragment = _fragment_for(payload, entity_id, terms)
        repo = await self._repo(tenant, for_write=False)
        return await self._modify(
            repo,
            entity_id,
            lambda doc: append_attributes(doc, fragment, utc_now(), no_overwrite=no_overwrite),
        )

    async def update_attributes(
        self, tenant: str | None, entity_id: str, payload: object, terms: TermMap
    ) -> AttributeOutcome:
        check_uri(entity_id, "entity id")
        fragment = _fragment_for(payload, entity_id, terms)
        repo = await self._repo(tenant, for_write=False)
        if fragment.types is None and _all_default_instances(fragment):
            now = utc_now()
            set_fields: dict[str, Any] = {"modifiedAt": now}
            unset: list[str] = []
            for encoded, (instance,) in fragment.attrs.items():
                for member, value in instance.items():
                    if member != "createdAt":
                        set_fields[f"attrs.{encoded}.{member}"] = value
                keys = grid_keys(instance)
                for member in GRID_MEMBERS:
                    if member in keys:
                        set_fields[f"{member}.{encoded}"] = keys[member]
                    else:
                        unset.append(f"{member}.{encoded}")
                unset.extend(
                    f"attrs.{encoded}.{member}"
                    for member in REPLACEABLE_MEMBERS
                    if member not in instance
                )
            required = [(encoded, None) for encoded in fragment.attrs]
            if await repo.update_existing(
                entity_id, required, set_fields, unset, [_geo_view(fragment)]
            ):
                names = [decode_field(encoded) for encoded in fragment.attrs]
                return AttributeOutcome(updated=names)
        return await self._modify(
            repo, entity_id, lambda doc: update_attributes(doc, fragment, utc_now())
        )

    async def partial_update_attribute(
        self,
        tenant: str | None,
        entity_id: str,
        attr: str,
        payload: object,
        terms: TermMap,
    ) -> None:
        encoded = _attribute_field(entity_id, attr, terms)
        repo = await self._repo(tenant, for_write=False)
        if isinstance(payload, dict) and "datasetId" not in payload:
            now = utc_now()
            fast = _partial_update_fields(payload, attr, encoded, terms, now)
            if fast is not None:
                kind, set_fields, unset = fast
                geo = {"attrs": {encoded: {"type": kind}}}
                if await repo.update_existing(
                    entity_id, [(encoded, kind)], set_fields, unset, [geo]
                ):
                    return
        await self._modify(
            repo,
            entity_id,
            lambda doc: partial_update_attribute(doc, attr, encoded, payload, terms, utc_now()),
        )

    async def replace_attribute(
        self,
        tenant: str | None,
        entity_id: str,
        attr: str,
        payload: object,
        terms: TermMap,
    ) -> None:
        encoded = _attribute_field(entity_id, attr, terms)
        instances = parse_attribute(payload, attr, terms, utc_now())
        repo = await self._repo(tenant, for_write=False)
        await self._modify(
            repo,
            entity_id,
            lambda doc: replace_attribute(doc, attr, encoded, instances, utc_now()),
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
    ) -> None:
        encoded = _attribute_field(entity_id, attr, terms)
        if dataset_id is not None:
            check_uri(dataset_id, "datasetId")
        repo = await self._repo(tenant, for_write=False)
        await self._modify(
            repo,
            entity_id,
            lambda doc: delete_attribute(
                doc,
                attr,
                encoded,
                utc_now(),
                dataset_id=dataset_id,
                delete_all=delete_all,
            ),
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
        repo = await self._repo(tenant, for_write=True)
        if kind in ("create", "upsert"):
            docs: list[Document] = []
            for entity_id, payload, terms in parsed:
                try:
                    docs.append(build_document(payload, terms, now))
                except NgsiLdError as error:
                    result.errors.append((entity_id, error))
            docs = _last_wins(docs) if kind == "upsert" else docs
            if kind == "create":
                failures = await repo.insert_many(docs) if docs else {}
                created = {doc["_id"] for i, doc in enumerate(docs) if i not in failures}
            else:
                created, failures = (
                    await repo.upsert_many(docs, replace=option != "update")
                    if docs
                    else (set(), {})
                )
            for index, doc in enumerate(docs):
                if index in failures:
                    result.errors.append((doc["_id"], failures[index]))
                else:
                    result.success.append(doc["_id"])
            result.created = set(created)
            return result
        for entity_id, payload, terms in parsed:
            try:
                if kind == "update":
                    outcome = await self.append_attributes(
                        tenant, entity_id, payload, terms, no_overwrite=option == "noOverwrite"
                    )
                    del outcome
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
        repo = await self._repo(tenant, for_write=False)
        existing = await repo.existing_ids(valid) if valid else set()
        for entity_id in valid:
            if entity_id in existing:
                result.success.append(entity_id)
            else:
                result.errors.append(
                    (entity_id, ResourceNotFound(f"entity {entity_id} does not exist"))
                )
        if existing:
            await repo.delete_many(sorted(existing))
        return result

    # --- clause 5.7: query and discovery ---------------------------------------------------

    async def query_entities(self, tenant: str | None, query: EntityQuery) -> QueryPage:
        """Query Entities (clause 5.7.2): one page in the requested order (by id by default)."""
        repo = await self._repo(tenant, for_write=False)
        names = list(query.names) if query.names is not None else None
        patterns = plan_patterns(query.q, query.id_pattern, query.expand)
        if patterns is not None:
            return await self._query_with_patterns(repo, query, patterns, names)
        if query.geo is not None:
            # the geo-query search (clause 4.10) orders by distance for near, else by id
            docs, total = await geo_search(
                repo,
                _mongo_query(query, with_types=False),
                query.geo,
                types=query.types,
                offset=query.offset,
                limit=query.limit + 1,
                count=query.count,
                names=names,
            )
            return QueryPage(docs[: query.limit], total, len(docs) > query.limit)
        sort = _sort_spec(query.order)
        filters = query_filters(query)
        await repo.ensure_value_indexes(_index_fields(filters))
        docs = []
        if query.limit:
            docs = await repo.find(
                filters,
                names=names,
                sort=sort,
                skip=query.offset,
                limit=query.limit + 1,
                collation=query.collation,
            )
        total = await repo.count_any(filters, collation=query.collation) if query.count else None
        return QueryPage(docs[: query.limit], total, len(docs) > query.limit)

    async def _query_with_patterns(
        self,
        repo: EntityRepository,
        query: EntityQuery,
        patterns: PatternPlan,
        names: list[str] | None,
    ) -> QueryPage:
        """Query Entities whose idPattern or q patterns the broker tests (see _pattern_search):
        the store selects the candidates, the broker the matches and, ordered by fields
        every entity has, the page."""
        sort = _sort_spec(query.order)
        ordered_here = query.collation is None and all(f in _MERGEABLE_SORT for f, _ in sort)
        whole = _mongo_query(query)
        candidates = _lookups(whole)
        await repo.ensure_value_indexes(_index_fields(candidates))
        undecided = {
            part: _lookups({"$and": [whole, to_mongo(part, query.expand)]})
            for part in patterns.undecided
        }
        sort_fields = [field for field, _ in sort] if ordered_here else []
        matched = await matching_candidates(repo, patterns, candidates, undecided, sort_fields)
        if query.geo is not None:
            docs, total = await geo_search(
                repo,
                _mongo_query(query, with_types=False),
                query.geo,
                types=query.types,
                offset=query.offset,
                limit=query.limit + 1,
                count=query.count,
                names=names,
                only={row["_id"] for row in matched},
            )
            return QueryPage(docs[: query.limit], total, len(docs) > query.limit)
        total = len(matched) if query.count else None
        if ordered_here:
            docs = await page_in_order(repo, matched, sort, query.offset, query.limit, names)
            more = bool(query.limit) and len(matched) > query.offset + query.limit
            return QueryPage(docs, total, more)
        docs = []
        if query.limit:
            docs = await repo.find(
                [ordered_by_store(matched)],
                names=names,
                sort=sort,
                skip=query.offset,
                limit=query.limit + 1,
                collation=query.collation,
            )
        return QueryPage(docs[: query.limit], total, len(docs) > query.limit)

    async def type_attribute_pairs(
        self, tenant: str | None, types: Sequence[str] = ()
    ) -> list[tuple[str, str | None, int]]:
        repo = await self._repo(tenant, for_write=False)
        return await repo.type_attribute_pairs({"type": {"$in": list(types)}} if types else {})

    async def entity_count(self, tenant: str | None, type_iri: str) -> int:
        repo = await self._repo(tenant, for_write=False)
        return await repo.count({"type": type_iri})

    async def attribute_count(self, tenant: str | None, attribute_iri: str) -> int:
        repo = await self._repo(tenant, for_write=False)
        return await repo.count({"an": attribute_iri})

    async def attribute_kinds(
        self, tenant: str | None, attribute_iris: Sequence[str], type_iri: str | None = None
    ) -> dict[str, set[str]]:
        """The attribute kinds (Property, Relationship, ...) in use for each attribute."""
        repo = await self._repo(tenant, for_write=False)
        query: dict[str, Any] = {"an": {"$in": list(attribute_iris)}}
        if type_iri is not None:
            query["type"] = type_iri
        return await repo.attribute_kinds(query, attribute_iris)


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
    payload: object, entity_id: str, terms: TermMap, *, allow_null: bool = False
) -> Fragment:
    if isinstance(payload, dict) and payload.get("id", entity_id) != entity_id:
        raise BadRequestData(
            f"the payload's id {payload.get('id')!r} differs from the entity id in the URL"
        )
    return parse_fragment(payload, terms, utc_now(), allow_null=allow_null)


def _all_default_instances(fragment: Fragment) -> bool:
    return bool(fragment.attrs) and all(
        len(instances) == 1 and "datasetId" not in instances[0]
        for instances in fragment.attrs.values()
    )


def _geo_view(fragment: Fragment) -> Document:
    return {"attrs": {encoded: instances[0] for encoded, instances in fragment.attrs.items()}}


def _partial_update_fields(
    payload: dict[str, Any], attr: str, encoded: str, terms: TermMap, now: Any
) -> tuple[str, dict[str, Any], list[str]] | None:
    """$set and $unset fields for a partial update that names its kind or value member;
    else None."""
    if "type" not in payload and not any(member in payload for member in VALUE_MEMBERS):
        return None
    instance = parse_instance(payload, attr, terms, now)
    if any(is_null_instance(sub) for sub in instance.get("sub", {}).values()):
        return None
    set_fields: dict[str, Any] = {"modifiedAt": now}
    for member, value in instance.items():
        if member == "sub":
            for sub_field, sub_instance in value.items():
                set_fields[f"attrs.{encoded}.sub.{sub_field}"] = sub_instance
        elif member != "createdAt":
            set_fields[f"attrs.{encoded}.{member}"] = value
    unset: list[str] = []
    keys = grid_keys(instance)
    for member in GRID_MEMBERS if keys else ():
        if member in keys:
            set_fields[f"{member}.{encoded}"] = keys[member]
        else:
            unset.append(f"{member}.{encoded}")
    return str(instance["type"]), set_fields, unset


def _last_wins(docs: list[Document]) -> list[Document]:
    """In an upsert batch an id given twice keeps its last payload (the spec's order)."""
    by_id = {doc["_id"]: doc for doc in docs}
    return list(by_id.values())


def _raw_id(payload: object) -> str:
    if isinstance(payload, dict):
        return str(payload.get("id", ""))
    return ""


def _conjuncts(query: EntityQuery, *, with_types: bool = True) -> list[Filter]:
    """The query's conditions, the most selective (and indexed) first."""
    parts: list[Filter] = []
    if query.ids:
        parts.append({"_id": query.ids[0] if len(query.ids) == 1 else {"$in": list(query.ids)}})
    if query.q is not None:
        parts.append(to_mongo(query.q, query.expand))
    if query.types and with_types:
        parts.append(type_filter(query.types))
    if query.attrs:
        parts.append({"an": {"$in": list(query.attrs)}})
    if query.id_pattern is not None:
        # Tested by the broker (_pattern_search); only an anchored literal prefix narrows here.
        prefix = anchored_prefix(query.id_pattern)
        if prefix:
            parts.append({"_id": prefix_range(prefix)})
    if query.scope_q is not None:
        parts.append(scope_q_to_mongo(query.scope_q))
    return parts


def _mongo_query(query: EntityQuery, *, with_types: bool = True) -> Filter:
    """The whole selection as one MongoDB filter (without the type selection if asked)."""
    parts = _conjuncts(query, with_types=with_types)
    if not parts:
        return {}
    return parts[0] if len(parts) == 1 else {"$and": parts}


def query_filters(query: EntityQuery) -> list[Filter]:
    """Filters whose union is the selection, each without top-level $or/$and where possible.

    The embedded store uses an index only for a filter without top-level operators (and
    then the first indexed field); an `$or` is split into one filter per alternative.
    Results of several filters merge in memory, which needs an order on scalar fields
    every entity has (id, createdAt, modifiedAt) and no collation.
    """
    whole = _mongo_query(query)
    branches = _disjunctive_form(whole)
    if branches is None:
        return [whole]
    if len(branches) > 1 and (
        query.collation is not None or any(k.field not in _MERGEABLE_SORT for k in query.order)
    ):
        return [whole]
    return [_indexed_first(branch) for branch in branches]


def _lookups(mongo: Filter) -> list[Filter]:
    """The filter as flat alternatives, each with its indexed condition first, when there
    are few enough; else as it is."""
    return [_indexed_first(branch) for branch in _disjunctive_form(mongo) or [mongo]]


def _disjunctive_form(mongo: Filter) -> list[Filter] | None:
    """`mongo` as an OR of flat filters, or None when that takes over _MAX_BRANCHES.

    The alternatives are counted before any is built: they multiply with each AND-ed `$or`
    (2^60 for sixty AND-ed terms of two alternatives each)."""
    if _branch_count(mongo) > _MAX_BRANCHES:
        return None
    result: list[Filter] = [{}]
    for key, condition in mongo.items():
        if key == "$and":
            for sub in condition:
                options = _disjunctive_form(sub)
                if options is None:
                    return None
                result = [_merge(left, right) for left in result for right in options]
        elif key == "$or":
            alternatives: list[Filter] = []
            for sub in condition:
                options = _disjunctive_form(sub)
                if options is None:
                    return None
                alternatives.extend(options)
            result = [_merge(left, right) for left in result for right in alternatives]
        else:
            result = [_merge(left, {key: condition}) for left in result]
        if len(result) > _MAX_BRANCHES:
            return None
    return result


def _branch_count(mongo: Filter) -> int:
    """How many flat alternatives `mongo` has, counted up to just past _MAX_BRANCHES."""
    count = 1
    for key, condition in mongo.items():
        if key == "$and":
            for sub in condition:
                count *= _branch_count(sub)
                count = min(count, _MAX_BRANCHES + 1)
        elif key == "$or":
            count *= sum(_branch_count(sub) for sub in condition)
        count = min(count, _MAX_BRANCHES + 1)
    return count


def _merge(left: Filter, right: Filter) -> Filter:
    merged = dict(left)
    for key, condition in right.items():
        if key not in merged:
            merged[key] = condition
        elif key == "$and":
            merged["$and"] = [*merged["$and"], *condition]
        elif (
            _operators_only(merged[key])
            and _operators_only(condition)
            and not (set(merged[key]) & set(condition))
        ):
            merged[key] = {**merged[key], **condition}
        else:
            merged["$and"] = [*merged.get("$and", []), {key: condition}]
    return merged


def _operators_only(condition: object) -> bool:
    return isinstance(condition, dict) and all(key.startswith("$") for key in condition)


_INDEXABLE_OPERATORS = frozenset({"$eq", "$gt", "$gte", "$lt", "$lte", "$in"})
# Attribute instances: default ones, and those with a datasetId (whose members q reaches).
_INSTANCES = ("attrs.", "ds.")


def _indexable(condition: object) -> bool:
    """A condition an ascending index can answer and no document lacking the field meets."""
    if isinstance(condition, dict):
        return (
            bool(condition)
            and all(op in _INDEXABLE_OPERATORS for op in condition)
            and all(
                value is not None and not (isinstance(value, list) and None in value)
                for value in condition.values()
            )
        )
    return condition is not None and not isinstance(condition, list)


def _indexed_first(branch: Filter) -> Filter:
    """The branch with the conditions the store can look up in an index first."""

    def rank(item: tuple[str, Any]) -> int:
        key, condition = item
        if key.startswith("$"):
            return 9
        if not _indexable(condition):
            return 8
        return {"_id": 0, "type": 2, "an": 3}.get(key, 1 if key.startswith(_INSTANCES) else 4)

    return dict(sorted(branch.items(), key=rank))


def _index_fields(filters: Iterable[Filter]) -> list[str]:
    """The attribute fields the filters look up first: those get an index on demand."""
    fields: list[str] = []
    for branch in filters:
        for key, condition in branch.items():
            if key.startswith(_INSTANCES) and _indexable(condition):
                if key not in fields:
                    fields.append(key)
                break
    return fields


def _sort_spec(order: Sequence[SortKey]) -> SortSpec:
    spec = [(key.field, -1 if key.descending else 1) for key in order]
    if not any(field == "_id" for field, _ in spec):
        spec.extend(ID_ORDER)
    return tuple(spec)
