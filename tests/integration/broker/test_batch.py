"""Batch entity operations (clause 5.6.7-5.6.10, 5.6.20 over clause 6.14-6.17, 6.31):
201/204/207 and the BatchOperationResult of clause 5.2.16."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ._helpers import ERRORS, assert_problem, create, entity, fetch, new_id, prop

pytestmark = pytest.mark.integration


def _errors(response: httpx.Response) -> dict[str, str]:
    """entityId -> error type of a 207 BatchOperationResult."""
    assert response.status_code == 207, response.text
    body: dict[str, Any] = response.json()
    for item in body["errors"]:
        assert item["error"]["status"] in (400, 404, 409)
        assert isinstance(item["error"]["title"], str)
    return {item["entityId"]: item["error"]["type"] for item in body["errors"]}


async def test_batch_create_answers_201_with_the_ids(api: httpx.AsyncClient) -> None:
    entities = [entity(a=prop(i)) for i in range(3)]
    response = await api.post("/entityOperations/create", json=entities)
    assert response.status_code == 201, response.text
    assert sorted(response.json()) == sorted(e["id"] for e in entities)
    for index, payload in enumerate(entities):
        assert (await fetch(api, payload["id"]))["a"] == prop(index)


async def test_batch_create_reports_each_failure_and_creates_the_rest(
    api: httpx.AsyncClient,
) -> None:
    existing = await create(api, entity(a=prop(0)))
    fresh = entity(a=prop(1))
    broken = {"id": new_id(), "a": prop(2)}  # no type
    not_uri = {"id": "not a uri", "type": "Sensor"}
    response = await api.post(
        "/entityOperations/create",
        json=[entity(entity_id=existing, a=prop(9)), fresh, broken, not_uri],
    )
    errors = _errors(response)
    assert response.json()["success"] == [fresh["id"]]
    assert errors[existing] == ERRORS + "AlreadyExists"
    assert errors[broken["id"]] == ERRORS + "BadRequestData"
    assert errors["not a uri"] == ERRORS + "BadRequestData"
    assert (await fetch(api, existing))["a"] == prop(0)
    assert (await fetch(api, fresh["id"]))["a"] == prop(1)


async def test_batch_create_of_an_id_given_twice_creates_it_once(api: httpx.AsyncClient) -> None:
    payload = entity(a=prop(1))
    response = await api.post("/entityOperations/create", json=[payload, {**payload, "a": prop(2)}])
    errors = _errors(response)
    assert response.json()["success"] == [payload["id"]]
    assert errors == {payload["id"]: ERRORS + "AlreadyExists"}
    assert (await fetch(api, payload["id"]))["a"] == prop(1)


async def test_batch_upsert_creates_then_replaces(api: httpx.AsyncClient) -> None:
    """Clause 6.15.3.1: 201 with the created ids; 204 when every entity existed.
    Without options the existing entities are replaced (options=replace is the default)."""
    payload = entity(a=prop(1), b=prop(2))
    response = await api.post("/entityOperations/upsert", json=[payload])
    assert response.status_code == 201, response.text
    assert response.json() == [payload["id"]]
    response = await api.post(
        "/entityOperations/upsert", json=[entity(entity_id=payload["id"], c=prop(3))]
    )
    assert response.status_code == 204, response.text
    body = await fetch(api, payload["id"])
    assert set(body) == {"id", "type", "c"}


async def test_batch_upsert_with_update_merges_attributes(api: httpx.AsyncClient) -> None:
    payload = entity(a=prop(1), b=prop(2))
    await create(api, payload)
    response = await api.post(
        "/entityOperations/upsert",
        params={"options": "update"},
        json=[entity(entity_id=payload["id"], b=prop(20), c=prop(3))],
    )
    assert response.status_code == 204, response.text
    body = await fetch(api, payload["id"])
    assert (body["a"], body["b"], body["c"]) == (prop(1), prop(20), prop(3))


async def test_batch_upsert_keeps_entity_creation_time(api: httpx.AsyncClient) -> None:
    payload = entity(a=prop(1))
    await create(api, payload)
    before = await fetch(api, payload["id"], options="sysAttrs")
    response = await api.post("/entityOperations/upsert", json=[payload])
    assert response.status_code == 204, response.text
    after = await fetch(api, payload["id"], options="sysAttrs")
    assert after["createdAt"] == before["createdAt"]
    assert after["modifiedAt"] >= before["modifiedAt"]


async def test_batch_upsert_with_update_and_replace_is_400(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/entityOperations/upsert", params={"options": "update,replace"}, json=[entity()]
    )
    assert_problem(response, 400, "BadRequestData")


async def test_batch_upsert_mixed_created_and_failed_is_207(api: httpx.AsyncClient) -> None:
    fresh = entity(a=prop(1))
    broken = entity(a={"type": "Relationship", "object": "not a uri"})
    response = await api.post("/entityOperations/upsert", json=[fresh, broken])
    errors = _errors(response)
    assert response.json()["success"] == [fresh["id"]]
    assert errors == {broken["id"]: ERRORS + "BadRequestData"}


async def test_batch_update_appends_and_honours_no_overwrite(api: httpx.AsyncClient) -> None:
    """Clause 5.6.9: each entity gets Append Entity Attributes; noOverwrite keeps values and
    reports the entity whose attributes it kept (207)."""
    first = await create(api, entity(a=prop(1)))
    second = await create(api, entity(a=prop(1)))
    response = await api.post(
        "/entityOperations/update",
        json=[{"id": first, "a": prop(2), "b": prop(2)}, {"id": second, "b": prop(3)}],
    )
    assert response.status_code == 204, response.text
    assert (await fetch(api, first))["a"] == prop(2)
    response = await api.post(
        "/entityOperations/update",
        params={"options": "noOverwrite"},
        json=[{"id": first, "a": prop(5), "c": prop(5)}],
    )
    assert _errors(response) == {first: ERRORS + "BadRequestData"}
    body = await fetch(api, first)
    assert (body["a"], body["c"]) == (prop(2), prop(5))


async def test_batch_update_of_a_missing_entity_is_207(api: httpx.AsyncClient) -> None:
    existing = await create(api, entity(a=prop(1)))
    missing = new_id()
    response = await api.post(
        "/entityOperations/update",
        json=[{"id": existing, "a": prop(2)}, {"id": missing, "a": prop(2)}],
    )
    assert _errors(response) == {missing: ERRORS + "ResourceNotFound"}
    assert response.json()["success"] == [existing]


async def test_batch_merge_merges_and_deletes_null_attributes(api: httpx.AsyncClient) -> None:
    """Clause 5.6.20: each entity gets Merge Entity."""
    entity_id = await create(api, entity(a=prop(1, unitCode="CEL"), b=prop(2)))
    missing = new_id()
    response = await api.post(
        "/entityOperations/merge",
        json=[{"id": entity_id, "a": 5, "b": "urn:ngsi-ld:null"}, {"id": missing, "a": 1}],
    )
    assert _errors(response) == {missing: ERRORS + "ResourceNotFound"}
    body = await fetch(api, entity_id)
    assert body["a"] == prop(5, unitCode="CEL")
    assert "b" not in body


async def test_batch_delete_removes_and_reports_missing(api: httpx.AsyncClient) -> None:
    first = await create(api, entity())
    second = await create(api, entity())
    response = await api.post("/entityOperations/delete", json=[first, second])
    assert response.status_code == 204, response.text
    assert_problem(await api.get(f"/entities/{first}"), 404, "ResourceNotFound")
    third = await create(api, entity())
    response = await api.post("/entityOperations/delete", json=[third, first, "not a uri"])
    errors = _errors(response)
    assert response.json()["success"] == [third]
    assert errors == {
        first: ERRORS + "ResourceNotFound",
        "not a uri": ERRORS + "BadRequestData",
    }


@pytest.mark.parametrize("operation", ["create", "upsert", "update", "merge", "delete"])
@pytest.mark.parametrize("body", [b"[]", b'{"id": "urn:a:b"}', b"[1, 2"])
async def test_a_batch_body_must_be_a_non_empty_array(
    api: httpx.AsyncClient, operation: str, body: bytes
) -> None:
    response = await api.post(
        f"/entityOperations/{operation}",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["type"] in (ERRORS + "BadRequestData", ERRORS + "InvalidRequest")


async def test_batch_items_in_json_ld_carry_their_own_context(api: httpx.AsyncClient) -> None:
    """Clause 6.3.5: with application/ld+json each entity of the array has an @context."""
    first = entity(a=prop(1))
    second = entity(a=prop(2))
    first["@context"] = {"a": "https://example.org/first#a"}
    second["@context"] = {"a": "https://example.org/second#a"}
    response = await api.post(
        "/entityOperations/create",
        content=httpx.Request("POST", "/", json=[first, second]).content,
        headers={"Content-Type": "application/ld+json"},
    )
    assert response.status_code == 201, response.text
    assert "https://example.org/first#a" in await fetch(api, first["id"])
    assert "https://example.org/second#a" in await fetch(api, second["id"])


async def test_batch_upsert_replace_drops_what_the_new_payload_lacks(
    api: httpx.AsyncClient,
) -> None:
    """Clause 5.6.8: with replace, an existing entity becomes the payload (scope included)."""
    payload = entity(scope="/Toscana/Prato", a=prop(1, datasetId="urn:ngsi-ld:Dataset:x"))
    await create(api, payload)
    response = await api.post(
        "/entityOperations/upsert", json=[entity(entity_id=payload["id"], b=prop(2))]
    )
    assert response.status_code == 204, response.text
    assert await fetch(api, payload["id"]) == entity(entity_id=payload["id"], b=prop(2))
