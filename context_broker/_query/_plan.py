"""The query planner: one Query Entities request (clause 5.7.2) -> the plan the store adapter
runs. Pure: it reads the query and the store's traits (`_store_traits.py`), nothing else.

A plan names the store lookups (filters whose union holds every match, the attribute
fields to index first, the grid keys and cells of a geo-query), the exact tests the broker
applies to what they bring (patterns on RE2, geometries), the order, and the page bounds
with where the page is cut: in the store, or in the broker over the exact matches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from context_broker._errors import BadRequestData
from context_broker._names import encode_field
from context_broker._query._geo import DistanceFrom, GeoQuery
from context_broker._query._patterns import PatternPlan, plan_patterns
from context_broker._query._q import AttrPath, Query
from context_broker._query._regex import anchored_prefix
from context_broker._query._scope import ScopeQuery, scope_q_to_mongo
from context_broker._query._store_traits import StoreTraits
from context_broker._query._to_mongo import prefix_range, to_mongo
from context_broker._query._types import TypeSelection, type_filter

Filter = dict[str, Any]
SortSpec = tuple[tuple[str, int], ...]
"""Stored fields and directions (1 ascending, -1 descending), as MongoDB takes them."""
ID_ORDER: SortSpec = (("_id", 1),)

ENTITY_SORT_FIELDS = {
    "id": "_id",
    "type": "type",
    "createdAt": "createdAt",
    "modifiedAt": "modifiedAt",
}
# Sort fields every entity has as one scalar: results of several lookups merge on them, and
# the broker orders pattern matches on them itself.
_MERGEABLE_SORT = frozenset({"_id", "createdAt", "modifiedAt"})
_INSTANCE_MEMBERS = frozenset({"observedAt", "createdAt", "modifiedAt", "unitCode"})


@dataclass(slots=True, frozen=True)
class SortKey:
    """One key of an orderBy (clause 4.23): a stored field and its direction; with
    `distance_from`, the field is a GeoProperty ordered by its distance from there."""

    field: str
    descending: bool = False
    distance_from: DistanceFrom | None = None


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


class PageCut(Enum):
    """Where the page is cut from the matches."""

    STORE = "store"
    """The store orders, skips and limits each lookup (several lookups merge on the sort
    keys of their first offset + limit matches)."""
    BROKER = "broker"
    """The broker orders the exact matches (patterns, geo) and fetches the page by id."""
    STORE_BY_IDS = "store by ids"
    """The store orders the exact matches, looked up by their ids (at most
    `Plan.max_ordered_by_ids` of them): an order by an attribute or with a collation."""
    ID_RANGES = "id ranges"
    """A type alone, by id: the store reads only the id range holding the page, found from
    the type's ranges and their counts (`_pages.py`), which also give the count."""


@dataclass(frozen=True, slots=True)
class PatternStep:
    """idPattern and q's patterns: the store brings candidates, the broker tests them."""

    test: PatternPlan
    candidates: tuple[Filter, ...]
    """Lookups whose union holds every match (each pattern widened to its candidates)."""
    undecided: tuple[tuple[Query, tuple[Filter, ...]], ...]
    """Parts of q without patterns under an OR beside one: the lookups of their ids."""
    fields: tuple[str, ...]
    """The stored fields to read of each candidate: those the tests and the order read."""


@dataclass(frozen=True, slots=True)
class GeoStep:
    """A geoQ: candidates from grid keys and cells, the exact test in the broker."""

    test: GeoQuery
    field: str
    """The GeoProperty's encoded name: its key and cell indexes must exist."""
    point_lookups: tuple[Filter, ...]
    """Key ranges (or one `$in` of keys) of the points that may match."""
    cell_lookup: Filter | None
    """The cells of other geometries that may match; None with `scan`."""
    scan: Filter | None
    """When matches may lie anywhere (disjoint, near with only minDistance): every entity
    with the GeoProperty that the other conditions select."""
    rest: Filter
    """The other conditions, appended to each key or cell lookup."""
    probe_cells: bool
    """Ask first whether any entity has cells in the region (one-field probe)."""
    types: TypeSelection
    """Tested by the broker on each candidate's types."""
    walk: RangeWalk | None = None
    """The key and cell lookups read range by range over one type instead, unless the
    first range finds few candidates (`RangeWalk.sampled`)."""


