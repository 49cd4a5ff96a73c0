"""Batch upsert committed once (as the bridge sends it): the answers stay those of clause
6.15.3.1, and one entity the store refuses does not take the others with it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient, MongoClient, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from context_broker import BrokerSettings
from context_broker._single_commit import SingleCommitWriter
from regional_tenants import tenant_database

from ._helpers import ERRORS, entity, fetch, geo, prop

pytestmark = pytest.mark.integration


@pytest.fixture
async def entities(
    store_url: str, broker_settings: BrokerSettings, tenant: str
) -> AsyncIterator[AsyncCollection[dict[str, object]]]:
    """The tenant's entity collection in the store, for a document the broker did not write."""
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(store_url)
    try:
        yield client[tenant_database(broker_settings.database_prefix, tenant)]["entities"]
    finally:
        await client.close()


async def test_a_batch_of_new_and_existing_entities_answers_201_with_the_new_ones(
    api: httpx.AsyncClient,
) -> None:
    existing = [entity(a=prop(i)) for i in range(3)]
    assert (await api.post("/entityOperations/upsert", json=existing)).status_code == 201
    fresh = [entity(a=prop(10 + i)) for i in range(3)]
    updates = [entity(entity_id=e["id"], b=prop(i)) for i, e in enumerate(existing)]
    response = await api.post(
        "/entityOperations/upsert", params={"options": "update"}, json=updates + fresh
    )
    assert response.status_code == 201, response.text
    assert sorted(response.json()) == sorted(e["id"] for e in fresh)
    for i, payload in enumerate(existing):
        body = await fetch(api, payload["id"])
        assert (body["a"], body["b"]) == (prop(i), prop(i))


async def test_an_entity_the_store_refuses_fails_alone(
    api: httpx.AsyncClient, entities: AsyncCollection[dict[str, object]]
) -> None:
    fresh = entity(a=prop(1))
    odd = entity(a=prop(2))
    # Written by another program: `type` is not the array the broker keeps, so adding a
    # type to it fails in the store.
    await entities.insert_one({"_id": odd["id"], "type": "Sensor"})
    response = await api.post(
        "/entityOperations/upsert", params={"options": "update"}, json=[fresh, odd]
    )
    assert response.status_code == 207, response.text
    body = response.json()
    assert body["success"] == [fresh["id"]]
    assert {e["entityId"]: e["error"]["type"] for e in body["errors"]} == {
        odd["id"]: ERRORS + "BadRequestData"
    }
    assert (await fetch(api, fresh["id"]))["a"] == prop(1)


async def test_an_update_that_adds_attributes_makes_them_selectable(
    api: httpx.AsyncClient,
) -> None:
    """Clause 5.6.8 with options=update: attributes given are added to the entities; clause
    5.7.2: `attrs` then selects the entities that have one of them (the batch is written at
    once, reading the entities in the same commit)."""
    existing = [entity(a=prop(i)) for i in range(2)]
    assert (await api.post("/entityOperations/upsert", json=existing)).status_code == 201
    updates = [entity(entity_id=e["id"], b=prop(i)) for i, e in enumerate(existing)]
    response = await api.post(
        "/entityOperations/upsert", params={"options": "update"}, json=updates
    )
    assert response.status_code == 204, response.text
    found = await api.get("/entities", params={"type": "Sensor", "attrs": "b"})
    assert sorted(item["id"] for item in found.json()) == sorted(e["id"] for e in existing)


async def test_an_attribute_that_stops_being_a_geoproperty_leaves_geo_queries(
    api: httpx.AsyncClient,
) -> None:
    """Clause 5.6.8 with options=update replaces the attributes given; clause 4.10: a geo-query
    tests the GeoProperty named by `geoproperty`, so an entity whose `place` became a plain
    Property is no longer near anything."""
    near = {
        "type": "Sensor",
        "georel": "near;maxDistance==100",
        "geometry": "Point",
        "coordinates": "[11.25,43.77]",
        "geoproperty": "place",
    }
    placed = [entity(place=geo(11.25, 43.77)) for _ in range(2)]
    assert (await api.post("/entityOperations/upsert", json=placed)).status_code == 201
    assert len((await api.get("/entities", params=near)).json()) == 2
    moved = [entity(entity_id=e["id"], place=prop("warehouse")) for e in placed]
    response = await api.post("/entityOperations/upsert", params={"options": "update"}, json=moved)
    assert response.status_code == 204, response.text
    answer = await api.get("/entities", params=near)
    assert answer.status_code == 200, answer.text
    assert answer.json() == []
    assert (await fetch(api, placed[0]["id"]))["place"] == prop("warehouse")


async def test_a_batch_whose_entity_changed_after_it_was_read_is_not_written(
    store_url: str, entities: AsyncCollection[dict[str, object]]
) -> None:
    """The single commit reads the entities it writes in the same transaction: when another
    writer changes one of them in between, nothing of the batch is written (the broker then
    writes entity by entity, with updates that need no read), and the other write stands."""
    await entities.insert_many([{"_id": "urn:x:1", "n": 0}, {"_id": "urn:x:2", "n": 0}])
    other: MongoClient[dict[str, object]] = MongoClient(store_url)
    names = (entities.database.name, entities.name)

    def operations(found: list[dict[str, Any]]) -> list[UpdateOne]:
        assert sorted(doc["_id"] for doc in found) == ["urn:x:1", "urn:x:2"]
        other[names[0]][names[1]].update_one({"_id": "urn:x:1"}, {"$set": {"n": 7}})
        return [UpdateOne({"_id": doc["_id"]}, {"$inc": {"n": 1}}) for doc in found]

    try:
        written = await SingleCommitWriter(entities).bulk_write_after_read(
            ["urn:x:1", "urn:x:2"], None, operations
        )
    finally:
        other.close()
    assert written is None
    assert [doc["n"] async for doc in entities.find({}, sort=[("_id", 1)])] == [7, 0]
