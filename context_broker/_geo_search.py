"""Query Entities with a geoQ: candidates from the grid keys, the exact test in the broker.

Used on every store alike: the lookups are plain index scans (key ranges for points, a
cell `$in` for other geometries), which real MongoDB and the embedded store both answer
fast, whereas the embedded store's `$near` misorders results and its `$geoWithin` scans
(docs/query.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from context_broker._names import encode_field
from context_broker._query._geo import GeoQuery
from context_broker._store import Document, EntityRepository


async def geo_search(
    repo: EntityRepository,
    mongo: dict[str, Any],
    geo: GeoQuery,
    *,
    offset: int,
    limit: int,
    count: bool,
    names: Sequence[str] | None = None,
) -> tuple[list[Document], int | None]:
    """One page of the entities matching `mongo` and `geo` (nearest first for near, else by
    id) and, when asked, how many match in all."""
    field = encode_field(geo.geoproperty)
    await repo.ensure_geo_fields([field])
    geo_property = {f"attrs.{field}.type": "GeoProperty"}
    lookups = geo.candidate_filters(field)
    candidates: dict[str, dict[str, Any]] = {}
    if lookups is None:  # disjoint, or near with only minDistance: every entity may match
        candidates.update(await repo.geometries(_conjunction([geo_property, mongo]), {}, field))
    else:
        *points, cells = lookups
        for lookup in points:  # only a GeoProperty's Point has a key: no need to ask
            candidates.update(await repo.geometries(lookup, mongo, field))
        # Other geometries are few or none: a one-field probe is the cheapest way to find
        # out (the store plans a filter of one field fastest), and the lookup follows.
        if await repo.exists(cells):
            rest = _conjunction([geo_property, mongo])
            candidates.update(await repo.geometries(cells, rest, field))
    matched = [
        (key, entity_id)
        for entity_id, key in zip(candidates, geo.match_all(list(candidates.values())), strict=True)
        if key is not None
    ]
    matched.sort()
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
