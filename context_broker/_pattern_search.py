"""Query Entities with an idPattern or q patterns: candidates from the store, the patterns
tested in the broker with a linear-time engine (context_broker._query._patterns).

A pattern never runs in the store: the embedded store matches `$regex` with a backtracking
engine on its only thread, where one pattern built to backtrack stalls every tenant. The
store selects the candidates with every other condition (a pattern anchored at a literal
prefix as an index range), bringing only ids and the fields the patterns read, at most the
budget's documents; the broker tests them and, when the order is on fields every entity
has, orders the matches and fetches one page. The store is asked to order matches itself
only for other orders (attributes, a collation), through a lookup of their ids that the
embedded store answers in time growing with the square of their number, hence a small cap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from context_broker._errors import TooComplexQuery
from context_broker._query import Query
from context_broker._query._patterns import PatternPlan
from context_broker._store import Document, EntityRepository, Filter, SortSpec

MAX_ORDERED_BY_STORE = 300
"""Matches of a pattern query the store may order (by an attribute, or with a collation)."""


async def matching_candidates(
    repo: EntityRepository,
    plan: PatternPlan,
    candidates: Sequence[Filter],
    undecided: Mapping[Query, Sequence[Filter]],
    fields: Sequence[str] = (),
) -> list[Document]:
    """The candidates (the entities matching any of `candidates`) that match the plan, with
    `fields` besides those the tests read. `undecided` are the lookups of the parts of q
    without patterns that the candidates do not settle."""
    bound = repo.budget.max_documents
    rows = await repo.scan(candidates, [*plan.fields(), *fields], limit=bound)
    _check_bound(len(rows), bound)
    known: dict[Query, set[str]] = {}
    for part, lookups in undecided.items():
        selected = await repo.scan(lookups, [], limit=bound)
        _check_bound(len(selected), bound)
        known[part] = {doc["_id"] for doc in selected}
    return [row for row in rows if plan.holds(row, known)]


def _check_bound(found: int, bound: int) -> None:
    if found > bound:
        raise TooComplexQuery(
            f"idPattern and q patterns are tested on at most {bound} candidate entities "
            "(CONTESTO_QUERY_MAX_DOCUMENTS), and this query has more; narrow it with a type, "
            "other q terms, or a pattern anchored at a literal prefix (^urn:ngsi-ld:Type:)"
        )


async def page_in_order(
    repo: EntityRepository,
    matched: list[Document],
    sort: SortSpec,
    offset: int,
    limit: int,
    names: Sequence[str] | None,
) -> list[Document]:
    """One page of the matches in `sort` order (scalar fields every entity has)."""
    ordered = list(matched)
    for field, direction in reversed(sort):
        ordered.sort(key=lambda row: row[field], reverse=direction < 0)
    page = [row["_id"] for row in ordered[offset : offset + limit]]
    found = await repo.get_many(page, names) if page else {}
    return [found[entity_id] for entity_id in page if entity_id in found]


def ordered_by_store(matched: list[Document]) -> dict[str, Any]:
    """The lookup of the matches for the store to order; refused past MAX_ORDERED_BY_STORE."""
    if len(matched) > MAX_ORDERED_BY_STORE:
        raise TooComplexQuery(
            f"a query with idPattern or q patterns, ordered by an attribute or with a "
            f"collation, may match at most {MAX_ORDERED_BY_STORE} entities, and this one "
            f"matches {len(matched)}; narrow it, or order by id, createdAt or modifiedAt"
        )
    return {"_id": {"$in": sorted(row["_id"] for row in matched)}}
