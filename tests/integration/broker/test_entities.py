"""Entity operations of clause 5.6 over HTTP (clause 6.4-6.5): create, retrieve, replace,
merge, delete."""

from __future__ import annotations

import httpx
import pytest

from ._helpers import assert_problem, create, entity, fetch, geo, new_id, prop, rel

pytestmark = pytest.mark.integration


async def test_create_answers_201_with_the_location_of_the_new_entity(
    api: httpx.AsyncClient,
) -> None:
    """Clause 6.4.3.1: 201 Created and a Location header naming the entity's resource."""
    payload = entity(temperature=prop(21.5))
    response = await api.post("/entities", json=payload)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/ngsi-ld/v1/entities/{payload['id']}"
    assert response.content == b""


async def test_retrieve_returns_the_entity_as_created(api: httpx.AsyncClient) -> None:
    payload = entity(
        temperature=prop(21.5, unitCode="CEL", observedAt="2026-01-31T12:00:00Z"),
        isIn=rel("urn:ngsi-ld:Building:b1"),
        location=geo(11.25, 43.77),
    )
    await create(api, payload)
    body = await fetch(api, payload["id"])
    assert body == {
        "id": payload["id"],
        "type": "Sensor",
        "temperature": {
            "type": "Property",
            "value": 21.5,
            "unitCode": "CEL",
            "observedAt": "2026-01-31T12:00:00Z",  # as sent (clause 4.6.3)
        },
        "isIn": {"type": "Relationship", "object": "urn:ngsi-ld:Building:b1"},
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [11.25, 43.77]},
        },
    }


async def test_retrieve_with_attrs_returns_only_those_attributes(api: httpx.AsyncClient) -> None:
    """Clause 6.5.3.1: the attrs parameter restricts the attributes returned."""
    payload = entity(a=prop(1), b=prop(2), c=prop(3))
    await create(api, payload)
    body = await fetch(api, payload["id"], attrs="a,c")
    assert body == {"id": payload["id"], "type": "Sensor", "a": prop(1), "c": prop(3)}


async def test_an_entity_with_several_types_keeps_them_all(api: httpx.AsyncClient) -> None:
    payload = {"id": new_id(), "type": ["Sensor", "Device"], "a": prop(1)}
    await create(api, payload)
    assert (await fetch(api, payload["id"]))["type"] == ["Sensor", "Device"]


async def test_scope_is_stored_and_returned(api: httpx.AsyncClient) -> None:
    """Clause 4.18: an entity's scope is kept with it."""
    payload = entity(scope=["/Toscana/Prato", "/Toscana/Firenze"])
    await create(api, payload)
    assert (await fetch(api, payload["id"]))["scope"] == ["/Toscana/Prato", "/Toscana/Firenze"]


async def test_sys_attrs_show_creation_and_modification_times(api: httpx.AsyncClient) -> None:
    """Clause 4.8: createdAt/modifiedAt of the entity and of each attribute, with sysAttrs."""
    payload = entity(a=prop(1))
    await create(api, payload)
    plain = await fetch(api, payload["id"])
    assert "createdAt" not in plain and "createdAt" not in plain["a"]
    body = await fetch(api, payload["id"], options="sysAttrs")
    assert body["createdAt"] == body["modifiedAt"]
    assert body["a"]["createdAt"] == body["createdAt"]
    assert body["createdAt"].endswith("Z")
    merged = await api.patch(f"/entities/{payload['id']}", json={"a": 2})
    assert merged.status_code == 204, merged.text
    after = await fetch(api, payload["id"], options="sysAttrs")
    assert after["createdAt"] == body["createdAt"]
    assert after["modifiedAt"] > body["modifiedAt"]
    assert after["a"]["createdAt"] == body["a"]["createdAt"]
    assert after["a"]["modifiedAt"] > body["a"]["modifiedAt"]


async def test_system_members_in_a_payload_do_not_overwrite_the_brokers_times(
    api: httpx.AsyncClient,
) -> None:
    """Clause 4.8: createdAt and modifiedAt are set by the broker only."""
    payload = entity(a=prop(1, createdAt="2000-01-01T00:00:00Z"))
    payload["createdAt"] = "2000-01-01T00:00:00Z"
    await create(api, payload)
    body = await fetch(api, payload["id"], options="sysAttrs")
    assert not body["createdAt"].startswith("2000")
    assert not body["a"]["createdAt"].startswith("2000")


