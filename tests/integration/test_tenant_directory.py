"""The tenant directory against the real store: one answer for every process, and every
process forgets a deleted or suspended tenant within the cache time.

Each directory here has its own client, as the broker, the ingest process and the CLI do.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from context_broker import BrokerSettings
from regional_tenants import (
    AccessRefused,
    KeyGate,
    MongoTenantDirectory,
    Tenant,
    TenantEntry,
    TenantRegistry,
    issue_key,
    onboard,
    platform_database,
)

pytestmark = pytest.mark.integration

TTL_S = 0.2


@pytest.fixture
async def clients(store_url: str) -> AsyncIterator[list[AsyncMongoClient[dict[str, Any]]]]:
    """Two clients: two processes."""
    opened: list[AsyncMongoClient[dict[str, Any]]] = [
        AsyncMongoClient(store_url, tz_aware=True) for _ in range(2)
    ]
    yield opened
    for client in opened:
        await client.close()


@pytest.fixture
def prefix() -> str:
    return f"d{secrets.token_hex(4)}"


async def test_a_tenant_deleted_in_one_process_is_forgotten_by_another_within_the_ttl(
    clients: list[AsyncMongoClient[dict[str, Any]]], prefix: str
) -> None:
    writer = MongoTenantDirectory(clients[0], prefix, auto_create=True, cache_ttl_s=TTL_S)
    reader = MongoTenantDirectory(clients[1], prefix, cache_ttl_s=TTL_S)
    forgotten: list[str] = []
    reader.on_forget(forgotten.append)

    assert not await reader.create_if_allowed("prato")
    assert await writer.create_if_allowed("prato")
    assert await reader.exists("prato")
    await clients[0][f"{prefix}_prato"]["entities"].insert_one({"_id": "urn:x"})

    assert await writer.delete("prato")
    assert not await writer.exists("prato")
    await asyncio.sleep(TTL_S * 1.5)
    assert not await reader.exists("prato")
    assert forgotten == ["prato"]
    assert "prato" not in await clients[1].list_database_names()
    assert not await writer.delete("prato")


async def test_suspension_reaches_every_process_and_only_onboarded_tenants_are_suspended(
    clients: list[AsyncMongoClient[dict[str, Any]]], prefix: str
) -> None:
    registry = TenantRegistry(clients[0][platform_database(prefix)], cache_ttl_s=TTL_S)
    await onboard(registry, Tenant("publiacqua", "utility", "Publiacqua", _now()), actor="test")
    auto = MongoTenantDirectory(clients[0], prefix, auto_create=True, cache_ttl_s=TTL_S)
    await auto.create_if_allowed("t_auto")
    other = MongoTenantDirectory(clients[1], prefix, cache_ttl_s=TTL_S)
    assert await other.status("publiacqua") == "active"

    assert await registry.directory.suspend("publiacqua")
    assert not await registry.directory.suspend("t_auto")
    assert not await registry.directory.suspend("nobody")
    await asyncio.sleep(TTL_S * 1.5)
    assert await other.status("publiacqua") == "suspended"
    assert await other.status("t_auto") == "active"
    assert await other.status("nobody") is None
    assert await other.entries() == [
        TenantEntry("publiacqua", "onboarded", "suspended"),
        TenantEntry("t_auto", "auto", "active"),
    ]

    assert await registry.directory.resume("publiacqua")
    await asyncio.sleep(TTL_S * 1.5)
    assert await other.status("publiacqua") == "active"


async def test_keys_of_a_tenant_deleted_elsewhere_are_refused(
    clients: list[AsyncMongoClient[dict[str, Any]]], prefix: str
) -> None:
    admin = TenantRegistry(clients[0][platform_database(prefix)], cache_ttl_s=TTL_S)
    await onboard(admin, Tenant("gaia", "utility", "GAIA", _now()), actor="test")
    key = await issue_key(admin, "gaia", "writer", actor="test")
    gate = KeyGate(TenantRegistry(clients[1][platform_database(prefix)], cache_ttl_s=TTL_S))
    assert (await gate.admit(f"Bearer {key}", "gaia", "writer")).tenant == "gaia"

    assert await admin.remove_tenant("gaia")
    await asyncio.sleep(TTL_S * 1.5)
    with pytest.raises(AccessRefused) as refused:
        await gate.admit(f"Bearer {key}", "gaia", "writer")
    assert refused.value.status == 401


async def test_the_broker_answers_for_a_tenant_deleted_by_another_process_as_for_an_unknown(
    broker_url: str, broker_settings: BrokerSettings, store_url: str
) -> None:
    tenant = f"t{secrets.token_hex(6)}"
    entity = {"id": "urn:ngsi-ld:Thing:1", "type": "Thing", "n": {"type": "Property", "value": 1}}
    async with httpx.AsyncClient(
        base_url=broker_url + "/ngsi-ld/v1", headers={"NGSILD-Tenant": tenant}, timeout=30.0
    ) as api:
        assert (await api.post("/entities", json=entity)).status_code == 201
        assert len((await api.get("/entities", params={"type": "Thing"})).json()) == 1

        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(store_url, tz_aware=True)
        try:
            directory = MongoTenantDirectory(client, broker_settings.database_prefix)
            assert await directory.delete(tenant)
        finally:
            await client.close()

        # The broker's own cache time (5 s), and a margin for a busy machine.
        deadline = time.monotonic() + 8.0
        while True:
            answer = await api.get("/entities", params={"type": "Thing"})
            if answer.status_code != 200 or time.monotonic() > deadline:
                break
            assert answer.json() == [], "the broker served a deleted tenant's entities"
            await asyncio.sleep(0.25)
        assert answer.status_code == 404, answer.text
        assert answer.json()["type"].endswith("/NonexistentTenant")

        # Auto-create makes it anew, empty, on the next write.
        again = {**entity, "id": "urn:ngsi-ld:Thing:2"}
        assert (await api.post("/entities", json=again)).status_code == 201
        found = (await api.get("/entities", params={"type": "Thing"})).json()
        assert [e["id"] for e in found] == ["urn:ngsi-ld:Thing:2"]


def _now() -> datetime:
    return datetime.now(UTC)
