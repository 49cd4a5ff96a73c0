"""Query Entities with a geoQ: candidates from the grid keys, the exact test in the broker.

Used on every store alike: the lookups are plain index scans (key ranges for points, a
cell `$in` for other geometries), which real MongoDB and the embedded store both answer
fast, whereas the embedded store's `$near` misorders results and its `$geoWithin` scans
(docs/query.md).
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from typing import Any

from context_broker._names import encode_field
from context_broker._query._geo import GeoQuery
from context_broker._query._types import TypeSelection, has_types, type_filter
from context_broker._store import Document, EntityRepository


async def geo_search(
    repo: EntityRepository,
    mongo: dict[str, Any],
    geo: GeoQuery,
    *,
    types: TypeSelection = (),
    offset: int,
    limit: int,
    count: bool,
    names: Sequence[str] | None = None,
    only: Set[str] | None = None,
) -> tuple[list[Document], int | None]:
    """One page of the entities of `types` matching `mongo` and `geo` (nearest first for
    near, else by id) and, when asked, how many match in all; with `only`, among those ids
    (the matches of the patterns the broker tested).

    The type selection is tested here on each candidate's projected types rather than
    appended to the lookups: the embedded store plans a filter of one field in a third of
    the time of one with the type added, and geo candidates are few."""
    field = encode_field(geo.geoproperty)
    await repo.ensure_geo_fields([field])
    lookups = geo.candidate_filters(field)
    candidates: dict[str, tuple[dict[str, Any], list[str]]] = {}
    if lookups is None:  # disjoint, or near with only minDistance: every entity may match
        scan = [type_filter(types)] if types else []
        geo_property = {f"attrs.{field}.type": "GeoProperty"}
        candidates.update(
            await repo.geometries(_conjunction([*scan, geo_property, mongo]), {}, field)
        )
    else:
        *points, cells = lookups
        for lookup in points:  # only a GeoProperty has grid keys: no need to ask
            candidates.update(await repo.geometries(lookup, mongo, field))
        # Other geometries are few or none. With other conditions, a one-field probe finds
        # out first (the store plans a filter of one field fastest), and the lookup follows.
        if not mongo or await repo.exists(cells):
            candidates.update(await repo.geometries(cells, mongo, field))
    repo.check_documents(len(candidates), "the geo-query")
    selected = [
        (entity_id, geometry)
        for entity_id, (geometry, entity_types) in candidates.items()
        if has_types(entity_types, types) and (only is None or entity_id in only)
    ]
    keys = geo.match_all([geometry for _, geometry in selected])
    matched = sorted(
        (key, entity_id)
        for (entity_id, _), key in zip(selected, keys, strict=True)
        if key is not None
    )
    page = [entity_id for _, entity_id in matched[offset : offset + limit]]
    docs = await repo.get_many(page, names) if page else {}
    return [docs[entity_id] for entity_id in page if entity_id in docs], (
        len(matched) if count else None
    )


def _conjunction(filters: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The filters and-ed: one plain dict when their fields differ, else an `$and`."""
    parts = [part for f in filters for part in (f["$and"] if list(f) == ["$and"] else [f])]
    merged: dict[str, Any] = {}
    for part in parts:
        if any(key.startswith("$") or key in merged for key in part):
            return {"$and": [part for part in parts if part]}
        merged.update(part)
    return merged
