"""Discovery (clause 5.7.5-5.7.8 over clause 6.25-6.28): /types and /attributes."""

from __future__ import annotations

import httpx
import pytest

from ._helpers import assert_problem, create, entity, geo, prop, rel

pytestmark = pytest.mark.integration


@pytest.fixture
async def city(api: httpx.AsyncClient) -> httpx.AsyncClient:
    """A tenant with two Bins and one Sensor."""
    await create(api, entity("Bin", fillingLevel=prop(0.5), location=geo(11, 43)))
    await create(api, entity("Bin", fillingLevel=prop(0.1), owner=rel("urn:ngsi-ld:Org:1")))
    await create(api, entity("Sensor", fillingLevel=rel("urn:ngsi-ld:Bin:1"), t=prop(20)))
    return api


async def test_types_lists_the_entity_types(city: httpx.AsyncClient) -> None:
    """Clause 5.2.24: an EntityTypeList."""
    response = await city.get("/types")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "EntityTypeList"
    assert body["id"].startswith("urn:")
    assert body["typeList"] == ["Bin", "Sensor"]


async def test_types_with_details_lists_entity_type_objects(city: httpx.AsyncClient) -> None:
    """Clause 5.2.25: EntityType objects with the attribute names of each type."""
    response = await city.get("/types", params={"details": "true"})
    assert response.status_code == 200, response.text
    by_name = {item["typeName"]: item for item in response.json()}
    assert set(by_name) == {"Bin", "Sensor"}
    assert by_name["Bin"]["type"] == "EntityType"
    assert by_name["Bin"]["id"] == "https://uri.etsi.org/ngsi-ld/default-context/Bin"
    assert by_name["Bin"]["attributeNames"] == ["fillingLevel", "location", "owner"]
    assert by_name["Sensor"]["attributeNames"] == ["fillingLevel", "t"]


async def test_type_information(city: httpx.AsyncClient) -> None:
    """Clause 5.2.26: EntityTypeInfo with entity count and attribute details."""
    response = await city.get("/types/Bin")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "EntityTypeInfo"
    assert body["typeName"] == "Bin"
    assert body["entityCount"] == 2
    details = {item["attributeName"]: item for item in body["attributeDetails"]}
    assert details["fillingLevel"]["attributeTypes"] == ["Property"]
    assert details["location"]["attributeTypes"] == ["GeoProperty"]
    assert details["owner"]["attributeTypes"] == ["Relationship"]
    assert all(item["type"] == "Attribute" for item in details.values())


async def test_type_information_of_an_unknown_type_is_404(city: httpx.AsyncClient) -> None:
    assert_problem(await city.get("/types/Lamp"), 404, "ResourceNotFound")


async def test_attributes_lists_the_attribute_names(city: httpx.AsyncClient) -> None:
    """Clause 5.2.27: an AttributeList."""
    response = await city.get("/attributes")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "AttributeList"
    assert body["attributeList"] == ["fillingLevel", "location", "owner", "t"]


async def test_attributes_with_details(city: httpx.AsyncClient) -> None:
    response = await city.get("/attributes", params={"details": "true"})
    by_name = {item["attributeName"]: item for item in response.json()}
    assert by_name["fillingLevel"]["typeNames"] == ["Bin", "Sensor"]
    assert by_name["t"]["typeNames"] == ["Sensor"]
    assert all(item["type"] == "Attribute" for item in by_name.values())


async def test_attribute_information(city: httpx.AsyncClient) -> None:
    """Clause 5.2.28: an Attribute with count, kinds in use and types that use it."""
    response = await city.get("/attributes/fillingLevel")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "Attribute"
    assert body["attributeName"] == "fillingLevel"
    assert body["attributeCount"] == 3
    assert body["attributeTypes"] == ["Property", "Relationship"]
    assert body["typeNames"] == ["Bin", "Sensor"]


async def test_attribute_information_of_an_unknown_attribute_is_404(
    city: httpx.AsyncClient,
) -> None:
    assert_problem(await city.get("/attributes/colour"), 404, "ResourceNotFound")


async def test_discovery_follows_deletes(city: httpx.AsyncClient) -> None:
    ids = (await city.get("/entities", params={"type": "Sensor"})).json()
    assert len(ids) == 1
    assert (await city.delete(f"/entities/{ids[0]['id']}")).status_code == 204
    assert (await city.get("/types")).json()["typeList"] == ["Bin"]
    assert "t" not in (await city.get("/attributes")).json()["attributeList"]


async def test_discovery_in_json_ld_carries_the_context(city: httpx.AsyncClient) -> None:
    response = await city.get("/types", headers={"Accept": "application/ld+json"})
    assert response.status_code == 200
    assert "@context" in response.json()


async def test_an_empty_tenant_has_empty_lists(api: httpx.AsyncClient) -> None:
    entity_id = await create(api, entity())
    assert (await api.delete(f"/entities/{entity_id}")).status_code == 204
    assert (await api.get("/types")).json()["typeList"] == []
    assert (await api.get("/attributes")).json()["attributeList"] == []
