"""Tenants (clause 4.14, 6.3.14): the NGSILD-Tenant header isolates data; reads of an unknown
tenant are NonexistentTenant; writes create the tenant."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import httpx
import pytest

from ._helpers import assert_problem, create, entity, fetch, prop

pytestmark = pytest.mark.integration


@pytest.fixture
async def other(broker_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client on another, fresh tenant."""
    async with httpx.AsyncClient(
        base_url=broker_url + "/ngsi-ld/v1",
        headers={"NGSILD-Tenant": f"o{secrets.token_hex(6)}"},
        timeout=30.0,
    ) as http:
        yield http


async def test_an_entity_is_invisible_from_other_tenants(
    api: httpx.AsyncClient, other: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    payload = entity("Isolated", secret=prop(1))
    await create(api, payload)
    await create(other, entity("Elsewhere", visible=prop(1)))
    await create(client, entity("Elsewhere", visible=prop(1)))
    for reader in (other, client):
        assert_problem(await reader.get(f"/entities/{payload['id']}"), 404, "ResourceNotFound")
        query = await reader.get("/entities", params={"type": "Isolated"})
        assert query.status_code == 200, query.text
        assert query.json() == []
        types = await reader.get("/types")
        assert "Isolated" not in types.json()["typeList"]
        attributes = await reader.get("/attributes")
        assert "secret" not in attributes.json()["attributeList"]
        assert_problem(await reader.get("/types/Isolated"), 404, "ResourceNotFound")
        deleted = await reader.post("/entityOperations/delete", json=[payload["id"]])
        assert deleted.status_code == 207
        assert deleted.json()["errors"][0]["entityId"] == payload["id"]
    assert (await fetch(api, payload["id"]))["secret"] == prop(1)


async def test_one_id_may_exist_in_two_tenants(
    api: httpx.AsyncClient, other: httpx.AsyncClient
) -> None:
    payload = entity(a=prop(1))
    await create(api, payload)
    await create(other, {**payload, "a": prop(2)})
    assert (await fetch(other, payload["id"]))["a"] == prop(2)
    assert (await fetch(api, payload["id"]))["a"] == prop(1)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/entities/urn:ngsi-ld:Sensor:1"),
        ("GET", "/entities?type=Sensor"),
        ("GET", "/types"),
        ("GET", "/attributes"),
        ("DELETE", "/entities/urn:ngsi-ld:Sensor:1"),
    ],
)
async def test_reads_of_an_unknown_tenant_are_404_nonexistent_tenant(
    api: httpx.AsyncClient, method: str, path: str
) -> None:
    """Clause 5.5.10: a tenant that does not exist gives NonexistentTenant."""
    response = await api.request(method, path)
    assert_problem(response, 404, "NonexistentTenant")


async def test_a_write_creates_the_tenant(api: httpx.AsyncClient) -> None:
    assert_problem(await api.get("/types"), 404, "NonexistentTenant")
    await create(api, entity("Bin"))
    response = await api.get("/types")
    assert response.status_code == 200
    assert response.json()["typeList"] == ["Bin"]


async def test_answers_in_a_tenant_name_it(api: httpx.AsyncClient, tenant: str) -> None:
    response = await api.post("/entities", json=entity())
    assert response.headers["ngsild-tenant"] == tenant


async def test_tenant_names_are_case_insensitive(broker_url: str, tenant: str) -> None:
    payload = entity(a=prop(1))
    async with httpx.AsyncClient(base_url=broker_url + "/ngsi-ld/v1") as http:
        created = await http.post(
            "/entities", json=payload, headers={"NGSILD-Tenant": tenant.upper()}
        )
        assert created.status_code == 201
        response = await http.get(f"/entities/{payload['id']}", headers={"NGSILD-Tenant": tenant})
        assert response.status_code == 200


@pytest.mark.parametrize("name", ["bad tenant", "../etc", "a" * 60, "$admin", "x.y"])
async def test_an_invalid_tenant_name_is_400(client: httpx.AsyncClient, name: str) -> None:
    response = await client.post("/entities", json=entity(), headers={"NGSILD-Tenant": name})
    assert_problem(response, 400, "BadRequestData")
    response = await client.get("/types", headers={"NGSILD-Tenant": name})
    assert_problem(response, 400, "BadRequestData")
    assert response.json()["detail"].startswith("NGSILD-Tenant must be 1-48 letters, digits")