@dataclass(frozen=True, slots=True)
class RangeWalk:
    """A selection of one type that the store would walk in one read (a `q` no index
    answers, or one whose index finds many, a count, an order by an attribute), read
    instead over the type's id ranges, a few at a time: the store tests the other
    conditions on each range's entities, and the broker counts, keeps the page in the
    plan's order, and then reads the page by id."""

    type_iri: str
    rest: Filter | None
    """The other conditions (None: the type alone)."""
    fields: tuple[str, ...]
    """The fields to read of each match besides its id: the sort fields (for a geo-query,
    the geometry and the types)."""
    documents: int
    """Entities per read (`StoreTraits.walk_documents`)."""
    sampled: bool
    """The store looks every lookup up by an attribute's index (or a geo key), which may
    find few: the first reads decide, and when their matches, spread over the type, would
    fill less than one read, the plan's lookups run instead."""


@dataclass(frozen=True, slots=True)
class Plan:
    """How one Query Entities request runs: lookups, exact tests, order and page."""

    lookups: tuple[Filter, ...]
    """The selection as lookups whose union is the matches (without patterns and geo)."""
    index_fields: tuple[str, ...]
    """Attribute fields the lookups find first: each gets an index on first use."""
    patterns: PatternStep | None
    geo: GeoStep | None
    sort: SortSpec
    cut: PageCut
    offset: int
    limit: int
    count: bool
    collation: str | None
    names: tuple[str, ...] | None
    """The attributes to fetch of each entity on the page (None: all)."""
    max_ordered_by_ids: int
    ranges_of: str | None = None
    """With `PageCut.ID_RANGES`: the type whose id ranges hold the page and the count."""
    walk: RangeWalk | None = None
    """With `PageCut.STORE`: the lookups read range by range instead (unless sampled
    and selective)."""
    by_distance: tuple[SortKey, ...] = ()
    """An order with a key by distance: the broker orders every match (read with
    `order_fields`, at most the budget's documents) and reads the page by id."""


def order_fields(order: Sequence[SortKey]) -> tuple[str, ...]:
    """The stored fields the broker reads to order matches by `order` itself."""
    fields: list[str] = []
    for key in order:
        if key.distance_from is None:
            fields.append(key.field)
        else:
            fields.extend((f"{key.field}.type", f"{key.field}.value"))
    return tuple(dict.fromkeys(fields))


def plan(query: EntityQuery, traits: StoreTraits) -> Plan:
    """The plan of `query` on a store with `traits`."""
    sort = sort_spec(query.order)
    by_distance = query.order if any(k.distance_from for k in query.order) else ()
    patterns = plan_patterns(query.q, query.id_pattern, query.expand)
    mergeable = query.collation is None and all(field in _MERGEABLE_SORT for field, _ in sort)
    pattern_step: PatternStep | None = None
    lookups: tuple[Filter, ...] = ()
    if patterns is not None:
        whole = _mongo_query(query)
        candidates = tuple(_lookups(whole, traits))
        undecided = tuple(
            (part, tuple(_lookups({"$and": [whole, to_mongo(part, query.expand)]}, traits)))
            for part in patterns.undecided
        )
        sort_fields = [field for field, _ in sort] if mergeable else []
        if by_distance:
            sort_fields = list(order_fields(query.order))
        fields = tuple(dict.fromkeys([*patterns.fields(), *sort_fields]))
        pattern_step = PatternStep(patterns, candidates, undecided, fields)
        index_fields = _index_fields(candidates)
    elif query.geo is None:
        lookups = tuple(query_filters(query, traits))
        index_fields = _index_fields(lookups)
    else:
        index_fields = []
    geo_step = None if query.geo is None else _geo_step(query, query.geo, traits)
    if geo_step is not None or by_distance or (pattern_step is not None and mergeable):
        cut = PageCut.BROKER
    elif pattern_step is not None:
        cut = PageCut.STORE_BY_IDS
    else:
        cut = PageCut.STORE
    ranges_of = _ranges_of(query, sort, traits) if cut is PageCut.STORE else None
    if ranges_of is not None:
        cut = PageCut.ID_RANGES
    walk = _range_walk(query, lookups, sort, traits) if cut is PageCut.STORE else None
    return Plan(
        lookups=lookups,
        index_fields=tuple(index_fields),
        patterns=pattern_step,
        geo=geo_step,
        sort=sort,
        cut=cut,
        offset=query.offset,
        limit=query.limit,
        count=query.count,
        collation=query.collation,
        names=query.names,
        max_ordered_by_ids=traits.max_ordered_by_ids,
        ranges_of=ranges_of,
        walk=walk,
        by_distance=by_distance,
    )


