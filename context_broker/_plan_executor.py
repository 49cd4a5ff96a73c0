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

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any, Protocol

from context_broker._errors import TooComplexQuery
from context_broker._query import Query
from context_broker._query._pages import Bucket, page_range, total
from context_broker._query._plan import Filter, GeoStep, PageCut, PatternStep, Plan, SortSpec
from context_broker._query._types import has_types

Document = dict[str, Any]
Geometries = list[tuple[str, tuple[dict[str, Any], list[str]]]]


class EntityReads(Protocol):
    """The reads of one tenant's entities a plan needs (`_store.EntityRepository`)."""

    def check_documents(self, found: int, what: str) -> None: ...

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
    matched: list[Document] | None = None
    if plan.patterns is not None:
        matched = await _pattern_matches(repo, plan.patterns)
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
    if step.scan is not None:
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