async def test_creating_an_existing_entity_is_409_already_exists(api: httpx.AsyncClient) -> None:
    """Clause 5.6.1.4: an entity id already in use gives AlreadyExists."""
    payload = entity(a=prop(1))
    await create(api, payload)
    response = await api.post("/entities", json={**payload, "a": prop(2)})
    assert_problem(response, 409, "AlreadyExists")
    assert (await fetch(api, payload["id"]))["a"]["value"] == 1


async def test_retrieving_a_missing_entity_is_404(api: httpx.AsyncClient) -> None:
    await create(api, entity())  # the tenant exists; the entity does not
    response = await api.get(f"/entities/{new_id()}")
    assert_problem(response, 404, "ResourceNotFound")


async def test_delete_removes_the_entity(api: httpx.AsyncClient) -> None:
    """Clause 6.5.3.2: 204, then the entity is gone; deleting again is 404."""
    payload = entity(a=prop(1))
    await create(api, payload)
    response = await api.delete(f"/entities/{payload['id']}")
    assert response.status_code == 204, response.text
    assert_problem(await api.get(f"/entities/{payload['id']}"), 404, "ResourceNotFound")
    assert_problem(await api.delete(f"/entities/{payload['id']}"), 404, "ResourceNotFound")


async def test_an_id_can_be_created_again_after_delete(api: httpx.AsyncClient) -> None:
    payload = entity(a=prop(1))
    await create(api, payload)
    assert (await api.delete(f"/entities/{payload['id']}")).status_code == 204
    await create(api, {**payload, "a": prop(2)})
    assert (await fetch(api, payload["id"]))["a"]["value"] == 2


async def test_replace_entity_puts_the_payload_in_place_of_all_attributes(
    api: httpx.AsyncClient,
) -> None:
    """Clause 5.6.18 (PUT /entities/{id}): attributes not in the payload are gone."""
    payload = entity(a=prop(1), b=prop(2))
    await create(api, payload)
    before = await fetch(api, payload["id"], options="sysAttrs")
    response = await api.put(f"/entities/{payload['id']}", json={"type": "Sensor", "c": prop(3)})
    assert response.status_code == 204, response.text
    after = await fetch(api, payload["id"], options="sysAttrs")
    assert set(after) == {"id", "type", "c", "createdAt", "modifiedAt"}
    assert after["createdAt"] == before["createdAt"]
    assert after["c"]["value"] == 3


async def test_replace_entity_may_change_the_type(api: httpx.AsyncClient) -> None:
    payload = entity(a=prop(1))
    await create(api, payload)
    response = await api.put(f"/entities/{payload['id']}", json={"type": "Device", "a": prop(1)})
    assert response.status_code == 204, response.text
    assert (await fetch(api, payload["id"]))["type"] == "Device"


async def test_replace_with_another_id_in_the_payload_is_400(api: httpx.AsyncClient) -> None:
    payload = entity(a=prop(1))
    await create(api, payload)
    response = await api.put(
        f"/entities/{payload['id']}", json={"id": new_id(), "type": "Sensor", "a": prop(9)}
    )
    assert_problem(response, 400, "BadRequestData")
    assert (await fetch(api, payload["id"]))["a"]["value"] == 1


async def test_replace_of_a_missing_entity_is_404(api: httpx.AsyncClient) -> None:
    await create(api, entity())
    response = await api.put(f"/entities/{new_id()}", json={"type": "Sensor", "a": prop(1)})
    assert_problem(response, 404, "ResourceNotFound")


async def test_merge_entity_merges_attributes_and_keeps_the_others(
    api: httpx.AsyncClient,
) -> None:
    """Clause 5.6.17 (PATCH /entities/{id}): given attributes merge, others are untouched."""
    payload = entity(
        a=prop(1, unitCode="CEL", accuracy=prop(0.5)),
        b=prop("keep"),
    )
    await create(api, payload)
    response = await api.patch(
        f"/entities/{payload['id']}",
        json={"a": {"value": 2, "observedAt": "2026-02-01T08:00:00Z"}, "c": prop(3)},
    )
    assert response.status_code == 204, response.text
    body = await fetch(api, payload["id"])
    assert body["a"] == {
        "type": "Property",
        "value": 2,
        "unitCode": "CEL",
        "observedAt": "2026-02-01T08:00:00Z",
        "accuracy": prop(0.5),
    }
    assert body["b"] == prop("keep")
    assert body["c"] == prop(3)


