"""The provisioning API in the regional profile takes the NGSI-LD API's keys and roles.

Each test is an attack from the issue: anonymous listing, provisioning into another,
an unknown or a suspended tenant, deleting another tenant's group and taking over its
API key. The app is the one `contesto ingest` serves, on a real port over the real store.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from _servers import ThreadedServer
from fastapi import FastAPI
from pymongo import AsyncMongoClient

from contesto._ingest import provisioning_app
from regional_tenants import (
    REGION_TENANT,
    TenantRegistry,
    find_comune,
    issue_key,
    onboard,
    tenant_for_comune,
)
from regional_tenants._tenants import Tenant
from sensor_ingest import DeviceRegistry, ProvisioningAccess

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Region:
    url: str
    platform: str
    keys: dict[str, str]


def _app(store_url: str, prefix: str, *, keys_required: bool, auto_create: bool) -> FastAPI:
    """`contesto ingest`'s provisioning app; the client closes with the app."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(store_url, tz_aware=True)
    access = ProvisioningAccess(
        TenantRegistry(client[f"{prefix}__platform"]), keys_required, auto_create
    )
    inner = provisioning_app(DeviceRegistry(client[f"{prefix}_ingest"]), access)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await client.close()

    app = FastAPI(lifespan=lifespan)
    app.mount("/", inner)
    return app


async def _onboarded(store_url: str, prefix: str) -> dict[str, str]:
    """Prato, Livorno and Pistoia (suspended) onboarded, with keys of every role needed."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(store_url, tz_aware=True)
    try:
        await DeviceRegistry(client[f"{prefix}_ingest"]).ensure_indexes()
        registry = TenantRegistry(client[f"{prefix}__platform"], cache_ttl_s=0)
        region = Tenant(REGION_TENANT, "region", "Regione Toscana", datetime.now(UTC))
        await onboard(registry, region, actor="test")
        keys = {"region": await issue_key(registry, REGION_TENANT, "region-admin", actor="test")}
        for slug in ("prato", "livorno", "pistoia"):
            await onboard(registry, tenant_for_comune(find_comune(slug)), actor="test")
            for role in ("reader", "writer"):
                keys[f"{slug}-{role}"] = await issue_key(registry, slug, role, actor="test")
        await registry.directory.suspend("pistoia")
        return keys
    finally:
        await client.close()


@pytest.fixture(scope="module")
async def region(store_url: str) -> AsyncIterator[Region]:
    prefix = f"p{secrets.token_hex(4)}"
    keys = await _onboarded(store_url, prefix)
    with ThreadedServer(_app(store_url, prefix, keys_required=True, auto_create=False)) as server:
        yield Region(server.url, f"{prefix}__platform", keys)


@pytest.fixture(scope="module")
def dev_url(store_url: str) -> Iterator[str]:
    app = _app(store_url, f"d{secrets.token_hex(4)}", keys_required=False, auto_create=True)
    with ThreadedServer(app) as server:
        yield server.url


def _headers(tenant: str, key: str | None = None) -> dict[str, str]:
    headers = {"fiware-service": tenant, "fiware-servicepath": "/"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def _group(apikey: str, format_: str = "iotagent-json") -> dict[str, Any]:
    return {"services": [{"apikey": apikey, "entity_type": "Thing", "format": format_}]}


async def test_anonymous_requests_are_refused(region: Region) -> None:
    async with httpx.AsyncClient(base_url=region.url, timeout=10) as http:
        listed = await http.get("/iot/devices", headers=_headers("prato"))
        created = await http.post("/iot/services", json=_group("anon"), headers=_headers("prato"))
    assert listed.status_code == 401, listed.text
    assert listed.json()["name"] == "UNAUTHORIZED"
    assert listed.headers["WWW-Authenticate"] == "Bearer"
    assert created.status_code == 401, created.text


async def test_a_key_acts_only_in_its_tenant_and_role(region: Region) -> None:
    keys = region.keys
    async with httpx.AsyncClient(base_url=region.url, timeout=10) as http:
        other = await http.post(
            "/iot/services", json=_group("cross"), headers=_headers("prato", keys["livorno-writer"])
        )
        reader_writes = await http.post(
            "/iot/services", json=_group("ro"), headers=_headers("prato", keys["prato-reader"])
        )
        reader_reads = await http.get(
            "/iot/services", headers=_headers("prato", keys["prato-reader"])
        )
    assert other.status_code == 403, other.text
    assert other.json()["name"] == "ACCESS_FORBIDDEN"
    assert "no access to tenant 'prato'" in other.json()["message"]
    assert reader_writes.status_code == 403, reader_writes.text
    assert "writer" in reader_writes.json()["message"]
    assert reader_reads.status_code == 200, reader_reads.text


async def test_unknown_and_suspended_tenants_are_refused(region: Region) -> None:
    keys = region.keys
    async with httpx.AsyncClient(base_url=region.url, timeout=10) as http:
        unknown = await http.post(
            "/iot/services", json=_group("ghost"), headers=_headers("atlantide", keys["region"])
        )
        suspended = await http.post(
            "/iot/services",
            json=_group("sleepy"),
            headers=_headers("pistoia", keys["pistoia-writer"]),
        )
        suspended_read = await http.get(
            "/iot/devices", headers=_headers("pistoia", keys["pistoia-reader"])
        )
    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["name"] == "TENANT_NOT_FOUND"
    assert suspended.status_code == 403, suspended.text
    assert "suspended" in suspended.json()["message"]
    assert suspended_read.status_code == 403, suspended_read.text


async def test_another_tenant_can_neither_delete_nor_take_over_a_group(
    region: Region, store_url: str
) -> None:
    keys = region.keys
    apikey = f"prato-{secrets.token_hex(4)}"
    prato, livorno = keys["prato-writer"], keys["livorno-writer"]
    async with httpx.AsyncClient(base_url=region.url, timeout=10) as http:
        created = await http.post(
            "/iot/services", json=_group(apikey), headers=_headers("prato", prato)
        )
        assert created.status_code == 201, created.text
        delete_there = await http.delete(
            f"/iot/services?apikey={apikey}", headers=_headers("prato", livorno)
        )
        delete_here = await http.delete(
            f"/iot/services?apikey={apikey}", headers=_headers("livorno", livorno)
        )
        take_over = await http.post(
            "/iot/services", json=_group(apikey), headers=_headers("livorno", livorno)
        )
        other_format = await http.post(
            "/iot/services", json=_group(apikey, "flat-json"), headers=_headers("livorno", livorno)
        )
        still = await http.get(f"/iot/services?apikey={apikey}", headers=_headers("prato", prato))
    assert delete_there.status_code == 403, delete_there.text
    assert delete_here.status_code == 404, delete_here.text
    assert take_over.status_code == 409, take_over.text
    assert other_format.status_code == 409, other_format.text
    assert still.json()["count"] == 1

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(store_url, tz_aware=True)
    try:
        log = await TenantRegistry(client[region.platform]).audit_log("prato")
    finally:
        await client.close()
    created_entries = [e for e in log if e.action == "iot.group.created"]
    assert created_entries and created_entries[0].detail["apikey"] == apikey
    assert created_entries[0].actor.startswith("key:")


async def test_the_development_profile_stays_open(dev_url: str) -> None:
    async with httpx.AsyncClient(base_url=dev_url, timeout=10) as http:
        created = await http.post("/iot/services", json=_group("dev"), headers=_headers("anywhere"))
        listed = await http.get("/iot/services", headers=_headers("anywhere"))
    assert created.status_code == 201, created.text
    assert listed.json()["count"] == 1
