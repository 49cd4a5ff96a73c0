"""Every store read has a budget: a query over its time budget answers TooComplexQuery
(403) and leaves the store free for the next request; a query that would hold more
entities than the bound answers TooManyResults; one tenant's reads wait in its own
queue, so another tenant's reads go on while its slots are taken."""

from __future__ import annotations

import asyncio
import math
import random
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from _servers import ThreadedServer
from pymongo import MongoClient

from context_broker import BrokerSettings, create_app
from context_broker._budget import StoreTurns, TenantGate
from context_broker._entities import build_document
from context_broker._errors import TenantBusy
from context_broker._jsonld import core_term_map
from context_broker._time import utc_now

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
ENTITIES = 4000
# Ordered by an attribute no index holds, and counted: the store reads and sorts every
# entity of the type, some hundreds of milliseconds on the embedded store.
HEAVY = {"type": "AirQualityObserved", "orderBy": "no2", "count": "true", "limit": "1"}


def _entity(index: int, rng: random.Random) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:AirQualityObserved:b{index:05d}",
        "type": "AirQualityObserved",
        "no2": {"type": "Property", "value": round(rng.uniform(0, 100), 2)},
        "location": {
            "type": "GeoProperty",
            "value": {
                "type": "Point",
                "coordinates": [rng.uniform(10.0, 11.0), rng.uniform(43.0, 44.0)],
            },
        },
    }


@pytest.fixture(scope="module")
def seeded(store_url: str) -> Iterator[tuple[str, str, str]]:
    """(database prefix, a big tenant, a small tenant), seeded straight into the store with
    the indexes the broker would build first (built on the empty collection, where they
    cost nothing; the session's store is dropped with it, the databases are not)."""
    prefix = f"b{secrets.token_hex(4)}"
    big, small = "big", "small"
    rng, terms, now = random.Random(7), core_term_map(), utc_now()
    client: MongoClient[dict[str, Any]] = MongoClient(store_url, tz_aware=True)
    try:
        for tenant, size in ((big, ENTITIES), (small, 50)):
            client[f"{prefix}__platform"]["tenants"].insert_one({"_id": tenant, "createdAt": now})
            docs = [build_document(_entity(i, rng), terms, now) for i in range(size)]
            entities = client[f"{prefix}_{tenant}"]["entities"]
            grid = [
                f"{member}.{field}" for member in ("gp", "gc") for field in docs[0].get(member, {})
            ]
            for key in ("type", "modifiedAt", "an", *grid):
                entities.create_index(key)
            entities.create_index([("type", 1), ("_id", 1)])  # a type's id ranges
            entities.insert_many(docs)
        yield prefix, big, small
    finally:
        client.close()


def _serve(store_url: str, prefix: str, **budgets: int) -> ThreadedServer:
    settings = BrokerSettings(
        mongo_url=store_url, database_prefix=prefix, auto_create_tenants=False, **budgets
    )
    return ThreadedServer(create_app(settings))


