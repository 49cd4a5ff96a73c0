"""The bridge publishes what ingest appends without polling for it, and what it finds in
the outbox between two lingering passes still arrives whole."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from broker_bridge import Outbox, Publisher, RejectedFragment, TargetDirectory, TenantClients
from ngsild_client import HttpAdapter

pytestmark = pytest.mark.integration

NGSI_LD = "/ngsi-ld/v1"
NEVER_S = 3600.0


def _fragment(tenant_suffix: str, n: int) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Sensor:{tenant_suffix}-{n}",
        "type": "Sensor",
        "sequence": {"type": "Property", "value": n},
    }


@pytest.fixture
async def outbox(store_url: str) -> AsyncIterator[Outbox]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(store_url)
    try:
        yield Outbox(client[f"wakeup_{secrets.token_hex(4)}"])
    finally:
        await client.close()


async def _entity(http: httpx.AsyncClient, tenant: str, entity_id: str) -> dict[str, Any]:
    for _ in range(200):
        response = await http.get(f"/entities/{entity_id}", headers={"NGSILD-Tenant": tenant})
        if response.status_code == 200:
            body: dict[str, Any] = response.json()
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"{entity_id} did not arrive")


@pytest.mark.parametrize("linger_s", [0.0, 0.2])
async def test_an_idle_publisher_delivers_each_append_without_polling(
    outbox: Outbox, broker_url: str, linger_s: float
) -> None:
    tenant = f"wake{secrets.token_hex(4)}"
    rejected: list[RejectedFragment] = []

    async def keep(fragments: list[RejectedFragment]) -> None:
        rejected.extend(fragments)

    stop = asyncio.Event()
    async with (
        httpx.AsyncClient(base_url=broker_url + NGSI_LD, timeout=30) as http,
        HttpAdapter() as adapter,
    ):
        publisher = Publisher(
            outbox,
            TenantClients(adapter, TargetDirectory(broker_url + NGSI_LD, {}, None)),
            keep,
            linger_s=linger_s,
            idle_poll_s=NEVER_S,
        )
        running = asyncio.create_task(publisher.run(stop))
        try:
            for n in range(3):
                await outbox.append({tenant: [_fragment(tenant, n)]})
                body = await _entity(http, tenant, _fragment(tenant, n)["id"])
                assert body["sequence"]["value"] == n
            # The record leaves the outbox once the broker answered, just after the entity
            # can be read.
            for _ in range(100):
                if await outbox.size() == 0:
                    break
                await asyncio.sleep(0.05)
            assert await outbox.size() == 0
        finally:
            stop.set()
            await asyncio.wait_for(running, 30)
    assert rejected == []
