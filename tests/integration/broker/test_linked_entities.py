"""Linked Entity Retrieval over HTTP (ETSI GS CIM 009 V1.8 clause 4.5.23, the `join` and
`joinLevel` parameters of clause 6.3.x): linked entities inline in their Relationships or
listed flat after the entities, level by level, from the caller's tenant only."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from ._helpers import assert_problem, create, entity, fetch, geo, new_id, prop, rel

pytestmark = pytest.mark.integration


async def _chain(api: httpx.AsyncClient) -> tuple[str, str, str]:
    """A Building managed by a Company that is ownedBy a Holding: three linked entities."""
    holding = await create(api, entity("Holding", name=prop("Holding SpA")))
    company = await create(api, entity("Company", name=prop("Acme"), ownedBy=rel(holding)))
    building = await create(api, entity("Building", height=prop(30), managedBy=rel(company)))
    return building, company, holding


async def test_inline_puts_the_linked_entity_inside_the_relationship(
    api: httpx.AsyncClient,
) -> None:
    """Clause 4.5.23 (inline): the Relationship keeps its object and gains an `entity`
    member holding the linked entity in the same representation."""
    building, company, _ = await _chain(api)
    body = await fetch(api, building, join="inline")
    managed_by = body["managedBy"]
    assert managed_by["type"] == "Relationship"
    assert managed_by["object"] == company
    linked = managed_by["entity"]
    assert linked["id"] == company
    assert linked["type"] == "Company"
    assert linked["name"] == {"type": "Property", "value": "Acme"}
    assert "entity" not in linked["ownedBy"], "joinLevel defaults to 1"


async def test_join_level_follows_relationships_of_linked_entities(
    api: httpx.AsyncClient,
) -> None:
    """Clause 4.5.23: joinLevel=2 also joins the Relationships of the linked entities."""
    building, _, holding = await _chain(api)
    body = await fetch(api, building, join="inline", joinLevel="2")
    second = body["managedBy"]["entity"]["ownedBy"]["entity"]
    assert second["id"] == holding
    assert second["name"]["value"] == "Holding SpA"


async def test_flat_lists_the_linked_entities_after_the_query_answer(
    api: httpx.AsyncClient,
) -> None:
    """Clause 4.5.23 (flat): the answer lists the matching entities, then each linked
    entity once; Relationships stay as they are."""
    building, company, holding = await _chain(api)
    other = await create(api, entity("Building", height=prop(12), managedBy=rel(company)))
    response = await api.get(
        "/entities", params={"type": "Building", "join": "flat", "joinLevel": "2"}
    )
    assert response.status_code == 200, response.text
    ids = [item["id"] for item in response.json()]
    assert sorted(ids[:2]) == sorted([building, other])
    assert ids[2:] == [company, holding]
    assert all("entity" not in item["managedBy"] for item in response.json()[:2])


async def test_retrieve_with_flat_answers_the_entity_and_its_linked_entities(
    api: httpx.AsyncClient,
) -> None:
    """Clause 4.5.23 (flat) on Retrieve Entity: an array, the entity first."""
    building, company, _ = await _chain(api)
    body: Any = await fetch(api, building, join="flat")
    assert [item["id"] for item in body] == [building, company]


async def test_inline_in_key_values_replaces_the_id_by_the_entity(
    api: httpx.AsyncClient,
) -> None:
    """Clause 4.5.23 with clause 4.5.4: in the simplified representation the linked entity,
    simplified too, stands where the Relationship's object was."""
    building, company, _ = await _chain(api)
    body = await fetch(api, building, join="inline", options="keyValues")
    assert body["managedBy"]["id"] == company
    assert body["managedBy"]["name"] == "Acme"


