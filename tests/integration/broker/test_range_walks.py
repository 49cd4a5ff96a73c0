"""Queries the store would answer by walking a whole type (an order by an attribute, a
count with q, a q no index answers) are read over the type's id ranges a few hundred
entities at a time: their pages, order and counts are those the store gives for the whole
selection at once, whatever kinds of values the attribute holds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from context_broker import BrokerSettings
from context_broker._names import encode_field
from context_broker._query import parse_q, to_mongo
from context_broker._query._store_traits import QUERY_TRAITS
from regional_tenants import tenant_database

from ._helpers import DEFAULT_VOCAB, entity, prop

pytestmark = pytest.mark.integration

GAUGES = 6 * QUERY_TRAITS.walk_documents + 50
READING = f"attrs.{encode_field(DEFAULT_VOCAB + 'reading')}.value"
TYPE = DEFAULT_VOCAB + "Gauge"


def reading(number: int) -> Any:
    """Numbers (int and float, equal ones too), strings, booleans, or no reading."""
    kinds: list[Any] = [
        number % 17,
        float(number % 17),
        f"r{number % 23}",
        number % 2 == 0,
        None,
        -number / 7,
    ]
    return kinds[number % len(kinds)]


def gauge(number: int) -> dict[str, Any]:
    value = reading(number)
    attrs = {} if value is None else {"reading": prop(value)}
    return entity("Gauge", f"urn:ngsi-ld:Gauge:{(number * 7919) % 10007:05d}", **attrs)


@pytest.fixture
async def gauges(
    api: httpx.AsyncClient, broker_settings: BrokerSettings, tenant: str
) -> AsyncIterator[Any]:
    """The tenant holds GAUGES gauges; yields their collection, read straight from the
    store for the answers it gives for a whole selection in one read."""
    for first in range(0, GAUGES, 200):
        batch = [gauge(i) for i in range(first, min(GAUGES, first + 200))]
        created = await api.post("/entityOperations/create", json=batch)
        assert created.status_code == 201, created.text
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        broker_settings.mongo_url, tz_aware=True
    )
    try:
        yield client[tenant_database(broker_settings.database_prefix, tenant)]["entities"]
    finally:
        await client.close()


async def answer(api: httpx.AsyncClient, **params: str) -> tuple[list[str], int | None]:
    response = await api.get("/entities", params={"type": "Gauge", **params})
    assert response.status_code == 200, response.text
    counted = response.headers.get("NGSILD-Results-Count")
    return [item["id"] for item in response.json()], None if counted is None else int(counted)


def selection(q: str) -> dict[str, Any]:
    """The gauges `q` selects, as the broker asks the store for them in one read."""
    return {"$and": [{"type": TYPE}, to_mongo(parse_q(q), lambda term: DEFAULT_VOCAB + term)]}


async def store_order(entities: Any, query: dict[str, Any], direction: int) -> list[str]:
    cursor = entities.find(query, {"_id": 1}, sort=[(READING, direction), ("_id", 1)])
    return [doc["_id"] async for doc in cursor]


@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
async def test_an_order_by_a_value_of_many_kinds_is_the_stores_order(
    api: httpx.AsyncClient, gauges: Any, descending: bool
) -> None:
    """orderBy (clause 4.23) on an attribute holding numbers, strings, booleans or nothing:
    every page, with count (clause 6.3.13), is the store's own order of the whole type."""
    expected = await store_order(gauges, {"type": TYPE}, -1 if descending else 1)
    assert len(expected) == GAUGES
    order = "reading;desc" if descending else "reading"
    for offset, limit in ((0, 20), (333, 100), (GAUGES - 5, 20)):
        found, counted = await answer(
            api, orderBy=order, offset=str(offset), limit=str(limit), count="true"
        )
        assert found == expected[offset : offset + limit]
        assert counted == GAUGES


async def test_a_count_with_q_counts_every_match(api: httpx.AsyncClient, gauges: Any) -> None:
    """q (clause 4.9) with a range on a numeric value (which the value's index answers,
    finding most of the type) and count: the page of the first matches by id and the
    count of all of them, as the store selects them in one read."""
    query = selection("reading<100")
    expected = sorted([doc["_id"] async for doc in gauges.find(query, {"_id": 1})])
    assert len(expected) > 3 * QUERY_TRAITS.walk_documents  # too many for the index
    found, counted = await answer(api, q="reading<100", count="true", limit="50", offset="7")
    assert (found, counted) == (expected[7:57], len(expected))
    by_value = await store_order(gauges, query, 1)
    found, counted = await answer(api, q="reading<100", orderBy="reading", limit="30")
    assert (found, counted) == (by_value[:30], None)


async def test_a_q_no_index_answers_pages_through_every_match(
    api: httpx.AsyncClient, gauges: Any
) -> None:
    """q with `!=` (clause 4.9), which no index answers: paging through the matches by id
    gives each once, in id order."""
    query = selection("reading!=4")
    expected = sorted([doc["_id"] async for doc in gauges.find(query, {"_id": 1})])
    seen: list[str] = []
    while True:
        found, counted = await answer(
            api, q="reading!=4", limit="150", offset=str(len(seen)), count="true"
        )
        assert counted == len(expected)
        seen += found
        if len(found) < 150:
            break
    assert seen == expected
