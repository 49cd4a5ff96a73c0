"""Query Entities with a geoQ: candidates from the cell index, the exact test in the broker.

Used on every store alike: the cell lookups are plain multikey index scans, which real
MongoDB and the embedded store both answer fast and in a stable order, whereas the
embedded store's `$near` misorders results and its `$geoWithin` scans (docs/query.md).
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
    rest: dict[str, Any] = {f"attrs.{field}.type": "GeoProperty"}
    if mongo:
        rest = {"$and": [rest, mongo]}
    lookup = geo.candidate_filter(field)
    if lookup is None:  # disjoint, or near with only minDistance: every entity may match
        lookup, rest = rest, mongo
    matched: list[tuple[float, str]] = []
    for entity_id, geometry in await repo.geometries(lookup, rest, field):
        key = geo.matches(geometry)
        if key is not None:
            matched.append((key, entity_id))
    matched.sort()
    page = [entity_id for _, entity_id in matched[offset : offset + limit]]
    docs = await repo.get_many(page, names) if page else {}
    return [docs[entity_id] for entity_id in page if entity_id in docs], (
        len(matched) if count else None
    )