async def test_a_list_relationship_joins_every_target(api: httpx.AsyncClient) -> None:
    """Clause 4.5.23: a ListRelationship gains `entityList`, its targets in order."""
    first = await create(api, entity("Company", name=prop("A")))
    second = await create(api, entity("Company", name=prop("B")))
    owner = await create(
        api,
        entity("Park", operators={"type": "ListRelationship", "objectList": [first, second]}),
    )
    body = await fetch(api, owner, join="inline")
    names = [item["name"]["value"] for item in body["operators"]["entityList"]]
    assert names == ["A", "B"]


async def test_query_body_takes_join(api: httpx.AsyncClient) -> None:
    """Clause 4.5.23 with clause 5.2.23: POST /entityOperations/query reads join and
    joinLevel from the Query."""
    building, company, _ = await _chain(api)
    query = {
        "type": "Query",
        "entities": [{"id": building, "type": "Building"}],
        "join": "inline",
        "joinLevel": 1,
    }
    response = await api.post("/entityOperations/query", json=query)
    assert response.status_code == 200, response.text
    assert response.json()[0]["managedBy"]["entity"]["id"] == company


async def test_a_missing_target_leaves_the_relationship_as_it_is(
    api: httpx.AsyncClient,
) -> None:
    """Clause 4.5.23: only entities the broker holds are joined."""
    building = await create(api, entity("Building", managedBy=rel(new_id("Company"))))
    body = await fetch(api, building, join="inline")
    assert "entity" not in body["managedBy"]


async def test_linked_entities_come_from_the_callers_tenant_only(
    api: httpx.AsyncClient, broker_url: str
) -> None:
    """Clause 4.14 with 4.5.23: a Relationship naming an id held by another tenant joins
    nothing."""
    company = new_id("Company")
    other_tenant = f"t{secrets.token_hex(6)}"
    async with httpx.AsyncClient(
        base_url=broker_url + "/ngsi-ld/v1", headers={"NGSILD-Tenant": other_tenant}
    ) as other:
        await create(other, entity("Company", company, name=prop("elsewhere")))
    building = await create(api, entity("Building", managedBy=rel(company)))
    body = await fetch(api, building, join="inline")
    assert "entity" not in body["managedBy"]


@pytest.mark.parametrize(
    "params",
    [
        {"join": "deep"},
        {"join": "inline", "joinLevel": "0"},
        {"join": "inline", "joinLevel": "4"},
        {"join": "inline", "joinLevel": "x"},
        {"joinLevel": "2"},
    ],
)
async def test_invalid_join_parameters_are_400(
    api: httpx.AsyncClient, params: dict[str, str]
) -> None:
    """Clause 6.3.x: join is inline, flat or @none; joinLevel a positive integer (here at
    most the broker's CONTESTO_JOIN_MAX_LEVEL, 3 by default) and only with join."""
    building, _, _ = await _chain(api)
    response = await api.get(f"/entities/{building}", params=params)
    assert_problem(response, 400, "BadRequestData")


async def test_pick_projects_the_linked_entity(api: httpx.AsyncClient) -> None:
    """Clause 4.21 with 4.5.23: `pick=managedBy{name}` shows of the linked entity only
    `name`; the entity itself shows what pick names outside the braces."""
    building, company, _ = await _chain(api)
    body = await fetch(api, building, join="inline", pick="id,managedBy{id,name}")
    assert set(body) == {"id", "managedBy"}
    assert body["managedBy"]["object"] == company
    assert body["managedBy"]["entity"] == {
        "id": company,
        "name": {"type": "Property", "value": "Acme"},
    }


async def test_omit_projects_the_linked_entities_of_a_query(api: httpx.AsyncClient) -> None:
    """Clause 4.21 with 4.5.23: `omit=managedBy{ownedBy}` hides ownedBy of each linked
    entity, at any joinLevel."""
    building, company, _ = await _chain(api)
    response = await api.get(
        "/entities",
        params={"id": building, "join": "inline", "joinLevel": "2", "omit": "managedBy{ownedBy}"},
    )
    assert response.status_code == 200, response.text
    [body] = response.json()
    assert body["height"]["value"] == 30
    linked = body["managedBy"]["entity"]
    assert linked["id"] == company and "ownedBy" not in linked and "name" in linked


