"""An ingest process (worker + publisher) on the test store, Mosquitto and broker."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from contesto._ingest import IngestRuntime, run_ingest
from context_broker import BrokerSettings
from sensor_ingest import IngestSettings
from sensor_ingest._mqtt import MqttOptions, MqttPublisher

NGSI_LD = "/ngsi-ld/v1"


@dataclass(slots=True)
class Ingest:
    """A running ingest process for one test, with a tenant of its own."""

    runtime: IngestRuntime
    settings: IngestSettings
    tenant: str
    broker_url: str

    def publisher(self) -> MqttPublisher:
        return MqttPublisher(MqttOptions(port=self.settings.mqtt_port))

    async def entity(self, entity_id: str, *, tenant: str | None = None) -> httpx.Response:
        async with httpx.AsyncClient(timeout=30) as http:
            return await http.get(
                f"{self.broker_url}{NGSI_LD}/entities/{entity_id}",
                headers={"NGSILD-Tenant": tenant or self.tenant},
            )

    async def wait_for_entity(
        self, entity_id: str, timeout_s: float = 20.0, *, tenant: str | None = None
    ) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            response = await self.entity(entity_id, tenant=tenant)
            if response.status_code == 200:
                found: dict[str, Any] = response.json()
                return found
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{entity_id} did not appear: {response.text}")
            await asyncio.sleep(0.1)

    async def count(self, entity_type: str) -> int:
        async with httpx.AsyncClient(timeout=60) as http:
            response = await http.get(
                f"{self.broker_url}{NGSI_LD}/entities",
                params={"type": entity_type, "count": "true", "limit": "0"},
                headers={"NGSILD-Tenant": self.tenant},
            )
        if response.status_code == 404:
            return 0
        assert response.status_code == 200, response.text
        return int(response.headers["NGSILD-Results-Count"])

    async def wait_for_dead_letters(self, count: int, timeout_s: float = 20.0) -> list[Any]:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            letters = await self.runtime.dead_letters.recent(limit=1000)
            if len(letters) >= count or asyncio.get_running_loop().time() > deadline:
                return letters
            await asyncio.sleep(0.1)


def ingest_settings(
    store_url: str, mqtt_port: int, broker_url: str, database: str, prefix: str = "ctx"
) -> IngestSettings:
    suffix = secrets.token_hex(4)
    return IngestSettings(
        mongo_url=store_url,
        pipeline_database=database,
        mqtt_port=mqtt_port,
        mqtt_client_id=f"ingest-{suffix}",
        mqtt_shared_group=f"g{suffix}",
        broker_url=broker_url + NGSI_LD,
        database_prefix=prefix,
    )


@asynccontextmanager
async def running_ingest(ingest: IngestSettings) -> AsyncIterator[IngestRuntime]:
    stop = asyncio.Event()
    ready: asyncio.Future[IngestRuntime] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_ingest(ingest, stop, on_ready=ready.set_result))
    try:
        done, _ = await asyncio.wait([ready, task], timeout=30, return_when="FIRST_COMPLETED")
        if task in done:
            task.result()
        assert ready.done(), "the ingest process did not get ready in 30 s"
        yield ready.result()
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@pytest.fixture
async def ingest(
    store_url: str, mqtt_port: int, broker_url: str, broker_settings: BrokerSettings
) -> AsyncIterator[Ingest]:
    database = f"ingest_{secrets.token_hex(4)}"
    settings = ingest_settings(
        store_url, mqtt_port, broker_url, database, broker_settings.database_prefix
    )
    async with running_ingest(settings) as runtime:
        yield Ingest(runtime, settings, f"e2e{secrets.token_hex(4)}", broker_url)
