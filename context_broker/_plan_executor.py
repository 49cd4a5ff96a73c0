"""Runs a query plan (`_query/_plan.py`) over one tenant's entities: the store lookups it
names through the repository's reads, then the exact tests and the page it leaves to the
broker. The only place a plan is run; `_store.py` stays the only module that speaks MongoDB.

Patterns never run in the store: the embedded store matches `$regex` with a backtracking
engine on its only thread, where one pattern built to backtrack stalls every tenant. The
store brings the candidates (ids and the fields the tests read, at most the budget's
documents) and the broker tests them on RE2. Geo-queries do not use the store's geo
operators either (the embedded store misorders `$near` and scans for `$geoWithin`): key
ranges and cell lookups bring candidates, and the broker tests their geometries exactly.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence, Set
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Protocol

from context_broker._errors import TooComplexQuery
from context_broker._query import Query
from context_broker._query._pages import Bucket, PageRange, page_range, total
from context_broker._query._plan import (
    Filter,
    GeoStep,
    PageCut,
    PatternStep,
    Plan,
    RangeWalk,
    SortSpec,
    order_fields,
)
from context_broker._query._sort_order import (
    SortKey,
    Unorderable,
    distance_sort_key,
    sort_key,
)
from context_broker._query._types import has_types

Document = dict[str, Any]
Geometries = list[tuple[str, tuple[dict[str, Any], list[str]]]]


class EntityReads(Protocol):
    """The reads of one tenant's entities a plan needs (`_store.EntityRepository`)."""

    def check_documents(self, found: int, what: str) -> None: ...

    def check_time(self, started: float) -> None:
        """Refuse a query whose reads, since `started` (`time.monotonic()`), took over
        the time budget."""
        ...

    @property
    def max_documents(self) -> int: ...

    async def ensure_value_indexes(self, fields: Sequence[str]) -> None: ...

    async def ensure_geo_fields(self, fields: Sequence[str]) -> None: ...

    async def find(
        self,
        queries: Sequence[Mapping[str, Any]],
        *,
        names: Sequence[str] | None,
        sort: SortSpec,
        skip: int,
        limit: int,
        collation: str | None,
    ) -> list[Document]: ...

    async def count_any(
        self, queries: Sequence[Mapping[str, Any]], *, collation: str | None
    ) -> int: ...

    async def scan(
        self, queries: Sequence[Mapping[str, Any]], fields: Sequence[str], *, limit: int
    ) -> list[Document]: ...

    async def geometries(
        self, lookup: Mapping[str, Any], rest: Mapping[str, Any], field: str
    ) -> Geometries: ...

    async def exists(self, query: Mapping[str, Any]) -> bool: ...

    async def get_many(
        self, ids: Sequence[str], names: Sequence[str] | None = None
    ) -> dict[str, Document]: ...

    async def type_ranges(self, type_iri: str) -> Sequence[Bucket]:
        """The type's id ranges in id order, covering every id, with their counts."""
        ...

    async def range_matches(
        self,
        type_iri: str,
        ids: Mapping[str, str],
        rest: Mapping[str, Any] | None,
        fields: Sequence[str],
    ) -> list[Document]:
        """The entities of the type whose ids meet `ids` (a condition on `_id`) and that
        match `rest`, with `fields` and their id only."""
        ...


@dataclass(slots=True, frozen=True)
class QueryPage:
    """One page of a query: the entities, the total when counted, whether more follow."""

    docs: list[Document]
    total: int | None
    more: bool


