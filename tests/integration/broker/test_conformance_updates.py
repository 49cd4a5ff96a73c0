"""Update semantics of ETSI GS CIM 009 (issue #16): NGSI-LD Null deletes, the default
instance, `type` on single-entity operations, scope, batch results, times as sent."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ._helpers import ERRORS, LD, assert_problem, create, entity, fetch, geo, new_id, prop, rel

pytestmark = pytest.mark.integration

NULL = "urn:ngsi-ld:null"
LANGUAGE = {"type": "LanguageProperty", "languageMap": {"it": "ciao", "en": "hello"}}


@pytest.mark.parametrize(
    ("stored", "deletion"),
    [
        (prop(1), {"type": "Property", "value": NULL}),
        (rel("urn:ngsi-ld:X:1"), {"type": "Relationship", "object": NULL}),
        (LANGUAGE, {"type": "LanguageProperty", "languageMap": {"@none": NULL}}),
        (geo(11.2, 43.7), {"type": "GeoProperty", "value": NULL}),
        (prop(1), {"value": NULL}),
    ],
    ids=["property", "relationship", "language", "geo", "concise"],
)
async def test_null_in_a_partial_update_deletes_the_attribute(
    api: httpx.AsyncClient, stored: dict[str, Any], deletion: dict[str, Any]
) -> None:
    """Clause 4.5.0 and 5.6.4: NGSI-LD Null in Partial Attribute Update deletes the attribute;
    it is never stored."""
    entity_id = await create(api, entity(a=stored, keep=prop(2)))
    response = await api.patch(f"/entities/{entity_id}/attrs/a", json=deletion)
    assert response.status_code == 204, response.text
    body = await fetch(api, entity_id)
    assert "a" not in body
    assert body["keep"] == prop(2)


@pytest.mark.parametrize(
    "deletion",
    [
        {"type": "Property", "value": NULL},
        {"type": "Relationship", "object": NULL},
        {"type": "LanguageProperty", "languageMap": {"@none": NULL}},
        {"type": "GeoProperty", "value": NULL},
    ],
    ids=["property", "relationship", "language", "geo"],
)
async def test_null_in_a_merge_deletes_the_attribute(
    api: httpx.AsyncClient, deletion: dict[str, Any]
) -> None:
    """Clause 4.5.0 and 5.6.17: NGSI-LD Null in Merge Entity deletes the attribute."""
    kind = deletion["type"]
    stored = {
        "Property": prop(1),
        "Relationship": rel("urn:ngsi-ld:X:1"),
        "LanguageProperty": LANGUAGE,
        "GeoProperty": geo(11.2, 43.7),
    }[kind]
    entity_id = await create(api, entity(a=stored, b=prop(1, sub=stored)))
    response = await api.patch(
        f"/entities/{entity_id}", json={"a": deletion, "b": prop(1, sub=deletion)}
    )
    assert response.status_code == 204, response.text
    body = await fetch(api, entity_id)
    assert "a" not in body
    assert body["b"] == prop(1)


async def test_null_with_a_dataset_id_deletes_only_that_instance(api: httpx.AsyncClient) -> None:
    """Clause 4.5.0, 5.6.4 and 5.6.17: the deletion names one instance by its datasetId."""
    ds = "urn:ngsi-ld:Dataset:x"
    entity_id = await create(api, entity(a=[prop(1), prop(2, datasetId=ds)]))
    response = await api.patch(f"/entities/{entity_id}", json={"a": prop(NULL, datasetId=ds)})
    assert response.status_code == 204, response.text
    assert (await fetch(api, entity_id))["a"] == prop(1)
    await api.post(f"/entities/{entity_id}/attrs", json={"a": prop(3, datasetId=ds)})
    response = await api.patch(f"/entities/{entity_id}/attrs/a", json=prop(NULL, datasetId=ds))
    assert response.status_code == 204, response.text
    assert (await fetch(api, entity_id))["a"] == prop(1)


async def test_null_inside_a_compound_value_deletes_only_that_key(api: httpx.AsyncClient) -> None:
    """Clause 5.6.4 and 5.6.17: a key of a compound value set to NGSI-LD Null is removed,
    the other keys stay."""
    entity_id = await create(api, entity(address=prop({"street": "Via Roma", "city": "Prato"})))
    response = await api.patch(
        f"/entities/{entity_id}", json={"address": prop({"street": NULL, "zip": "59100"})}
    )
    assert response.status_code == 204, response.text
    assert (await fetch(api, entity_id))["address"] == prop({"city": "Prato", "zip": "59100"})
    response = await api.patch(
        f"/entities/{entity_id}/attrs/address", json={"value": {"zip": NULL}}
    )
    assert response.status_code == 204, response.text
    assert (await fetch(api, entity_id))["address"] == prop({"city": "Prato"})


async def test_dataset_id_none_is_the_default_instance(api: httpx.AsyncClient) -> None:
    """Clause 4.5.5: datasetId "@none" names the default instance."""
    entity_id = await create(api, entity(a=prop(1, datasetId="@none")))
    assert (await fetch(api, entity_id))["a"] == prop(1)
    response = await api.patch(f"/entities/{entity_id}/attrs/a", json=prop(2, datasetId="@none"))
    assert response.status_code == 204, response.text
    assert (await fetch(api, entity_id))["a"] == prop(2)


async def test_simplified_multi_instance_attributes_use_the_dataset_form(
    api: httpx.AsyncClient,
) -> None:
    """Clause 4.5.4: in the simplified representation an attribute with several instances
    is {"dataset": {datasetId or "@none": value}}."""
    ds = "urn:ngsi-ld:Dataset:x"
    entity_id = await create(api, entity(a=[prop(1), prop(2, datasetId=ds)], b=prop(3)))
    body = await fetch(api, entity_id, options="keyValues")
    assert body["a"] == {"dataset": {"@none": 1, ds: 2}}
    assert body["b"] == 3


async def test_type_restricts_single_entity_operations(api: httpx.AsyncClient) -> None:
    """Clause 6.5.3.1, 6.5.3.2, 6.6.3, 6.7.3: `type` on a single-entity operation names the entity's
    type; an entity of another type is not found."""
    entity_id = await create(api, entity(a=prop(1)))
    assert (await fetch(api, entity_id, type="Sensor"))["id"] == entity_id
    path = f"/entities/{entity_id}"
    other = {"type": "Vehicle"}
    assert_problem(await api.get(path, params=other), 404, "ResourceNotFound")
    patch = await api.patch(f"{path}/attrs/a", params=other, json={"value": 5})
    assert_problem(patch, 404, "ResourceNotFound")
    delete_attr = await api.delete(f"{path}/attrs/a", params=other)
    assert_problem(delete_attr, 404, "ResourceNotFound")
    for method in ("POST", "PATCH"):
        fragment = await api.request(method, f"{path}/attrs", params=other, json={"a": prop(7)})
        assert_problem(fragment, 404, "ResourceNotFound")
    assert_problem(await api.delete(path, params=other), 404, "ResourceNotFound")
    assert (await fetch(api, entity_id))["a"] == prop(1)
    assert (await api.delete(path, params={"type": "Sensor"})).status_code == 204


async def test_scope_attribute_operations(api: httpx.AsyncClient) -> None:
    """Clause 4.18 and 5.6.4/5.6.5: scope is deleted like an attribute; a partial update of
    scope is BadRequestData."""
    entity_id = await create(api, {**entity(a=prop(1)), "scope": "/Toscana/Prato"})
    response = await api.patch(f"/entities/{entity_id}/attrs/scope", json={"value": "/Lazio"})
    assert_problem(response, 400, "BadRequestData")
    assert (await fetch(api, entity_id))["scope"] == "/Toscana/Prato"
    response = await api.delete(f"/entities/{entity_id}/attrs/scope")
    assert response.status_code == 204, response.text
    assert "scope" not in await fetch(api, entity_id)


def _errors(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 207, response.text
    return {item["entityId"]: item["error"]["type"] for item in response.json()["errors"]}


async def test_batch_update_with_no_overwrite_over_existing_attributes_is_207(
    api: httpx.AsyncClient,
) -> None:
    """Clause 5.6.9/6.16.3.1: attributes noOverwrite keeps are reported in a 207."""
    entity_id = await create(api, entity(a=prop(1)))
    response = await api.post(
        "/entityOperations/update",
        params={"options": "noOverwrite"},
        json=[{"id": entity_id, "a": prop(5), "c": prop(5)}],
    )
    assert entity_id in _errors(response)
    body = await fetch(api, entity_id)
    assert (body["a"], body["c"]) == (prop(1), prop(5))


async def test_batch_delete_of_an_id_given_twice_reports_the_second(
    api: httpx.AsyncClient,
) -> None:
    """Clause 5.6.10: each id is one deletion; the second finds no entity."""
    entity_id = await create(api, entity())
    response = await api.post("/entityOperations/delete", json=[entity_id, entity_id])
    assert _errors(response) == {entity_id: ERRORS + "ResourceNotFound"}
    assert response.json()["success"] == [entity_id]
    assert (await api.get(f"/entities/{entity_id}")).status_code == 404


async def test_a_bad_context_in_one_batch_item_fails_only_that_item(
    api: httpx.AsyncClient,
) -> None:
    """Clause 5.6.7 and 6.3.5: with application/ld+json each entity carries its @context;
    one without it is a per-entity error of the BatchOperationResult."""
    good = {**entity(a=prop(1)), "@context": {"a": "https://example.org/a"}}
    bad = entity(a=prop(1))
    response = await api.post("/entityOperations/create", json=[good, bad], headers=LD)
    assert _errors(response) == {bad["id"]: ERRORS + "BadRequestData"}
    assert response.json()["success"] == [good["id"]]


async def test_batch_merge_reports_the_spec_error_types(api: httpx.AsyncClient) -> None:
    """Clause 5.6.20/6.31.3.1: a missing entity is ResourceNotFound, a bad fragment
    BadRequestData; the others are merged."""
    entity_id = await create(api, entity(a=prop(1)))
    missing = new_id()
    broken = await create(api, entity(a=prop(1)))
    response = await api.post(
        "/entityOperations/merge",
        json=[
            {"id": entity_id, "a": prop(2)},
            {"id": missing, "a": prop(2)},
            {"id": broken, "a": {"type": "Relationship", "object": "not a uri"}},
        ],
    )
    assert _errors(response) == {
        missing: ERRORS + "ResourceNotFound",
        broken: ERRORS + "BadRequestData",
    }
    assert (await fetch(api, entity_id))["a"] == prop(2)


async def test_times_keep_their_precision_as_sent(api: httpx.AsyncClient) -> None:
    """Clause 4.6.3: a DateTime is answered as it was given (no digits added)."""
    entity_id = await create(api, entity(a=prop(1, observedAt="2026-01-31T12:00:00Z")))
    assert (await fetch(api, entity_id))["a"]["observedAt"] == "2026-01-31T12:00:00Z"
    await api.patch(f"/entities/{entity_id}/attrs/a", json={"observedAt": "2026-02-01T08:30:00.5Z"})
    assert (await fetch(api, entity_id))["a"]["observedAt"] == "2026-02-01T08:30:00.5Z"


async def test_object_list_entries_are_normalized(api: httpx.AsyncClient) -> None:
    """Clause 4.5.22 (ListRelationship): each objectList entry is {"object": uri}."""
    targets = ["urn:ngsi-ld:X:1", {"object": "urn:ngsi-ld:X:2"}]
    entity_id = await create(api, entity(a={"type": "ListRelationship", "objectList": targets}))
    assert (await fetch(api, entity_id))["a"]["objectList"] == [
        {"object": "urn:ngsi-ld:X:1"},
        {"object": "urn:ngsi-ld:X:2"},
    ]