async def test_unbalanced_linked_projection_is_400(api: httpx.AsyncClient) -> None:
    """Clause 4.21: a projection into linked entities is `name{member,...}`."""
    building, _, _ = await _chain(api)
    response = await api.get(f"/entities/{building}", params={"pick": "managedBy{name"})
    assert_problem(response, 400, "BadRequestData")


async def test_q_through_a_relationship_selects_by_the_linked_entity(
    api: httpx.AsyncClient,
) -> None:
    """Clause 4.9 with 4.5.23: `managedBy{name}=="Acme"` holds for entities whose managedBy
    targets an entity named Acme; it combines with other terms."""
    building, _, _ = await _chain(api)
    other_company = await create(api, entity("Company", name=prop("Other")))
    await create(api, entity("Building", height=prop(30), managedBy=rel(other_company)))
    low = await create(api, entity("Building", height=prop(5), managedBy=rel(other_company)))
    for q, expected in (
        ('managedBy{name}=="Acme"', [building]),
        ('managedBy{name}=="Acme"|height<10', sorted([building, low])),
        ('height>10;managedBy{name}=="Nobody"', []),
    ):
        response = await api.get("/entities", params={"type": "Building", "q": q})
        assert response.status_code == 200, response.text
        assert sorted(item["id"] for item in response.json()) == expected, q


async def test_q_through_two_relationships_in_a_query_body(api: httpx.AsyncClient) -> None:
    """Clause 4.9 with 4.5.23: a linked condition may itself go through a Relationship."""
    building, _, _ = await _chain(api)
    query = {"type": "Query", "entities": [{"type": "Building"}]}
    query["q"] = 'managedBy{ownedBy{name}}=="Holding SpA"'
    response = await api.post("/entityOperations/query", json=query)
    assert response.status_code == 200, response.text
    assert [item["id"] for item in response.json()] == [building]


GEO_JSON = {"Accept": "application/geo+json"}


async def _located_chain(api: httpx.AsyncClient) -> tuple[str, str, str]:
    """The Building -> Company -> Holding chain, each entity with a location."""
    holding = await create(api, entity("Holding", name=prop("Holding SpA"), location=geo(9, 45)))
    company = await create(
        api, entity("Company", name=prop("Acme"), ownedBy=rel(holding), location=geo(11, 44))
    )
    building = await create(
        api, entity("Building", height=prop(30), managedBy=rel(company), location=geo(12, 42))
    )
    return building, company, holding


