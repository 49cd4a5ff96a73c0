"""No message lost: the broker API, the ingest worker or the store goes down mid-stream
and comes back.

Each test shows the fault struck while messages were in flight (published, not yet
entities). 1,500 messages, each for its own device with its own sequence number, so that
every message is one entity: the final state, compared whole, shows every message exactly
once (none missing, no stray entity, no entity with another message's value). The first
1,000 are published before the fault, which strikes while some of them are still on their
way; the rest while the fault lasts.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from _servers import ThreadedServer, wait_for_port
from conftest import NGSI_LD, ingest_settings, running_ingest

from contesto import EmbeddedStore
from contesto._embedded import free_port
from contesto._settings import StackSettings
from context_broker import BrokerSettings, create_app
from sensor_ingest import AttributeMapping, DeviceRegistry, ServiceGroup
from sensor_ingest._mqtt import MqttOptions, MqttPublisher
from store_edge import connect

pytestmark = pytest.mark.integration

MESSAGES = 1500
BEFORE_FAULT = 1000
"""Messages published just before the fault: enough that some are in flight when it strikes."""
ENTITY_TYPE = "DeliveryProbe"


def _group(tenant: str, key: str) -> ServiceGroup:
    return ServiceGroup(
        tenant=tenant,
        format="iotagent-json",
        group=key,
        entity_type=ENTITY_TYPE,
        attributes=(AttributeMapping("n", "sequence"),),
        explicit_attributes=True,
    )


def _publish(port: int, key: str, numbers: range) -> None:
    with MqttPublisher(MqttOptions(port=port)) as mqtt:
        for n in numbers:
            mqtt.publish(f"/json/{key}/dev-{n}/attrs", orjson.dumps({"n": n}), wait=False)
        mqtt.flush()


async def _wait_for_all(api: str, tenant: str, timeout_s: float = 240.0) -> dict[str, int]:
    """Every entity's sequence value, once there are MESSAGES entities."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    headers = {"NGSILD-Tenant": tenant}
    async with httpx.AsyncClient(base_url=api + NGSI_LD, timeout=60) as http:
        while True:
            answer = await http.get(
                "/entities",
                params={"type": ENTITY_TYPE, "count": "true", "limit": "0"},
                headers=headers,
            )
            count = int(answer.headers.get("NGSILD-Results-Count", 0))
            if count >= MESSAGES:
                break
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"only {count} of {MESSAGES} entities after {timeout_s} s")
            await asyncio.sleep(0.5)
        values: dict[str, int] = {}
        for offset in range(0, MESSAGES, 1000):
            page = await http.get(
                "/entities",
                params={
                    "type": ENTITY_TYPE,
                    "limit": "1000",
                    "offset": str(offset),
                    "options": "keyValues",
                    "attrs": "sequence",
                },
                headers=headers,
            )
            values.update({e["id"]: e["sequence"] for e in page.json()})
    return values


def _expected() -> dict[str, int]:
    return {f"urn:ngsi-ld:{ENTITY_TYPE}:dev-{n}": n for n in range(MESSAGES)}


async def _stored_entities(store_url: str, database: str) -> int:
    """How many entities the tenant's database holds, read from the store itself."""
    client = connect(store_url)
    try:
        return await client[database].entities.count_documents({})
    finally:
        await client.close()


async def test_every_message_arrives_once_although_the_broker_api_goes_down(
    store_url: str, mqtt_port: int, broker_settings: BrokerSettings
) -> None:
    api_port = free_port()
    api = ThreadedServer(create_app(broker_settings), port=api_port)
    api.start()
    tenant, key = f"fault{secrets.token_hex(4)}", f"key-{secrets.token_hex(4)}"
    settings = ingest_settings(store_url, mqtt_port, api.url, f"ingest_{secrets.token_hex(4)}")
    try:
        async with running_ingest(settings) as runtime:
            await runtime.registry.put_group(_group(tenant, key))
            await asyncio.to_thread(_publish, mqtt_port, key, range(BEFORE_FAULT))
            api.stop()
            # Only the API writes entities: what the store holds now is what arrived before.
            tenant_database = f"{broker_settings.database_prefix}_{tenant}"
            arrived = await _stored_entities(store_url, tenant_database)
            assert arrived < BEFORE_FAULT, "the API went down while messages were in flight"
            await asyncio.to_thread(_publish, mqtt_port, key, range(BEFORE_FAULT, MESSAGES))
            # The single-threaded embedded store may still be busy with the first batches.
            for _ in range(600):
                if runtime.worker.counters.messages >= MESSAGES:
                    break
                await asyncio.sleep(0.1)
            assert runtime.worker.counters.messages >= MESSAGES
            held = await runtime.outbox.oldest(1)
            assert held, "the outbox holds what could not be sent"
            api = ThreadedServer(create_app(broker_settings), port=api_port)
            api.start()
            values = await _wait_for_all(api.url, tenant)
            assert await runtime.dead_letters.count() == 0
    finally:
        api.stop()
    assert values == _expected()


