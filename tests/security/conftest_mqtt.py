"""Helpers of the MQTT security tests: an ingest process on the test store and broker API,
a tenant with one IoT Agent JSON group, and polling for what arrived."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from contesto._ingest import IngestRuntime, run_ingest
from sensor_ingest import AttributeMapping, IngestSettings, ServiceGroup, StaticAttribute
from sensor_ingest._dead_letters import DeadLetter

NGSI_LD = "/ngsi-ld/v1"
FIRENZE = {"type": "Point", "coordinates": [11.2556, 43.7696]}


def publishing_to(ingest: IngestSettings, broker_url: str, prefix: str) -> IngestSettings:
    """`ingest`, publishing to the broker API at `broker_url` with database prefix `prefix`."""
    return ingest.model_copy(update={"broker_url": broker_url + NGSI_LD, "database_prefix": prefix})


def air_group(tenant: str, key: str) -> ServiceGroup:
    """A group without a data model: any attribute `t` becomes `temperature`."""
    return ServiceGroup(
        tenant=tenant,
        format="iotagent-json",
        group=key,
        entity_type="Thermometer",
        attributes=(AttributeMapping("t", "temperature"),),
        static_attributes=(StaticAttribute("location", "GeoProperty", FIRENZE),),
    )


@asynccontextmanager
async def running_ingest(ingest: IngestSettings) -> AsyncIterator[IngestRuntime]:
    """Worker and publisher until the block ends; fails if they are not ready in 30 s."""
    stop = asyncio.Event()
    ready: asyncio.Future[IngestRuntime] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_ingest(ingest, stop, on_ready=ready.set_result))
    try:
        waiting: list[asyncio.Future[Any]] = [ready, task]
        done, _ = await asyncio.wait(waiting, timeout=30, return_when="FIRST_COMPLETED")
        if task in done:
            task.result()
        assert ready.done(), "the ingest process did not get ready in 30 s"
        yield ready.result()
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def get_entity(broker_url: str, tenant: str, entity_id: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.get(
            f"{broker_url}{NGSI_LD}/entities/{entity_id}", headers={"NGSILD-Tenant": tenant}
        )


async def wait_for_entity(
    broker_url: str, tenant: str, entity_id: str, timeout_s: float = 20.0
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        response = await get_entity(broker_url, tenant, entity_id)
        if response.status_code == 200:
            found: dict[str, Any] = response.json()
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{entity_id} did not appear in {tenant}: {response.text}")
        await asyncio.sleep(0.1)


async def wait_for_dead_letter(
    runtime: IngestRuntime, reason: str, timeout_s: float = 20.0
) -> DeadLetter:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        letters = await runtime.dead_letters.recent(reason=reason)
        if letters:
            return letters[0]
        if asyncio.get_running_loop().time() > deadline:
            found = [
                (d.rejection.reason, d.message.topic) for d in await runtime.dead_letters.recent()
            ]
            raise AssertionError(f"no dead letter {reason!r}; there are {found}")
        await asyncio.sleep(0.1)


def suffix() -> str:
    return secrets.token_hex(4)