async def test_geojson_inline_puts_the_linked_feature_in_the_relationship(
    api: httpx.AsyncClient,
) -> None:
    """Clause 4.5.23 with 4.5.16: in a GeoJSON answer the linked entity is a Feature too,
    inside the Relationship among the Feature's properties."""
    building, company, _ = await _located_chain(api)
    response = await api.get(
        "/entities", params={"id": building, "join": "inline"}, headers=GEO_JSON
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/geo+json")
    [feature] = response.json()["features"]
    managed_by = feature["properties"]["managedBy"]
    assert managed_by["object"] == company
    linked = managed_by["entity"]
    assert linked["type"] == "Feature" and linked["id"] == company
    assert linked["geometry"] == {"type": "Point", "coordinates": [11, 44]}
    assert linked["properties"]["name"] == {"type": "Property", "value": "Acme"}


async def test_geojson_flat_adds_the_linked_entities_as_features(
    api: httpx.AsyncClient,
) -> None:
    """Clause 4.5.23 with 4.5.16: join=flat adds each linked entity once as one more
    Feature of the FeatureCollection, after the entities the query selects."""
    building, company, holding = await _located_chain(api)
    response = await api.get(
        "/entities",
        params={"id": building, "join": "flat", "joinLevel": "2"},
        headers=GEO_JSON,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "FeatureCollection"
    assert [f["id"] for f in body["features"]] == [building, company, holding]
    assert all(f["type"] == "Feature" for f in body["features"])
    assert body["features"][2]["geometry"]["coordinates"] == [9, 45]
    assert "entity" not in body["features"][0]["properties"]["managedBy"]


async def test_geojson_retrieve_with_flat_is_a_feature_collection(
    api: httpx.AsyncClient,
) -> None:
    """Clause 4.5.23 with 4.5.16 on Retrieve Entity: the entity and its linked entities,
    as the Features of one FeatureCollection."""
    building, company, _ = await _located_chain(api)
    response = await api.get(f"/entities/{building}", params={"join": "flat"}, headers=GEO_JSON)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "FeatureCollection"
    assert [f["id"] for f in body["features"]] == [building, company]


async def test_flat_applies_pick_to_the_linked_entities(api: httpx.AsyncClient) -> None:
    """Clause 4.21 with 4.5.23: with join=flat, `pick=id,managedBy{id,name,ownedBy{id}}`
    shapes the listed linked entities level by level."""
    building, company, holding = await _chain(api)
    response = await api.get(
        "/entities",
        params={
            "id": building,
            "join": "flat",
            "joinLevel": "2",
            "pick": "id,managedBy{id,name,ownedBy{id}}",
        },
    )
    assert response.status_code == 200, response.text
    entities = {item["id"]: item for item in response.json()}
    assert set(entities[building]) == {"id", "managedBy"}
    assert set(entities[company]) == {"id", "name", "ownedBy"}
    assert entities[holding] == {"id": holding}


async def test_flat_applies_omit_to_the_linked_entities(api: httpx.AsyncClient) -> None:
    """Clause 4.21 with 4.5.23: `omit=managedBy{ownedBy}` hides ownedBy of the linked
    entity listed by join=flat on Retrieve Entity, and nothing of the entity itself."""
    building, company, _ = await _chain(api)
    body: Any = await fetch(api, building, join="flat", omit="managedBy{ownedBy}")
    assert body[0]["id"] == building and "height" in body[0] and "managedBy" in body[0]
    assert body[1]["id"] == company and "ownedBy" not in body[1] and "name" in body[1]


async def test_a_loop_of_relationships_joins_each_entity_once(api: httpx.AsyncClient) -> None:
    """Clause 4.5.23: an entity already in the answer is not joined again, so a loop of
    Relationships (A -> B -> A) ends whatever joinLevel asks."""
    first, second = new_id("Room"), new_id("Room")
    await create(api, entity("Room", first, next=rel(second)))
    await create(api, entity("Room", second, next=rel(first)))
    body = await fetch(api, first, join="inline", joinLevel="3")
    linked = body["next"]["entity"]
    assert linked["id"] == second
    assert linked["next"] == {"type": "Relationship", "object": first}
    flat: Any = await fetch(api, first, join="flat", joinLevel="3")
    assert [item["id"] for item in flat] == [first, second]


async def test_contained_by_names_entities_not_joined_again(api: httpx.AsyncClient) -> None:
    """Clause 4.5.23 (V1.8 containedBy): the entities already traversed are neither
    joined nor followed, inline or flat."""
    building, company, _ = await _chain(api)
    inline = await fetch(api, building, join="inline", joinLevel="2", containedBy=company)
    assert inline["managedBy"] == {"type": "Relationship", "object": company}
    response = await api.get(
        "/entities",
        params={"id": building, "join": "flat", "joinLevel": "2", "containedBy": company},
    )
    assert response.status_code == 200, response.text
    assert [item["id"] for item in response.json()] == [building]


async def test_contained_by_that_is_not_a_list_of_uris_is_400(api: httpx.AsyncClient) -> None:
    """Clause 4.5.23: containedBy lists entity ids (URIs)."""
    building, _, _ = await _chain(api)
    response = await api.get(
        f"/entities/{building}", params={"join": "inline", "containedBy": "not an id"}
    )
    assert_problem(response, 400, "BadRequestData")
