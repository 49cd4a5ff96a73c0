"""The fallback MQTT broker when Mosquitto is not installed: amqtt (MQTT 3.1.1) as a child
process, anonymous publishers, an authenticated persistent session for the ingest worker.
The machines that run these tests have Mosquitto: the tests ask for amqtt by name."""

from __future__ import annotations

import asyncio
import secrets
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from _servers import ThreadedServer
from conftest import Ingest, ingest_settings, running_ingest
from typer.testing import CliRunner

from contesto._amqtt_broker import AmqttBroker
from contesto._cli import app
from contesto._demo import DEMO_DEVICES, DEMO_GROUPS
from contesto._embedded import free_port
from contesto._mqtt_broker import MqttBrokerError
from contesto._settings import StackSettings
from contesto._stack_mqtt import AMQTT_RISK, local_mqtt
from context_broker import BrokerSettings, create_app
from sensor_ingest import AttributeMapping, ServiceGroup, StaticAttribute
from sensor_ingest._mqtt import Delivery, MqttError, MqttFeed, MqttOptions, MqttPublisher

pytestmark = pytest.mark.integration

FIRENZE = {"type": "Point", "coordinates": [11.2556, 43.7696]}


@pytest.fixture(scope="module")
def amqtt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AmqttBroker]:
    broker = AmqttBroker(tmp_path_factory.mktemp("amqtt"))
    try:
        broker.start()
    except MqttBrokerError as exc:
        pytest.fail(f"amqtt did not start: {exc}", pytrace=False)
    try:
        yield broker
    finally:
        broker.stop()


def _worker(broker: AmqttBroker, client_id: str) -> MqttOptions:
    username, password = broker.credentials
    return MqttOptions(
        port=broker.port,
        protocol="3.1.1",
        username=username,
        password=password,
        client_id=client_id,
        shared_group=None,
    )


def _anonymous(broker: AmqttBroker) -> MqttOptions:
    return MqttOptions(port=broker.port, protocol="3.1.1")


async def _collect(feed: MqttFeed, count: int, timeout_s: float = 10.0) -> list[bytes]:
    got: list[bytes] = []
    deadline = asyncio.get_running_loop().time() + timeout_s
    while len(got) < count and asyncio.get_running_loop().time() < deadline:
        batch = await feed.next_batch(max_wait_s=0.01, idle_timeout_s=0.2)
        got += [d.message.payload for d in batch]
        feed.acknowledge(batch)
    return got


def test_the_worker_password_is_private_and_kept_per_data_directory(tmp_path: Path) -> None:
    username, password = AmqttBroker(tmp_path).credentials
    assert AmqttBroker(tmp_path).credentials == (username, password)
    assert len(password) >= 24
    [secret] = [p for p in tmp_path.iterdir() if password in p.read_text()]
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert AmqttBroker(tmp_path / "other").credentials != (username, password)


async def test_the_worker_gets_what_an_anonymous_device_publishes(amqtt: AmqttBroker) -> None:
    topic = f"flat/amqtt-{secrets.token_hex(4)}/dev"
    async with MqttFeed(_worker(amqtt, f"feed-{secrets.token_hex(4)}"), (topic,)) as feed:
        with MqttPublisher(_anonymous(amqtt)) as publisher:
            for n in range(20):
                publisher.publish(topic, str(n), wait=False)
            publisher.flush()
        got = await _collect(feed, 20)
    assert got == [str(n).encode() for n in range(20)]


async def test_a_wrong_password_is_refused(amqtt: AmqttBroker) -> None:
    options = MqttOptions(
        port=amqtt.port,
        protocol="3.1.1",
        username=amqtt.credentials[0],
        password="wrong",
        client_id=f"intruder-{secrets.token_hex(4)}",
        shared_group=None,
    )
    with pytest.raises(MqttError, match="refused the connection"):
        await MqttFeed(options, ("flat/#",)).start(timeout_s=5)


async def test_the_worker_session_keeps_what_it_missed_or_did_not_acknowledge(
    amqtt: AmqttBroker,
) -> None:
    topic = f"flat/away-{secrets.token_hex(4)}/dev"
    options = _worker(amqtt, f"worker-{secrets.token_hex(4)}")
    async with MqttFeed(options, (topic,)) as feed:
        with MqttPublisher(_anonymous(amqtt)) as publisher:
            for n in range(6):
                publisher.publish(topic, str(n))
        first = await _collect_unacknowledged(feed, 6)
        feed.acknowledge(first[:2])
    # Same client id, persistent session: the four unacknowledged ones come again, then
    # what was published while the worker was away.
    with MqttPublisher(_anonymous(amqtt)) as publisher:
        publisher.publish(topic, "away-1")
        publisher.publish(topic, "away-2")
    async with MqttFeed(options, (topic,)) as feed:
        got = await _collect(feed, 6)
        assert await _collect(feed, 1, timeout_s=0.5) == []
    assert got == [b"2", b"3", b"4", b"5", b"away-1", b"away-2"]
    # All acknowledged now: a third connection gets nothing.
    async with MqttFeed(options, (topic,)) as feed:
        assert await _collect(feed, 1, timeout_s=0.5) == []


async def _collect_unacknowledged(feed: MqttFeed, count: int) -> list[Delivery]:
    batch: list[Delivery] = []
    deadline = asyncio.get_running_loop().time() + 10
    while len(batch) < count and asyncio.get_running_loop().time() < deadline:
        batch += await feed.next_batch(max_wait_s=0.01, idle_timeout_s=0.2)
    assert len(batch) == count
    return batch


