"""Batch upsert committed once (as the bridge sends it): the answers stay those of clause
6.15.3.1, and one entity the store refuses does not take the others with it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

from context_broker import BrokerSettings
from regional_tenants import tenant_database

from ._helpers import ERRORS, entity, fetch, prop

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
