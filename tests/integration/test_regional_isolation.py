"""The regional profile over real HTTP: onboarding, API keys and roles, and the isolation probe.

A key of one comune must get 401/403 on everything of another, on every endpoint.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from _servers import ThreadedServer

from context_broker import BrokerSettings, create_app
from regional_tenants import REGION_TENANT, TenantRegistry, issue_key, onboard
from regional_tenants._tenants import Tenant
from store_edge import connect

pytestmark = pytest.mark.integration

ENTITY = "urn:ngsi-ld:AirQualityObserved:probe-1"


@dataclass(frozen=True)
class Region:
    url: str
    region_key: str


@pytest.fixture(scope="module")
def regional_settings(store_url: str) -> BrokerSettings:
    return BrokerSettings(
        mongo_url=store_url,
        database_prefix=f"r{secrets.token_hex(4)}",
        auth_required=True,
        auto_create_tenants=False,
    )


@pytest.fixture(scope="module")
def regional_url(regional_settings: BrokerSettings) -> Iterator[str]:
    with ThreadedServer(create_app(regional_settings)) as server:
        yield server.url


@pytest.fixture(scope="module")
async def region(regional_settings: BrokerSettings, regional_url: str) -> AsyncIterator[Region]:
    """The regional tenant and a region-admin key, as `contesto tenants bootstrap` makes them."""
    client = connect(regional_settings.mongo_url)
    try:
        registry = TenantRegistry(client[f"{regional_settings.database_prefix}__platform"])
        await onboard(
            registry,
            Tenant(REGION_TENANT, "region", "Regione Toscana", datetime.now(UTC)),
            actor="test",
        )
        key = await issue_key(registry, REGION_TENANT, "region-admin", actor="test")
    finally:
        await client.close()
    yield Region(regional_url, key)


def _auth(key: str, tenant: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key}"}
    if tenant:
        headers["NGSILD-Tenant"] = tenant
    return headers


async def _onboard(http: httpx.AsyncClient, region: Region, comune: str) -> httpx.Response:
    return await http.post(
        "/admin/tenants", json={"comune": comune}, headers=_auth(region.region_key)
    )


@pytest.fixture(scope="module")
async def comuni(region: Region) -> dict[str, str]:
    """Admin keys of Prato and Livorno, onboarded through the admin API."""
    async with httpx.AsyncClient(base_url=region.url, timeout=30) as http:
        keys = {}
        for comune, slug in (("Prato", "prato"), ("049009", "livorno")):
            answer = await _onboard(http, region, comune)
            assert answer.status_code == 201, answer.text
            assert answer.json()["tenant"]["slug"] == slug
            keys[slug] = answer.json()["adminKey"]
        created = await http.post(
            "/ngsi-ld/v1/entities",
            json={
                "id": ENTITY,
                "type": "AirQualityObserved",
                "no2": {"type": "Property", "value": 12},
            },
            headers=_auth(keys["livorno"], "livorno"),
        )
        assert created.status_code == 201, created.text
    return keys


# Every NGSI-LD endpoint, as (method, path, JSON body).
ENDPOINTS = [
    ("GET", "/ngsi-ld/v1/entities?type=AirQualityObserved", None),
    ("GET", f"/ngsi-ld/v1/entities/{ENTITY}", None),
    ("POST", "/ngsi-ld/v1/entities", {"id": "urn:ngsi-ld:X:leak", "type": "X"}),
    ("PATCH", f"/ngsi-ld/v1/entities/{ENTITY}", {"no2": {"type": "Property", "value": 1}}),
    ("PUT", f"/ngsi-ld/v1/entities/{ENTITY}", {"type": "AirQualityObserved"}),
    ("DELETE", f"/ngsi-ld/v1/entities/{ENTITY}", None),
    ("POST", f"/ngsi-ld/v1/entities/{ENTITY}/attrs", {"o3": {"type": "Property", "value": 1}}),
    ("PATCH", f"/ngsi-ld/v1/entities/{ENTITY}/attrs", {"no2": {"type": "Property", "value": 1}}),
    ("PATCH", f"/ngsi-ld/v1/entities/{ENTITY}/attrs/no2", {"value": 3}),
    ("PUT", f"/ngsi-ld/v1/entities/{ENTITY}/attrs/no2", {"type": "Property", "value": 3}),
    ("DELETE", f"/ngsi-ld/v1/entities/{ENTITY}/attrs/no2", None),
    ("POST", "/ngsi-ld/v1/entityOperations/create", [{"id": "urn:ngsi-ld:X:b", "type": "X"}]),
    ("POST", "/ngsi-ld/v1/entityOperations/upsert", [{"id": ENTITY, "type": "X"}]),
    ("POST", "/ngsi-ld/v1/entityOperations/update", [{"id": ENTITY, "type": "X"}]),
    ("POST", "/ngsi-ld/v1/entityOperations/merge", [{"id": ENTITY, "type": "X"}]),
    ("POST", "/ngsi-ld/v1/entityOperations/delete", [ENTITY]),
    ("POST", "/ngsi-ld/v1/entityOperations/query", {"type": "Query", "entities": [{"type": "X"}]}),
    ("GET", "/ngsi-ld/v1/types", None),
    ("GET", "/ngsi-ld/v1/attributes", None),
    ("GET", "/ngsi-ld/v1/jsonldContexts", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
async def test_a_key_of_prato_gets_403_on_every_endpoint_of_livorno(
    region: Region, comuni: dict[str, str], method: str, path: str, body: object
) -> None:
    async with httpx.AsyncClient(base_url=region.url, timeout=30) as http:
        answer = await http.request(
            method, path, json=body, headers=_auth(comuni["prato"], "livorno")
        )
        anonymous = await http.request(
            method, path, json=body, headers={"NGSILD-Tenant": "livorno"}
        )
    assert answer.status_code == 403, answer.text
    assert answer.json()["status"] == 403
    assert "prato" in answer.json()["detail"]
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"


async def test_livorno_data_is_unchanged_after_the_probe(
    region: Region, comuni: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=region.url, timeout=30) as http:
        answer = await http.get(
            f"/ngsi-ld/v1/entities/{ENTITY}",
            params={"options": "keyValues"},
            headers=_auth(comuni["livorno"], "livorno"),
        )
        own = await http.get(
            "/ngsi-ld/v1/entities",
            params={"type": "AirQualityObserved"},
            headers=_auth(comuni["prato"], "prato"),
        )
    assert answer.json() == {"id": ENTITY, "type": "AirQualityObserved", "no2": 12}
    assert own.status_code == 200
    assert own.json() == []


async def test_admin_routes_of_another_tenant_are_refused(
    region: Region, comuni: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=region.url, timeout=30) as http:
        for method, path in (
            ("GET", "/admin/tenants/livorno"),
            ("GET", "/admin/tenants/livorno/audit"),
            ("POST", "/admin/tenants/livorno/keys"),
            ("POST", "/admin/tenants/livorno/suspend"),
            ("GET", "/admin/tenants"),
        ):
            answer = await http.request(method, path, json={}, headers=_auth(comuni["prato"]))
            assert answer.status_code == 403, (method, path, answer.text)
        own = await http.get("/admin/tenants/prato", headers=_auth(comuni["prato"]))
    assert own.status_code == 200
    assert own.json()["istat_code"] == "100005"
    assert own.json()["kind"] == "comune"


async def test_wrong_or_malformed_keys_get_401(region: Region, comuni: dict[str, str]) -> None:
    forged = comuni["prato"][:-4] + "AAAA"
    async with httpx.AsyncClient(base_url=region.url, timeout=30) as http:
        for header in (f"Bearer {forged}", "Bearer nonsense", "Basic abc", comuni["prato"]):
            answer = await http.get(
                "/ngsi-ld/v1/types",
                headers={"Authorization": header, "NGSILD-Tenant": "prato"},
            )
            assert answer.status_code == 401, header
            assert answer.json()["type"] == "about:blank"


async def test_a_reader_key_reads_but_does_not_write(
    region: Region, comuni: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=region.url, timeout=30) as http:
        issued = await http.post(
            "/admin/tenants/prato/keys", json={"role": "reader"}, headers=_auth(comuni["prato"])
        )
        reader = issued.json()["key"]
        read = await http.get("/ngsi-ld/v1/types", headers=_auth(reader, "prato"))
        write = await http.post(
            "/ngsi-ld/v1/entities",
            json={"id": "urn:ngsi-ld:X:r", "type": "X"},
            headers=_auth(reader, "prato"),
        )
        audit = await http.get("/admin/tenants/prato/audit", headers=_auth(comuni["prato"]))
    assert read.status_code == 200
    assert write.status_code == 403
    assert "reader" in write.json()["detail"]
    actions = [entry["action"] for entry in audit.json()]
    assert actions[0] == "key.issued"
    assert "tenant.onboarded" in actions


async def test_onboarding_is_idempotent_and_names_unknown_comuni(region: Region) -> None:
    async with httpx.AsyncClient(base_url=region.url, timeout=30) as http:
        first = await _onboard(http, region, "Pisa")
        again = await _onboard(http, region, "pisa")
        unknown = await _onboard(http, region, "Bologna")
    assert first.status_code == 201
    assert "adminKey" in first.json()
    assert again.status_code == 200
    assert "adminKey" not in again.json()
    assert unknown.status_code == 400
    assert "Bologna" in unknown.json()["detail"]


async def test_a_suspended_tenant_is_refused_and_the_region_reads_everywhere(
    region: Region, comuni: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=region.url, timeout=30) as http:
        onboarded = await _onboard(http, region, "Siena")
        siena = onboarded.json()["adminKey"]
        suspended = await http.post(
            "/admin/tenants/siena/suspend", headers=_auth(region.region_key)
        )
        refused = await http.get("/ngsi-ld/v1/types", headers=_auth(siena, "siena"))
        regional = await http.get(
            f"/ngsi-ld/v1/entities/{ENTITY}", headers=_auth(region.region_key, "livorno")
        )
    assert suspended.status_code == 204
    assert refused.status_code == 403
    assert "suspended" in refused.json()["detail"]
    assert regional.status_code == 200