@pytest.fixture
async def tight(store_url: str, seeded: tuple[str, str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """A broker whose reads have 60 ms each: enough for a read by id, not for HEAVY."""
    with _serve(store_url, seeded[0], query_time_budget_ms=60) as server:
        async with httpx.AsyncClient(base_url=server.url + "/ngsi-ld/v1", timeout=20) as http:
            yield http


async def test_a_query_over_its_time_budget_is_refused_and_the_next_read_answers(
    tight: httpx.AsyncClient, seeded: tuple[str, str, str]
) -> None:
    _, big, _ = seeded
    headers = {"NGSILD-Tenant": big}
    started = time.monotonic()
    answer = await tight.get("/entities", params=HEAVY, headers=headers)
    took = time.monotonic() - started
    assert answer.status_code == 403, answer.text
    assert answer.json()["type"] == ERRORS + "TooComplexQuery"
    assert "60 ms" in answer.json()["detail"]
    assert took < 5, f"the over-budget query took {took:.1f} s"
    one = await tight.get("/entities/urn:ngsi-ld:AirQualityObserved:b00001", headers=headers)
    assert one.status_code == 200, one.text
    assert one.json()["id"] == "urn:ngsi-ld:AirQualityObserved:b00001"


async def test_a_geo_query_over_the_document_bound_names_the_limit(
    store_url: str, seeded: tuple[str, str, str]
) -> None:
    prefix, big, _ = seeded
    within_all = {
        "type": "AirQualityObserved",
        "georel": "within",
        "geometry": "Polygon",
        "coordinates": "[[[9.9,42.9],[11.1,42.9],[11.1,44.1],[9.9,44.1],[9.9,42.9]]]",
    }
    with _serve(store_url, prefix, query_max_documents=500) as server:
        async with httpx.AsyncClient(base_url=server.url + "/ngsi-ld/v1", timeout=20) as http:
            headers = {"NGSILD-Tenant": big}
            answer = await http.get("/entities", params=within_all, headers=headers)
            assert answer.status_code == 403, answer.text
            assert answer.json()["type"] == ERRORS + "TooManyResults"
            assert "500" in answer.json()["detail"]
            small_area = dict(
                within_all,
                coordinates="[[[10.0,43.0],[10.1,43.0],[10.1,43.1],[10.0,43.1],[10.0,43.0]]]",
            )
            assert (await http.get("/entities", params=small_area, headers=headers)).is_success


async def test_a_tenant_with_its_slots_taken_waits_alone(
    store_url: str, seeded: tuple[str, str, str]
) -> None:
    """With one read slot per tenant and no queue, heavy reads sent together by one tenant
    find the slot taken (503, Retry-After) while the other tenant's reads answer."""
    prefix, big, small = seeded
    with _serve(store_url, prefix, tenant_read_slots=1, tenant_read_queue=0) as server:
        async with httpx.AsyncClient(base_url=server.url + "/ngsi-ld/v1", timeout=30) as http:
            heavy = [
                asyncio.create_task(
                    http.get("/entities", params=HEAVY, headers={"NGSILD-Tenant": big})
                )
                for _ in range(4)
            ]
            await asyncio.sleep(0.05)
            light = await http.get(
                "/entities", params={"type": "AirQualityObserved"}, headers={"NGSILD-Tenant": small}
            )
            answers = await asyncio.gather(*heavy)
    assert light.status_code == 200, light.text
    assert len(light.json()) == 20
    statuses = sorted(answer.status_code for answer in answers)
    assert 200 in statuses
    busy = [answer for answer in answers if answer.status_code == 503]
    assert busy, f"every heavy read found a free slot: {statuses}"
    assert int(busy[0].headers["Retry-After"]) >= 1
    assert "too many concurrent reads" in busy[0].json()["detail"]


async def test_a_read_by_id_answers_while_the_tenants_slot_is_taken(
    store_url: str, seeded: tuple[str, str, str]
) -> None:
    """A read by id costs one document: it needs no slot of the gate, so a tenant's own
    heavy queries neither delay it nor make it 503."""
    prefix, big, _ = seeded
    headers = {"NGSILD-Tenant": big}
    with _serve(store_url, prefix, tenant_read_slots=1, tenant_read_queue=0) as server:
        async with httpx.AsyncClient(base_url=server.url + "/ngsi-ld/v1", timeout=30) as http:
            heavy = asyncio.create_task(http.get("/entities", params=HEAVY, headers=headers))
            await asyncio.sleep(0.05)
            ids = [f"urn:ngsi-ld:AirQualityObserved:b{i:05d}" for i in range(5)]
            reads = [await http.get(f"/entities/{id_}", headers=headers) for id_ in ids]
            held = await heavy
    assert held.status_code == 200, held.text
    assert [read.status_code for read in reads] == [200] * 5


async def test_the_gate_queues_within_a_tenant_and_refuses_past_its_queue() -> None:
    gate = TenantGate(slots=1, queue=1, wait_s=5)
    other = TenantGate(slots=1, queue=1, wait_s=5)
    entered = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        async with gate.slot():
            entered.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await entered.wait()
    waiter = asyncio.create_task(_enter(gate))
    await asyncio.sleep(0.01)
    assert not waiter.done()  # queued behind the holder
    with pytest.raises(TenantBusy):  # the queue of one is full
        await _enter(gate)
    await asyncio.wait_for(_enter(other), 1)  # another tenant's gate is free
    release.set()
    await asyncio.wait_for(waiter, 1)
    await holder


async def test_a_read_waiting_past_the_wait_budget_is_refused() -> None:
    gate = TenantGate(slots=1, queue=4, wait_s=0.05)
    release = asyncio.Event()

    async def hold() -> None:
        async with gate.slot():
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    with pytest.raises(TenantBusy) as refused:
        await _enter(gate)
    assert refused.value.status == 503
    assert refused.value.headers["Retry-After"] == "1"
    release.set()
    await holder


async def test_the_store_serves_waiting_tenants_in_turn() -> None:
    """Three reads of one tenant wait before one of another: that one goes second."""
    turns = StoreTurns(1)
    served: list[str] = []
    release = asyncio.Event()

    async def read(tenant: str, hold: asyncio.Event | None = None) -> None:
        async with turns.turn(tenant):
            served.append(tenant)
            if hold is not None:
                await hold.wait()
            await asyncio.sleep(0)

    first = asyncio.create_task(read("a", release))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(read("a")) for _ in range(3)]
    await asyncio.sleep(0)
    waiting.append(asyncio.create_task(read("b")))
    await asyncio.sleep(0.01)
    assert served == ["a"]
    release.set()
    await asyncio.wait_for(asyncio.gather(first, *waiting), 1)
    assert served == ["a", "a", "b", "a", "a"]


async def test_a_read_that_gives_up_waiting_for_its_turn_loses_no_slot() -> None:
    turns = StoreTurns(1)
    release = asyncio.Event()

    async def hold() -> None:
        async with turns.turn("a"):
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(_turn(turns, "b"), 0.01)
    release.set()
    await holder
    await asyncio.wait_for(_turn(turns, "b"), 1)
    await asyncio.wait_for(_turn(turns, "c"), 1)


async def _turn(turns: StoreTurns, tenant: str) -> None:
    async with turns.turn(tenant):
        pass


async def _enter(gate: TenantGate) -> None:
    async with gate.slot():
        pass


async def test_an_order_by_distance_over_the_document_bound_names_the_limit(
    store_url: str, seeded: tuple[str, str, str]
) -> None:
    """Clause 4.23: the broker orders by distance itself, so it holds every match's location;
    past the query's document bound the answer is TooManyResults naming it, and a narrower
    selection is ordered nearest first."""
    prefix, big, _ = seeded
    by_distance = {
        "type": "AirQualityObserved",
        "orderBy": "location;dist-asc",
        "orderFrom": "[10.5,43.5]",
    }
    with _serve(store_url, prefix, query_max_documents=500) as server:
        async with httpx.AsyncClient(base_url=server.url + "/ngsi-ld/v1", timeout=20) as http:
            headers = {"NGSILD-Tenant": big}
            answer = await http.get("/entities", params=by_distance, headers=headers)
            assert answer.status_code == 403, answer.text
            assert answer.json()["type"] == ERRORS + "TooManyResults"
            assert "500" in answer.json()["detail"]
            narrow = {**by_distance, "q": "no2<5", "limit": "100", "options": "keyValues"}
            found = await http.get("/entities", params=narrow, headers=headers)
            assert found.status_code == 200, found.text
            metres = [_metres_from(10.5, 43.5, item["location"]) for item in found.json()]
            assert metres and metres == sorted(metres)


def _metres_from(lon: float, lat: float, point: dict[str, Any]) -> float:
    """Great-circle metres from (lon, lat) to a GeoJSON Point (haversine)."""
    lon2, lat2 = (math.radians(c) for c in point["coordinates"])
    lon1, lat1 = math.radians(lon), math.radians(lat)
    a = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))