def _ranges_of(query: EntityQuery, sort: SortSpec, traits: StoreTraits) -> str | None:
    """The type whose id ranges answer the query: one type and nothing else, by id, on a
    store that reads every match of a lookup."""
    if not traits.reads_every_match or sort != ID_ORDER or query.collation is not None:
        return None
    if len(query.types) != 1 or len(query.types[0]) != 1:
        return None
    if query.ids or query.attrs:
        return None
    if any(x is not None for x in (query.id_pattern, query.q, query.scope_q, query.geo)):
        return None
    return query.types[0][0]


def _range_walk(
    query: EntityQuery, lookups: Sequence[Filter], sort: SortSpec, traits: StoreTraits
) -> RangeWalk | None:
    """The walk over one type's id ranges that replaces `lookups`: on a store that walks in
    one read, for one type and nothing narrower than what its index or an attribute's
    index finds, in an order the broker can keep (no collation)."""
    if not traits.walk_documents or query.collation is not None or query.ids:
        return None
    if not _one_type(query.types):
        return None
    rest = _mongo_query(query, with_types=False)
    # A lookup whose first condition is the type, or an operator (which the store scans
    # the tenant for), walks the type at least; one by an attribute's index may find few.
    by_index = all(_looked_up_by_attribute(lookup) for lookup in lookups)
    return RangeWalk(
        type_iri=query.types[0][0],
        rest=rest or None,
        fields=tuple(field for field, _ in sort if field != "_id"),
        documents=traits.walk_documents,
        sampled=bool(lookups) and by_index,
    )


def _looked_up_by_attribute(lookup: Filter) -> bool:
    first = next(iter(lookup), "$")
    return first != "type" and not first.startswith("$")


def _geo_step(query: EntityQuery, geo: GeoQuery, traits: StoreTraits) -> GeoStep:
    """The geo-query's lookups. On a store that plans one-field filters fastest the type
    selection is tested by the broker on each candidate's projected types rather than
    appended to the lookups (geo candidates are few)."""
    field = encode_field(geo.geoproperty)
    rest = _mongo_query(query, with_types=not traits.one_field_filters)
    lookups = geo.candidate_filters(field)
    if lookups is None:  # disjoint, or near with only minDistance: every entity may match
        types = [type_filter(query.types)] if query.types else []
        geo_property = {f"attrs.{field}.type": "GeoProperty"}
        scan = _conjunction([*types, geo_property, rest])
        return GeoStep(geo, field, (), None, scan, {}, False, query.types)
    *points, cells = lookups
    # Other geometries are few or none. With other conditions, a one-field probe finds out
    # first (the embedded store plans a filter of one field fastest), and the lookup follows.
    probe = traits.one_field_filters and bool(rest)
    walk = None
    if traits.walk_documents and _many_cells(points) and _one_type(query.types):
        walk = RangeWalk(
            type_iri=query.types[0][0],
            rest=_conjunction([{"$or": [*points, cells]}, rest]),
            fields=(f"attrs.{field}.value", "type"),
            documents=traits.walk_documents,
            sampled=True,
        )
    return GeoStep(geo, field, tuple(points), cells, None, rest, probe, query.types, walk)