async def execute(repo: EntityReads, plan: Plan) -> QueryPage:
    """The page (and count) of the query `plan` was made for."""
    await repo.ensure_value_indexes(plan.index_fields)
    names = list(plan.names) if plan.names is not None else None
    if plan.ranges_of is not None:
        return await _ranged_page(repo, plan, plan.ranges_of, names)
    if plan.walk is not None:
        walked = await _walked_page(repo, plan, plan.walk, names)
        if walked is not None:
            return walked
    matched: list[Document] | None = None
    if plan.patterns is not None:
        matched = await _pattern_matches(repo, plan.patterns)
    if plan.by_distance:
        return await _distance_page(repo, plan, names, matched)
    if plan.geo is not None:
        only = None if matched is None else {row["_id"] for row in matched}
        docs, counted = await _geo_page(repo, plan, plan.geo, names, only)
        return QueryPage(docs[: plan.limit], counted, len(docs) > plan.limit)
    total: int | None = None
    if matched is None:
        lookups: Sequence[Filter] = plan.lookups
    else:
        total = len(matched) if plan.count else None
        if plan.cut is PageCut.BROKER:
            docs = await _page_in_order(repo, matched, plan, names)
            more = bool(plan.limit) and len(matched) > plan.offset + plan.limit
            return QueryPage(docs, total, more)
        lookups = [_by_ids(matched, plan.max_ordered_by_ids)]
    docs = []
    if plan.limit:
        docs = await repo.find(
            lookups,
            names=names,
            sort=plan.sort,
            skip=plan.offset,
            limit=plan.limit + 1,
            collation=plan.collation,
        )
    if matched is None and plan.count:
        total = await repo.count_any(lookups, collation=plan.collation)
    return QueryPage(docs[: plan.limit], total, len(docs) > plan.limit)


async def _ranged_page(
    repo: EntityReads, plan: Plan, type_iri: str, names: Sequence[str] | None
) -> QueryPage:
    """A page of one type by id read from the id range that holds it, and its count from
    the ranges' counts: the store reads no entity outside the page's range."""
    buckets = await repo.type_ranges(type_iri)
    docs: list[Document] = []
    found = page_range(buckets, plan.offset, plan.limit + 1) if plan.limit else None
    if found is not None:
        lookup = {"type": type_iri, "_id": found.id_condition()}
        docs = await repo.find(
            [lookup],
            names=names,
            sort=plan.sort,
            skip=found.skip,
            limit=plan.limit + 1,
            collation=None,
        )
    counted = total(buckets) if plan.count else None
    return QueryPage(docs[: plan.limit], counted, len(docs) > plan.limit)


_DECIDED = 16
"""Matches a sampled walk reads before it no longer gives way to the index."""


class _Direct(Exception):
    """The walk gives way to the plan's lookups."""


async def _walked_page(
    repo: EntityReads, plan: Plan, walk: RangeWalk, names: Sequence[str] | None
) -> QueryPage | None:
    """The page (and count) read over the type's id ranges, `walk.documents` entities at a
    time, within the time budget over all the reads; None when the plan's lookups answer
    instead: a type that one read holds, a sampled walk whose first read finds few
    matches, a page past the document bound, a sort value the broker does not order."""
    buckets = await repo.type_ranges(walk.type_iri)
    size = total(buckets)
    keep = plan.offset + plan.limit + 1 if plan.limit else 0
    if size <= walk.documents or keep > repo.max_documents or not (keep or plan.count):
        return None
    try:
        kept, counted = await _walk(repo, plan, walk, buckets, keep)
    except _Direct:
        return None
    page = [entity_id for _, entity_id in kept[plan.offset : plan.offset + plan.limit]]
    found = await repo.get_many(page, names) if page else {}
    docs = [found[entity_id] for entity_id in page if entity_id in found]
    return QueryPage(docs, counted if plan.count else None, len(kept) > plan.offset + plan.limit)


async def _walk(
    repo: EntityReads,
    plan: Plan,
    walk: RangeWalk,
    buckets: Sequence[Bucket],
    keep: int,
) -> tuple[list[tuple[SortKey, str]], int]:
    """The first `keep` matches in the plan's order (key, id), and how many match."""
    kept: list[tuple[SortKey, str]] = []
    counted = 0
    by_id = plan.sort == (("_id", 1),)
    async with aclosing(_range_rows(repo, walk, buckets)) as reads:
        async for rows in reads:
            counted += len(rows)
            if keep:
                try:
                    ranked = [(sort_key(row, plan.sort), row["_id"]) for row in rows]
                except Unorderable:
                    raise _Direct from None
                kept = sorted([*kept, *ranked])[:keep]
            if by_id and not plan.count and len(kept) >= keep:
                break  # the ranges come in id order: later ones hold no earlier match
    return kept, counted