@pytest.fixture
def ingest_process_env(store_url: str, mqtt_port: int, broker_url: str) -> Iterator[dict[str, str]]:
    suffix = secrets.token_hex(4)
    yield {
        **os.environ,
        "CONTESTO_MONGO_URL": store_url,
        "CONTESTO_PIPELINE_DATABASE": f"ingest_{suffix}",
        "CONTESTO_MQTT_PORT": str(mqtt_port),
        "CONTESTO_MQTT_CLIENT_ID": f"worker-{suffix}",
        "CONTESTO_MQTT_SHARED_GROUP": f"g{suffix}",
        "CONTESTO_BROKER_URL": broker_url + NGSI_LD,
    }


def _start_worker(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "contesto", "ingest", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_for_port("127.0.0.1", port, 60)
    return process, port


async def test_every_message_arrives_once_although_the_ingest_worker_is_killed(
    store_url: str,
    mqtt_port: int,
    broker_url: str,
    broker_settings: BrokerSettings,
    ingest_process_env: dict[str, str],
    tmp_path: Path,
) -> None:
    tenant, key = f"fault{secrets.token_hex(4)}", f"key-{secrets.token_hex(4)}"
    client = connect(store_url)
    try:
        registry = DeviceRegistry(client[ingest_process_env["CONTESTO_PIPELINE_DATABASE"]])
        await registry.ensure_indexes()
        await registry.put_group(_group(tenant, key))
    finally:
        await client.close()
    log = tmp_path / "worker.log"
    worker, _ = await asyncio.to_thread(_start_worker, ingest_process_env, log)
    try:
        await asyncio.to_thread(_publish, mqtt_port, key, range(BEFORE_FAULT))
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)
        arrived = await _stored_entities(store_url, f"{broker_settings.database_prefix}_{tenant}")
        assert arrived < BEFORE_FAULT, "the worker was killed while messages were in flight"
        await asyncio.to_thread(_publish, mqtt_port, key, range(BEFORE_FAULT, MESSAGES))
        worker, _ = await asyncio.to_thread(_start_worker, ingest_process_env, log)
        values = await _wait_for_all(broker_url, tenant)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    assert values == _expected(), log.read_text()[-2000:]


async def test_every_message_arrives_once_although_the_store_is_killed(
    mqtt_port: int, tmp_path: Path
) -> None:
    # CONTESTO_STORE_UNJOURNALED_WRITES_RISK_LOSS=true shows what this test catches.
    journaled = not StackSettings().store_unjournaled_writes_risk_loss
    store = EmbeddedStore(tmp_path / "db", port=free_port(), journaled=journaled)
    store.start()
    tenant, key = f"fault{secrets.token_hex(4)}", f"key-{secrets.token_hex(4)}"
    broker_settings = BrokerSettings(mongo_url=store.url, database_prefix="storekill")
    try:
        with ThreadedServer(create_app(broker_settings)) as api:
            settings = ingest_settings(store.url, mqtt_port, api.url, "ingest_storekill")
            async with running_ingest(settings) as runtime:
                await runtime.registry.put_group(_group(tenant, key))
                await asyncio.to_thread(_publish, mqtt_port, key, range(BEFORE_FAULT))
                counters = runtime.worker.counters
                while counters.messages == 0:
                    await asyncio.sleep(0.01)
                assert store.pid is not None
                os.kill(store.pid, signal.SIGKILL)
                acknowledged_at_kill = counters.messages
                assert acknowledged_at_kill < BEFORE_FAULT, "the store died with messages in flight"
                await asyncio.to_thread(store.stop)  # reaps the killed process
                await asyncio.to_thread(_publish, mqtt_port, key, range(BEFORE_FAULT, MESSAGES))
                await asyncio.to_thread(store.start)
                values = await _wait_for_all(api.url, tenant)
                assert await runtime.dead_letters.count() == 0
    finally:
        store.stop()
    assert values == _expected()


async def test_a_full_outbox_slows_consumption_and_nothing_is_dropped(
    store_url: str, mqtt_port: int, broker_settings: BrokerSettings
) -> None:
    api_port = free_port()
    tenant, key = f"full{secrets.token_hex(4)}", f"key-{secrets.token_hex(4)}"
    settings = ingest_settings(
        store_url, mqtt_port, f"http://127.0.0.1:{api_port}", f"ingest_{secrets.token_hex(4)}"
    )
    settings = settings.model_copy(update={"outbox_limit": 1, "ingest_batch_size": 10})
    async with running_ingest(settings) as runtime:
        await runtime.registry.put_group(_group(tenant, key))
        for start in range(0, 200, 10):
            await asyncio.to_thread(_publish, mqtt_port, key, range(start, start + 10))
            await asyncio.sleep(0.05)
        await asyncio.sleep(3.0)
        assert runtime.worker.counters.paused_s > 0, "the worker paused on a full outbox"
        assert runtime.worker.counters.messages < 200, "the rest waits in MQTT"
        with ThreadedServer(create_app(broker_settings), port=api_port) as api:
            async with httpx.AsyncClient(base_url=api.url + NGSI_LD, timeout=60) as http:
                for _ in range(600):
                    answer = await http.get(
                        "/entities",
                        params={"type": ENTITY_TYPE, "count": "true", "limit": "0"},
                        headers={"NGSILD-Tenant": tenant},
                    )
                    if int(answer.headers.get("NGSILD-Results-Count", 0)) == 200:
                        break
                    await asyncio.sleep(0.2)
                assert int(answer.headers["NGSILD-Results-Count"]) == 200