def _many_cells(point_lookups: Sequence[Filter]) -> bool:
    """Whether the points' region spans key ranges: one of at most a few cells of the
    finest level is asked for with one `$in`, and holds few entities."""
    if not point_lookups:
        return False
    condition = next(iter(point_lookups[0].values()))
    return not (len(point_lookups) == 1 and "$in" in condition)


def _one_type(types: TypeSelection) -> bool:
    return len(types) == 1 and len(types[0]) == 1


def sort_spec(order: Sequence[SortKey]) -> SortSpec:
    """The order as stored fields, ending with the id so that it is total."""
    spec = [(key.field, -1 if key.descending else 1) for key in order if not key.distance_from]
    if not any(field == "_id" for field, _ in spec):
        spec.extend(ID_ORDER)
    return tuple(spec)


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
        # Tested by the broker (PatternStep); only an anchored literal prefix narrows here.
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


def query_filters(query: EntityQuery, traits: StoreTraits) -> list[Filter]:
    """Filters whose union is the selection, each without top-level $or/$and where possible.

    A store with one-field filters uses an index only for a filter without top-level
    operators (and then the first indexed field); an `$or` is split into one filter per
    alternative. Results of several filters merge in memory, which needs an order on scalar
    fields every entity has (id, createdAt, modifiedAt) and no collation.
    """
    whole = _mongo_query(query)
    branches = _disjunctive_form(whole, traits)
    if branches is None:
        return [whole]
    if len(branches) > 1 and (
        query.collation is not None or any(k.field not in _MERGEABLE_SORT for k in query.order)
    ):
        return [whole]
    return [_indexed_first(branch) for branch in branches]


def _lookups(mongo: Filter, traits: StoreTraits) -> list[Filter]:
    """The filter as flat alternatives, each with its indexed condition first, when there
    are few enough; else as it is."""
    return [_indexed_first(branch) for branch in _disjunctive_form(mongo, traits) or [mongo]]


def _disjunctive_form(mongo: Filter, traits: StoreTraits) -> list[Filter] | None:
    """`mongo` as an OR of flat filters; None when that takes over the store's
    `max_lookups`, or the store plans an `$or` from its indexes itself."""
    if not traits.one_field_filters:
        return None
    return _flat_alternatives(mongo, traits.max_lookups)


def _flat_alternatives(mongo: Filter, most: int) -> list[Filter] | None:
    """`mongo` as an OR of flat filters, or None when that takes over `most`.

    The alternatives are counted before any is built: they multiply with each AND-ed `$or`
    (2^60 for sixty AND-ed terms of two alternatives each)."""
    if _branch_count(mongo, most) > most:
        return None
    result: list[Filter] = [{}]
    for key, condition in mongo.items():
        if key == "$and":
            for sub in condition:
                options = _flat_alternatives(sub, most)
                if options is None:
                    return None
                result = [_merge(left, right) for left in result for right in options]
        elif key == "$or":
            alternatives: list[Filter] = []
            for sub in condition:
                options = _flat_alternatives(sub, most)
                if options is None:
                    return None
                alternatives.extend(options)
            result = [_merge(left, right) for left in result for right in alternatives]
        else:
            result = [_merge(left, {key: condition}) for left in result]
        if len(result) > most:
            return None
    return result


def _branch_count(mongo: Filter, most: int) -> int:
    """How many flat alternatives `mongo` has, counted up to just past `most`."""
    count = 1
    for key, condition in mongo.items():
        if key == "$and":
            for sub in condition:
                count *= _branch_count(sub, most)
                count = min(count, most + 1)
        elif key == "$or":
            count *= sum(_branch_count(sub, most) for sub in condition)
        count = min(count, most + 1)
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


def _conjunction(filters: Sequence[Filter]) -> Filter:
    """The filters and-ed: one plain dict when their fields differ, else an `$and`."""
    parts = [part for f in filters for part in (f["$and"] if list(f) == ["$and"] else [f])]
    merged: Filter = {}
    for part in parts:
        if any(key.startswith("$") or key in merged for key in part):
            return {"$and": [part for part in parts if part]}
        merged.update(part)
    return merged