async def _walked_candidates(
    repo: EntityReads, walk: RangeWalk, field: str
) -> dict[str, tuple[dict[str, Any], list[str]]] | None:
    """The geo-query's candidates (geometry and types by id) read over the type's id
    ranges; None when the key and cell lookups answer instead (a type one read holds, or
    a first range with few candidates)."""
    buckets = await repo.type_ranges(walk.type_iri)
    if total(buckets) <= walk.documents:
        return None
    found: dict[str, tuple[dict[str, Any], list[str]]] = {}
    try:
        async for rows in _range_rows(repo, walk, buckets):
            for row in rows:
                found[row["_id"]] = (row["attrs"][field]["value"], row["type"])
            repo.check_documents(len(found), "the geo-query")
    except _Direct:
        return None
    return found


async def _range_rows(
    repo: EntityReads, walk: RangeWalk, buckets: Sequence[Bucket]
) -> AsyncGenerator[list[Document]]:
    """The matches of each read of the walk, in id order of the ranges, within the time
    budget over all the reads.

    A sampled walk starts with one range, and raises _Direct as long as the matches read
    so far, spread over the whole type, would fill less than two reads: the attribute's
    index then finds them in one short read. It walks on once _DECIDED matches say
    otherwise (the estimate of a few is too rough to give up a short lookup for a walk)."""
    size = total(buckets)
    started = time.monotonic()
    deciding = walk.sampled
    read = matched = 0
    first = 1 if walk.sampled else walk.documents
    for index, (ids, holds) in enumerate(_reads(buckets, walk.documents, first)):
        if index:
            repo.check_time(started)
        rows = await repo.range_matches(walk.type_iri, ids.id_condition(), walk.rest, walk.fields)
        if deciding:
            read, matched = read + holds, matched + len(rows)
            if matched * size <= 2 * walk.documents * max(read, 1):
                raise _Direct
            deciding = matched < _DECIDED
        yield rows


def _reads(
    buckets: Sequence[Bucket], documents: int, first: int
) -> Iterator[tuple[PageRange, int]]:
    """Consecutive id ranges of about `documents` entities (the first of about `first`)
    and how many each holds, covering every id."""
    lo, held, least = "", 0, first
    for bucket in buckets:
        held += bucket.n
        if held >= least or bucket.hi is None:
            yield PageRange(lo, bucket.hi, 0), held
            if bucket.hi is None:
                return
            lo, held, least = bucket.hi, 0, documents
    yield PageRange(lo, None, 0), held


async def _pattern_matches(repo: EntityReads, step: PatternStep) -> list[Document]:
    """The candidates that match the patterns, with the fields the step reads."""
    bound = repo.max_documents
    rows = await repo.scan(step.candidates, step.fields, limit=bound)
    _check_candidates(len(rows), bound)
    known: dict[Query, set[str]] = {}
    for part, lookups in step.undecided:
        selected = await repo.scan(lookups, [], limit=bound)
        _check_candidates(len(selected), bound)
        known[part] = {doc["_id"] for doc in selected}
    return [row for row in rows if step.test.holds(row, known)]


def _check_candidates(found: int, bound: int) -> None:
    if found > bound:
        raise TooComplexQuery(
            f"idPattern and q patterns are tested on at most {bound} candidate entities "
            "(CONTESTO_QUERY_MAX_DOCUMENTS), and this query has more; narrow it with a type, "
            "other q terms, or a pattern anchored at a literal prefix (^urn:ngsi-ld:Type:)"
        )


