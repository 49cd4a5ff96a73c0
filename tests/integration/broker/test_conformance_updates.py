"""Update semantics of ETSI GS CIM 009 (issue #16): NGSI-LD Null deletes, the default
instance, `type` on single-entity operations, scope, batch results, times as sent."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ._helpers import (
    CORE_CONTEXT,
    ERRORS,
    LD,
    assert_problem,
    create,
    entity,
    fetch,
    geo,
    new_id,
    prop,
    rel,
)

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


# --- ngsildproof: an attribute's signature (clause 4.5.2.2, example C.11) -------------------

ADDRESS = {"streetAddress": ["Tiger Street 4", "al"], "addressLocality": "Cat City"}
PROOF_VALUE = {
    "type": "DataIntegrityProof",
    "created": "2025-01-27T21:02:24Z",
    "verificationMethod": "https://example.edu/issuers/565049#z6MkwXG2WjeQnN",
    "cryptosuite": "eddsa-rdfc-2022",
    "proofPurpose": "assertionMethod",
    "proofValue": "z3XrH3diVCqpVHXkE7WbnictqyQCkJBGTxNRTzmuoWU1Y2FyqGfSV9eS",
}


def _proof(entity_id: str, entity_type: str = "Store", **value: Any) -> dict[str, Any]:
    return {
        "type": "Property",
        "entityIdSealed": entity_id,
        "entityTypeSealed": entity_type,
        "value": PROOF_VALUE | value,
    }


def _signed_store(**address_members: Any) -> dict[str, Any]:
    store = entity("Store")
    store["address"] = prop(ADDRESS, ngsildproof=_proof(store["id"]), **address_members)
    return store


async def test_a_signed_attribute_is_answered_as_signed(api: httpx.AsyncClient) -> None:
    """Clause 4.5.2.2 and C.11: ngsildproof is a Property with the non-reified members
    entityIdSealed and entityTypeSealed and a proof object as value: retrieve and query answer
    it exactly as sent, none of its members wrapped in a Property."""
    store = _signed_store()
    await create(api, store)
    assert await fetch(api, store["id"]) == store
    listed = await api.get("/entities", params={"type": "Store"})
    assert listed.status_code == 200, listed.text
    assert listed.json() == [store]


async def test_a_signed_attribute_in_the_concise_and_simplified_forms(
    api: httpx.AsyncClient,
) -> None:
    """Clause 4.5.2.3: the concise proof drops only `type`, keeping the sealed members beside
    `value`, and a concise proof sent is stored as the normalized one; clause 4.5.4: the
    simplified form holds values only, so the address is its value."""
    store = _signed_store()
    concise_proof = {k: v for k, v in store["address"]["ngsildproof"].items() if k != "type"}
    concise = {"id": store["id"], "type": "Store"}
    concise["address"] = {"value": ADDRESS, "ngsildproof": concise_proof}
    await create(api, concise)
    assert await fetch(api, store["id"]) == store
    assert (await fetch(api, store["id"], options="concise"))["address"] == concise["address"]
    assert (await fetch(api, store["id"], options="keyValues"))["address"] == ADDRESS


async def test_entity_type_sealed_expands_like_a_type(api: httpx.AsyncClient) -> None:
    """Annex B: the core context types entityTypeSealed `@vocab`, so its value expands with the
    request's @context as the entity type does, and compacts back with the reader's."""
    context = {"Store": "https://example.org/ngsi-ld/Store"}
    store = _signed_store()
    written = await api.post(
        "/entities",
        json=store | {"@context": [context, CORE_CONTEXT]},
        headers=LD,
    )
    assert written.status_code == 201, written.text
    plain = await fetch(api, store["id"])
    assert plain["type"] == "https://example.org/ngsi-ld/Store"
    assert plain["address"]["ngsildproof"]["entityTypeSealed"] == plain["type"]
    assert plain["address"]["ngsildproof"]["value"] == PROOF_VALUE


@pytest.mark.parametrize("operation", ["update", "replace", "merge", "partial"])
async def test_a_new_signature_replaces_the_old_one_whole(
    api: httpx.AsyncClient, operation: str
) -> None:
    """Clause 4.5.2.2: a proof holds only as signed, so every update (5.6.2), Replace Attribute
    (5.6.19), Merge Entity (5.6.17) and Partial Attribute Update (5.6.4) stores the new
    ngsildproof as given: no member of the old proof survives."""
    store = _signed_store()
    await create(api, store)
    path = f"/entities/{store['id']}"
    new_proof = {"type": "Property", "entityIdSealed": store["id"], "value": {"proofValue": "z9"}}
    address = prop({"addressLocality": "Dog Town"}, ngsildproof=new_proof)
    if operation == "update":
        response = await api.patch(path + "/attrs", json={"address": address})
    elif operation == "replace":
        response = await api.put(path + "/attrs/address", json=address)
    elif operation == "merge":
        response = await api.patch(path, json={"address": address})
    else:
        response = await api.patch(path + "/attrs/address", json=address)
    assert response.status_code == 204, response.text
    stored = (await fetch(api, store["id"]))["address"]
    assert stored["ngsildproof"] == new_proof
    assert stored["value"] == {"addressLocality": "Dog Town"}


@pytest.mark.parametrize(
    "address",
    [
        prop(ADDRESS, entityIdSealed="urn:ngsi-ld:Store:1"),
        prop(ADDRESS, ngsildproof=rel("urn:ngsi-ld:Proof:1")),
        prop(ADDRESS, ngsildproof=prop("z3XrH3diVCqpVHXkE7Wb")),
        prop(ADDRESS, ngsildproof=prop(PROOF_VALUE, entityIdSealed="not a uri")),
    ],
    ids=["sealed-outside-proof", "proof-relationship", "proof-not-object", "sealed-id-no-uri"],
)
async def test_a_malformed_signature_is_bad_request_data(
    api: httpx.AsyncClient, address: dict[str, Any]
) -> None:
    """Clause 4.5.2.2: entityIdSealed and entityTypeSealed "shall never be present, unless the
    Property name is ngsildproof", which is a Property whose value is a proof object."""
    await create(api, entity())  # the tenant exists
    store = entity("Store", address=address)
    assert_problem(await api.post("/entities", json=store), 400, "BadRequestData")
    assert_problem(await api.get(f"/entities/{store['id']}"), 404, "ResourceNotFound")