async def test_merge_entity_accepts_merge_patch_json(api: httpx.AsyncClient) -> None:
    """Clause 6.5.3.4: PATCH with Content-Type application/merge-patch+json."""
    payload = entity(a=prop(1))
    await create(api, payload)
    response = await api.patch(
        f"/entities/{payload['id']}",
        content=b'{"a": 5}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 204, response.text
    assert (await fetch(api, payload["id"]))["a"] == prop(5)


@pytest.mark.parametrize(
    "deletion",
    [
        "urn:ngsi-ld:null",
        {"type": "Property", "value": "urn:ngsi-ld:null"},
        {"value": "urn:ngsi-ld:null"},
        {"type": "Relationship", "object": "urn:ngsi-ld:null"},
    ],
    ids=["bare", "normalized", "concise", "relationship"],
)
async def test_merge_entity_deletes_attributes_set_to_ngsi_ld_null(
    api: httpx.AsyncClient, deletion: object
) -> None:
    """Clause 5.6.17.4 and 4.5.0: an attribute whose value is urn:ngsi-ld:null is deleted."""
    payload = entity(a=prop(1), r=rel("urn:ngsi-ld:Building:1"), b=prop(2))
    await create(api, payload)
    name = "r" if isinstance(deletion, dict) and "object" in deletion else "a"
    response = await api.patch(f"/entities/{payload['id']}", json={name: deletion})
    assert response.status_code == 204, response.text
    body = await fetch(api, payload["id"])
    assert name not in body
    assert body["b"] == prop(2)


async def test_merge_entity_deletes_sub_attributes_set_to_ngsi_ld_null(
    api: httpx.AsyncClient,
) -> None:
    """Clause 5.6.17.4: urn:ngsi-ld:null inside an attribute removes that sub-attribute."""
    payload = entity(a=prop(1, accuracy=prop(0.5), source=prop("x")))
    await create(api, payload)
    response = await api.patch(
        f"/entities/{payload['id']}", json={"a": {"value": 2, "accuracy": "urn:ngsi-ld:null"}}
    )
    assert response.status_code == 204, response.text
    assert (await fetch(api, payload["id"]))["a"] == prop(2, source=prop("x"))


async def test_merge_of_a_missing_entity_is_404(api: httpx.AsyncClient) -> None:
    await create(api, entity())
    response = await api.patch(f"/entities/{new_id()}", json={"a": 1})
    assert_problem(response, 404, "ResourceNotFound")


@pytest.mark.parametrize(
    ("entity_id", "path"),
    [
        ("urn:ngsi-ld:Sensor:prato#1", "urn:ngsi-ld:Sensor:prato%231"),
        ("https://example.org/sensors/1", "https:%2F%2Fexample.org%2Fsensors%2F1"),
    ],
)
async def test_any_uri_is_an_entity_id_over_every_route(
    api: httpx.AsyncClient, entity_id: str, path: str
) -> None:
    """Clause 4.5.1: an entity id is any URI, "/" and "#" included (percent-encoded in URLs)."""
    response = await api.post("/entities", json=entity(entity_id=entity_id, a=prop(1)))
    assert response.status_code == 201, response.text
    assert (await api.get(response.headers["location"].removeprefix("/ngsi-ld/v1"))).json()[
        "id"
    ] == entity_id
    patched = await api.patch(f"/entities/{path}/attrs", json={"a": prop(2)})
    assert patched.status_code == 204, patched.text
    assert (await api.delete(f"/entities/{path}/attrs/a")).status_code == 204
    assert "a" not in (await fetch(api, path))
    assert (await api.delete(f"/entities/{path}")).status_code == 204
    assert_problem(await api.get(f"/entities/{path}"), 404, "ResourceNotFound")