async def _page_in_order(
    repo: EntityReads, matched: list[Document], plan: Plan, names: Sequence[str] | None
) -> list[Document]:
    """One page of the matches in the plan's order (scalar fields every entity has)."""
    ordered = list(matched)
    for field, direction in reversed(plan.sort):
        ordered.sort(key=lambda row: row[field], reverse=direction < 0)
    page = [row["_id"] for row in ordered[plan.offset : plan.offset + plan.limit]]
    found = await repo.get_many(page, names) if page else {}
    return [found[entity_id] for entity_id in page if entity_id in found]


async def _distance_page(
    repo: EntityReads, plan: Plan, names: Sequence[str] | None, matched: list[Document] | None
) -> QueryPage:
    """One page of the matches in an order with a key by distance (clause 4.23): the broker
    reads the ordering fields of every match, at most the budget's documents, and orders
    them itself (the store has no such order)."""
    if matched is None:
        matched = await repo.scan(
            plan.lookups, order_fields(plan.by_distance), limit=repo.max_documents
        )
    repo.check_documents(len(matched), "an order by distance")
    try:
        ranked = sorted((distance_sort_key(row, plan.by_distance), row["_id"]) for row in matched)
    except Unorderable as error:
        raise TooComplexQuery(
            f"orderBy: a value of {error} cannot be ordered beside a distance; order by "
            "attributes holding numbers, strings, booleans or times"
        ) from None
    page = [entity_id for _, entity_id in ranked[plan.offset : plan.offset + plan.limit]]
    found = await repo.get_many(page, names) if page else {}
    docs = [found[entity_id] for entity_id in page if entity_id in found]
    more = bool(plan.limit) and len(ranked) > plan.offset + plan.limit
    return QueryPage(docs, len(ranked) if plan.count else None, more)


def _by_ids(matched: list[Document], most: int) -> Filter:
    """The lookup of the matches for the store to order; refused past `most`."""
    if len(matched) > most:
        raise TooComplexQuery(
            f"a query with idPattern or q patterns, ordered by an attribute or with a "
            f"collation, may match at most {most} entities, and this one "
            f"matches {len(matched)}; narrow it, or order by id, createdAt or modifiedAt"
        )
    return {"_id": {"$in": sorted(row["_id"] for row in matched)}}


async def _geo_page(
    repo: EntityReads,
    plan: Plan,
    step: GeoStep,
    names: Sequence[str] | None,
    only: Set[str] | None,
) -> tuple[list[Document], int | None]:
    """The page and one more of the geo-query's matches (nearest first for near, else by
    id) and, when asked, how many match in all; with `only`, among those ids (the matches
    of the patterns the broker tested)."""
    await repo.ensure_geo_fields([step.field])
    candidates: dict[str, tuple[dict[str, Any], list[str]]] = {}
    walked = None if step.walk is None else await _walked_candidates(repo, step.walk, step.field)
    if walked is not None:
        candidates = walked
    elif step.scan is not None:
        candidates.update(await repo.geometries(step.scan, {}, step.field))
    else:
        for lookup in step.point_lookups:
            candidates.update(await repo.geometries(lookup, step.rest, step.field))
        assert step.cell_lookup is not None
        if not step.probe_cells or await repo.exists(step.cell_lookup):
            candidates.update(await repo.geometries(step.cell_lookup, step.rest, step.field))
    repo.check_documents(len(candidates), "the geo-query")
    selected = [
        (entity_id, geometry)
        for entity_id, (geometry, entity_types) in candidates.items()
        if has_types(entity_types, step.types) and (only is None or entity_id in only)
    ]
    keys = step.test.match_all([geometry for _, geometry in selected])
    matched = sorted(
        (key, entity_id)
        for (entity_id, _), key in zip(selected, keys, strict=True)
        if key is not None
    )
    page = [entity_id for _, entity_id in matched[plan.offset : plan.offset + plan.limit + 1]]
    docs = await repo.get_many(page, names) if page else {}
    return [docs[entity_id] for entity_id in page if entity_id in docs], (
        len(matched) if plan.count else None
    )
