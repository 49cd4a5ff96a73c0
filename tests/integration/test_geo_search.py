"""Geo-queries on the real store: the cell index finds exactly what brute force finds,
in the right order (nearest first for near), for points, lines and polygons."""

from __future__ import annotations

import random
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from shapely.geometry import shape

from context_broker._entities import build_document
from context_broker._jsonld import core_term_map
from context_broker._plan_executor import execute
from context_broker._query._geo import GeoQuery, distance_m
from context_broker._query._plan import EntityQuery, plan
from context_broker._query._store_traits import QUERY_TRAITS
from context_broker._store import EntityRepository, Store
from context_broker._time import utc_now

LOCATION = core_term_map().expand("location")
FIRENZE = (11.2558, 43.7696)


def _square(lon: float, lat: float, half: float) -> dict[str, Any]:
    ring = [
        [lon - half, lat - half],
        [lon + half, lat - half],
        [lon + half, lat + half],
        [lon - half, lat + half],
        [lon - half, lat - half],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


def _geometries() -> list[dict[str, Any]]:
    rng = random.Random(7)
    shapes: list[dict[str, Any]] = []
    for _ in range(300):
        lon = FIRENZE[0] + rng.uniform(-0.03, 0.03)
        lat = FIRENZE[1] + rng.uniform(-0.02, 0.02)
        shapes.append({"type": "Point", "coordinates": [lon, lat]})
    for _ in range(20):
        lon, lat = FIRENZE[0] + rng.uniform(-0.05, 0.05), FIRENZE[1] + rng.uniform(-0.03, 0.03)
        shapes.append(
            {"type": "LineString", "coordinates": [[lon, lat], [lon + 0.01, lat + 0.004]]}
        )
        shapes.append(_square(lon, lat, rng.uniform(0.0005, 0.3)))
    return shapes


GEOMETRIES = _geometries()


@pytest.fixture(scope="module")
async def repo(store_url: str) -> AsyncIterator[EntityRepository]:
    store = Store.connect(store_url, f"geo{secrets.token_hex(3)}", auto_create=True)
    repository = await store.repository(None, create_if_missing=True)
    terms = core_term_map()
    docs = [
        build_document(
            {
                "id": f"urn:ngsi-ld:Thing:{n:04d}",
                "type": "Thing",
                "location": {"type": "GeoProperty", "value": geometry},
            },
            terms,
            utc_now(),
        )
        for n, geometry in enumerate(GEOMETRIES)
    ]
    assert await repository.insert_many(docs) == {}
    yield repository
    await store.client.drop_database(repository.database.name)
    await store.close()


async def geo_search(
    repo: EntityRepository,
    query: GeoQuery,
    *,
    types: tuple[tuple[str, ...], ...] = (),
    offset: int,
    limit: int,
    count: bool,
) -> tuple[list[dict[str, Any]], int | None]:
    """The planned geo-query run by the store adapter: one page and the count."""
    selection = EntityQuery(geo=query, types=types, offset=offset, limit=limit, count=count)
    page = await execute(repo, plan(selection, QUERY_TRAITS))
    return page.docs, page.total


def _brute_force(query: GeoQuery) -> list[str]:
    hits = [
        (key, f"urn:ngsi-ld:Thing:{n:04d}")
        for n, geometry in enumerate(GEOMETRIES)
        if (key := query.matches(geometry)) is not None
    ]
    return [entity_id for _, entity_id in sorted(hits)]


async def _search(repo: EntityRepository, query: GeoQuery) -> list[str]:
    docs, total = await geo_search(repo, query, offset=0, limit=10_000, count=True)
    assert total == len(docs)
    return [doc["_id"] for doc in docs]


@pytest.mark.parametrize("radius", [50.0, 500.0, 2_000.0, 20_000.0])
async def test_near_finds_what_brute_force_finds_nearest_first(
    repo: EntityRepository, radius: float
) -> None:
    query = GeoQuery("near", {"type": "Point", "coordinates": list(FIRENZE)}, LOCATION, radius)
    found = await _search(repo, query)
    assert found == _brute_force(query)
    distances = [
        distance_m(shape(query.geometry), shape(GEOMETRIES[int(entity_id[-4:])]))
        for entity_id in found
    ]
    assert distances == sorted(distances)
    assert all(distance <= radius for distance in distances)


async def test_near_with_min_distance_only_scans_but_is_exact(repo: EntityRepository) -> None:
    query = GeoQuery(
        "near", {"type": "Point", "coordinates": list(FIRENZE)}, LOCATION, None, 1_500.0
    )
    assert await _search(repo, query) == _brute_force(query)


@pytest.mark.parametrize("georel", ["within", "intersects", "contains", "overlaps", "disjoint"])
async def test_relations_find_what_brute_force_finds(repo: EntityRepository, georel: str) -> None:
    query = GeoQuery(georel, _square(FIRENZE[0], FIRENZE[1], 0.01), LOCATION)
    found = await _search(repo, query)
    assert found == _brute_force(query)
    assert found or georel in ("contains", "overlaps")


async def test_paging_and_count_cover_the_whole_result(repo: EntityRepository) -> None:
    query = GeoQuery("near", {"type": "Point", "coordinates": list(FIRENZE)}, LOCATION, 2_000.0)
    expected = _brute_force(query)
    pages: list[str] = []
    for offset in range(0, len(expected) + 7, 7):
        docs, total = await geo_search(repo, query, offset=offset, limit=7, count=True)
        assert total == len(expected)
        pages.extend(doc["_id"] for doc in docs)
    assert pages == expected


@pytest.mark.parametrize(
    "query",
    [
        GeoQuery("near", {"type": "Point", "coordinates": list(FIRENZE)}, LOCATION, 500.0),
        GeoQuery("within", _square(FIRENZE[0], FIRENZE[1], 0.05), LOCATION),
    ],
)
async def test_every_candidate_lookup_uses_an_index(
    repo: EntityRepository, query: GeoQuery
) -> None:
    """Point key ranges and the cell lookup are each an index scan, never a collection scan."""
    lookups = query.candidate_filters(LOCATION.replace(".", "="))
    assert lookups is not None
    assert len(lookups) >= 2
    assert any(next(iter(lookup)).startswith("gp.") for lookup in lookups)
    assert next(iter(lookups[-1])).startswith("gc.")
    rest = {"type": {"$in": ["https://uri.etsi.org/ngsi-ld/default-context/Thing"]}}
    for lookup in lookups:
        explained = await repo.database.command(
            "explain",
            {
                "aggregate": "entities",
                "pipeline": [{"$match": lookup}, {"$match": rest}],
                "cursor": {},
            },
        )
        assert "IXSCAN" in str(explained), lookup
        assert "COLLSCAN" not in str(explained), lookup


async def test_the_type_selection_applies_to_every_candidate(store_url: str) -> None:
    """Types are tested in the broker, on each candidate's projected type list: single
    types, alternatives (`A,B`) and entities that must have several types (`A;B`)."""
    store = Store.connect(store_url, f"geotypes{secrets.token_hex(3)}", auto_create=True)
    repository = await store.repository(None, create_if_missing=True)
    terms = core_term_map()
    spot, device, sensor = (terms.expand(name) for name in ("ParkingSpot", "Device", "Sensor"))
    typed = {"spot": ["ParkingSpot"], "device": ["Device"], "both": ["Device", "Sensor"]}
    near = {"type": "Point", "coordinates": list(FIRENZE)}
    docs = [
        build_document(
            {
                "id": f"urn:ngsi-ld:Thing:{name}",
                "type": types,
                "location": {"type": "GeoProperty", "value": near},
            },
            terms,
            utc_now(),
        )
        for name, types in typed.items()
    ]
    try:
        assert await repository.insert_many(docs) == {}
        query = GeoQuery("near", near, LOCATION, 100.0)

        async def ids(types: tuple[tuple[str, ...], ...]) -> list[str]:
            found, total = await geo_search(
                repository, query, types=types, offset=0, limit=10, count=True
            )
            assert total == len(found)
            return sorted(doc["_id"].rsplit(":", 1)[1] for doc in found)

        assert await ids(()) == ["both", "device", "spot"]
        assert await ids(((device,),)) == ["both", "device"]
        assert await ids(((device, sensor),)) == ["both"]
        assert await ids(((spot,), (sensor,))) == ["both", "spot"]
    finally:
        await store.client.drop_database(repository.database.name)
        await store.close()


async def test_a_2dsphere_index_left_by_an_earlier_version_is_dropped(store_url: str) -> None:
    """No query uses it, and on the embedded store it doubled the cost of every write.
    (A database of its own and three entities: building and dropping a geo index stalls
    the store in proportion to what it holds.)"""
    store = Store.connect(store_url, f"geoold{secrets.token_hex(3)}", auto_create=True)
    repository = await store.repository(None, create_if_missing=True)
    terms = core_term_map()
    docs = [
        build_document(
            {
                "id": f"urn:ngsi-ld:Thing:old{n}",
                "type": "Thing",
                "location": {"type": "GeoProperty", "value": geometry},
            },
            terms,
            utc_now(),
        )
        for n, geometry in enumerate(GEOMETRIES[:3])
    ]
    try:
        assert await repository.insert_many(docs) == {}
        field = LOCATION.replace(".", "=")
        await repository.entities.create_index([(f"attrs.{field}.value", "2dsphere")])
        await EntityRepository(repository.database).ensure_geo_fields([field])
        indexes = (await repository.entities.index_information()).values()
        assert "2dsphere" not in [spec["key"][0][1] for spec in indexes]
        near = GeoQuery("near", {"type": "Point", "coordinates": list(FIRENZE)}, LOCATION, 1e4)
        assert sorted(await _search(repository, near)) == sorted(doc["_id"] for doc in docs)
    finally:
        await store.client.drop_database(repository.database.name)
        await store.close()
