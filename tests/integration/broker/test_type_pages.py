"""Pages and counts of a type alone come from the type's id ranges: exact whatever the
writes (creates, batch upserts, type changes, deletes), also for entities stored before
the ranges existed."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from context_broker import BrokerSettings
from context_broker._entities import build_document
from context_broker._jsonld import core_term_map
from context_broker._query._pages import MAX_BUCKET
from context_broker._time import utc_now
from regional_tenants import MongoTenantDirectory

from ._helpers import DEFAULT_VOCAB, entity, prop

pytestmark = pytest.mark.integration


def ids(*numbers: int, kind: str = "Meter") -> list[str]:
    return [f"urn:ngsi-ld:{kind}:{number:04d}" for number in numbers]


def meter(number: int, kind: str = "Meter") -> dict[str, Any]:
    return entity(kind, ids(number, kind=kind)[0], level=prop(number))


async def page(api: httpx.AsyncClient, **params: str) -> tuple[list[str], int | None]:
    response = await api.get("/entities", params={"type": "Meter", **params})
    assert response.status_code == 200, response.text
    counted = response.headers.get("NGSILD-Results-Count")
    return [item["id"] for item in response.json()], None if counted is None else int(counted)


async def every_page(api: httpx.AsyncClient, limit: int) -> list[str]:
    seen: list[str] = []
    while True:
        found, _ = await page(api, limit=str(limit), offset=str(len(seen)))
        seen += found
        if len(found) < limit:
            return seen


async def test_pages_and_counts_follow_every_kind_of_write(api: httpx.AsyncClient) -> None:
    numbers = list(range(5 * MAX_BUCKET + 40))
    random.Random(7).shuffle(numbers)
    for first in range(0, len(numbers), 200):
        batch = [meter(i) for i in numbers[first : first + 200]]
        created = await api.post("/entityOperations/create", json=batch)
        assert created.status_code == 201, created.text
    expected = ids(*sorted(numbers))
    assert await every_page(api, 37) == expected  # the ranges are cut on this first query
    assert await page(api, limit="0", count="true") == ([], len(expected))

    # deleted one by one and in a batch, created one by one, upserted in a batch
    assert (await api.delete(f"/entities/{ids(5)[0]}")).status_code == 204
    gone = await api.post("/entityOperations/delete", json=ids(6, 300, 301))
    assert gone.status_code == 204, gone.text
    assert (await api.post("/entities", json=meter(9000))).status_code == 201
    upserted = await api.post("/entityOperations/upsert", json=[meter(9001), meter(7)])
    assert upserted.status_code in (201, 204), upserted.text
    expected = [i for i in expected if i not in ids(5, 6, 300, 301)] + ids(9000, 9001)
    assert await every_page(api, 50) == expected
    assert (await page(api, count="true", limit="3", offset="290")) == (
        expected[290:293],
        len(expected),
    )

    # an entity that changes its type leaves the one type's pages for the other's
    # and one that gains a type is in the pages of both
    retyped = [meter(8) | {"type": "Gauge"}]
    changed = await api.post("/entityOperations/upsert?options=replace", json=retyped)
    assert changed.status_code == 204, changed.text
    both = await api.post(
        "/entityOperations/upsert?options=update", json=[meter(9) | {"type": "Gauge"}]
    )
    assert both.status_code == 204, both.text
    expected.remove(ids(8)[0])
    assert await every_page(api, 100) == expected
    gauges = await api.get("/entities", params={"type": "Gauge", "count": "true"})
    assert gauges.headers["NGSILD-Results-Count"] == "2"
    assert [item["id"] for item in gauges.json()] == ids(8, 9)


async def test_entities_stored_before_the_ranges_existed_are_paged_and_counted(
    tenant: str, broker_url: str, broker_settings: BrokerSettings
) -> None:
    """A tenant written without id ranges (by an earlier version, or straight into the store)
    is counted once when the broker first opens it."""
    terms, now = core_term_map(), utc_now()
    docs = [build_document(meter(i), terms, now) for i in range(300)]
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(broker_settings.mongo_url)
    try:
        prefix = broker_settings.database_prefix
        await MongoTenantDirectory(client, prefix, auto_create=True).create_if_allowed(tenant)
        database = client[f"{prefix}_{tenant}"]
        await database["entities"].insert_many(docs)
        async with httpx.AsyncClient(
            base_url=broker_url + "/ngsi-ld/v1",
            headers={"NGSILD-Tenant": tenant},
            timeout=60.0,
        ) as api:
            assert await page(api, count="true", limit="5", offset="120") == (
                ids(*range(120, 125)),
                300,
            )
            assert (await api.post("/entities", json=meter(1000))).status_code == 201
            assert await every_page(api, 64) == ids(*range(300), 1000)
        assert await database["type_ranges"].count_documents({"t": DEFAULT_VOCAB + "Meter"}) >= 2
    finally:
        await client.close()