async def test_a_device_message_becomes_an_entity_through_amqtt(
    amqtt: AmqttBroker, store_url: str, broker_url: str
) -> None:
    database = f"ingest_{secrets.token_hex(4)}"
    settings = ingest_settings(store_url, amqtt.port, broker_url, database)
    username, password = amqtt.credentials
    settings = settings.model_copy(
        update={"mqtt_protocol": "3.1.1", "mqtt_username": username, "mqtt_password": password}
    )
    tenant = f"amqtt{secrets.token_hex(4)}"
    async with running_ingest(settings) as runtime:
        ingest = Ingest(runtime, settings, tenant, broker_url)
        await runtime.registry.put_group(
            ServiceGroup(
                tenant=tenant,
                format="iotagent-json",
                group=f"key-{tenant}",
                entity_type="AirQualityObserved",
                attributes=(AttributeMapping("t", "temperature", unit_code="CEL"),),
                static_attributes=(StaticAttribute("location", "GeoProperty", FIRENZE),),
                explicit_attributes=True,
            )
        )
        with MqttPublisher(_anonymous(amqtt)) as publisher:
            publisher.publish(
                f"/json/key-{tenant}/aq-1/attrs",
                orjson.dumps({"t": 21.5, "TimeInstant": "2026-11-23T08:15:00Z"}),
            )
        entity = await ingest.wait_for_entity("urn:ngsi-ld:AirQualityObserved:aq-1")
    assert entity["temperature"]["value"] == 21.5
    assert entity["temperature"]["unitCode"] == "CEL"
    assert entity["location"]["value"] == FIRENZE


def test_the_stack_runs_amqtt_in_the_dev_profile_only_and_says_what_it_risks(
    tmp_path: Path,
) -> None:
    dev = local_mqtt(StackSettings(data_dir=tmp_path, mqtt_broker="amqtt"))
    assert isinstance(dev.broker, AmqttBroker)
    assert dev.warnings == [f"{AMQTT_RISK}: install Mosquitto for durable MQTT"]
    assert "messages acknowledged by the embedded MQTT broker but not yet stored are lost" in (
        AMQTT_RISK
    )
    regional = StackSettings(data_dir=tmp_path, mqtt_broker="amqtt", auth_required=True)
    with pytest.raises(MqttBrokerError, match="the regional profile needs Mosquitto"):
        local_mqtt(regional)


async def test_contesto_simulate_feeds_the_stack_through_amqtt(
    store_url: str, broker_settings: BrokerSettings, tmp_path: Path
) -> None:
    """The fallback path end to end, as `make run` takes it without Mosquitto: the stack's
    amqtt broker, the ingest worker logged in over MQTT 3.1.1, `contesto simulate`. The demo
    writes into firenze and prato, so it gets a broker of its own databases."""
    own = broker_settings.model_copy(update={"database_prefix": f"t{secrets.token_hex(4)}"})
    with ThreadedServer(create_app(own)) as server:
        await _simulate_through_amqtt(store_url, server.url, tmp_path)


async def _simulate_through_amqtt(store_url: str, broker_url: str, tmp_path: Path) -> None:
    stack = StackSettings(data_dir=tmp_path, mqtt_broker="amqtt", mqtt_port=free_port("127.0.0.1"))
    local = local_mqtt(stack)
    assert local.credentials is not None and local.protocol == "3.1.1"
    database = f"ingest_{secrets.token_hex(4)}"
    started = datetime.now(UTC)
    with local.broker:
        settings = ingest_settings(store_url, local.broker.port, broker_url, database)
        username, password = local.credentials
        settings = settings.model_copy(
            update={"mqtt_protocol": "3.1.1", "mqtt_username": username, "mqtt_password": password}
        )
        async with running_ingest(settings) as runtime:
            for group in DEMO_GROUPS:
                await runtime.registry.put_group(group)
            for device in DEMO_DEVICES:
                await runtime.registry.put_device(device)
            simulate = ["simulate", "--count", str(len(DEMO_DEVICES)), "--rate", "0"]
            port = ["--mqtt-port", str(local.broker.port)]
            result = await asyncio.to_thread(CliRunner().invoke, app, [*simulate, *port])
            assert result.exit_code == 0, result.output
            ingest = Ingest(runtime, settings, "firenze", broker_url)
            firenze = await _fresh(ingest, "firenze", "AirQualityObserved:aq-fi-signoria", started)
            prato = await _fresh(ingest, "prato", "ParkingSpot:spot-po-002", started)
            letters = await runtime.dead_letters.recent()
    assert firenze["temperature"]["value"] > -50
    assert prato["status"]["value"] in ("free", "occupied")
    assert letters == []


async def _fresh(ingest: Ingest, tenant: str, entity: str, since: datetime) -> dict[str, Any]:
    """The entity once it holds an observation made after `since` (not an earlier test's)."""
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        response = await ingest.entity(f"urn:ngsi-ld:{entity}", tenant=tenant)
        if response.status_code == 200:
            found: dict[str, Any] = response.json()
            observed = [
                datetime.fromisoformat(a["observedAt"].replace("Z", "+00:00"))
                for a in found.values()
                if isinstance(a, dict) and "observedAt" in a
            ]
            if observed and max(observed) >= since:
                return found
        assert asyncio.get_running_loop().time() < deadline, response.text
        await asyncio.sleep(0.1)
