"""One message cannot stop ingest: an oversized message goes to the dead letters with its
size and a truncated copy, and the other tenants' messages behind it arrive."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import orjson
import pytest
from conftest_mqtt import (
    air_group,
    publishing_to,
    running_ingest,
    suffix,
    wait_for_dead_letter,
    wait_for_entity,
)

from contesto._mqtt_broker import MosquittoBroker
from context_broker import BrokerSettings
from sensor_ingest import IngestSettings
from sensor_ingest._mqtt import MqttFeed, MqttOptions, MqttPublisher

pytestmark = pytest.mark.integration

# Over the store's 16 MB document limit: before the cap, it stopped ingest for everyone.
POISON_BYTES = 17 * 1024 * 1024


def _settings(store_url: str, mqtt_port: int, database: str, cap: int) -> IngestSettings:
    tag = suffix()
    return IngestSettings(
        mongo_url=store_url,
        pipeline_database=database,
        mqtt_port=mqtt_port,
        mqtt_client_id=f"poison-{tag}",
        mqtt_shared_group=f"g{tag}",
        ingest_max_message_bytes=cap,
    )


async def test_an_oversized_message_is_dead_lettered_and_the_rest_arrives(
    store_url: str, mqtt_port: int, broker_url: str, broker_settings: BrokerSettings
) -> None:
    database = f"poison_{suffix()}"
    ingest = _settings(store_url, mqtt_port, database, cap=64 * 1024)
    ingest = publishing_to(ingest, broker_url, broker_settings.database_prefix)
    attacker, victim = f"att{suffix()}", f"vic{suffix()}"
    async with running_ingest(ingest) as runtime:
        await runtime.registry.put_group(air_group(attacker, f"key-{attacker}"))
        await runtime.registry.put_group(air_group(victim, f"key-{victim}"))
        poison = b'{"t": "' + b"x" * POISON_BYTES + b'"}'
        with MqttPublisher(MqttOptions(port=mqtt_port)) as publisher:
            publisher.publish(f"/json/key-{victim}/before/attrs", orjson.dumps({"t": 1}))
            publisher.publish(f"/json/key-{attacker}/big/attrs", poison)
            publisher.publish(f"/json/key-{victim}/after/attrs", orjson.dumps({"t": 2}))
        before = await wait_for_entity(broker_url, victim, "urn:ngsi-ld:Thermometer:before")
        letter = await wait_for_dead_letter(runtime, "oversized")
        with MqttPublisher(MqttOptions(port=mqtt_port)) as publisher:
            publisher.publish(f"/json/key-{victim}/later/attrs", orjson.dumps({"t": 3}))
        after = await wait_for_entity(broker_url, victim, "urn:ngsi-ld:Thermometer:after")
        later = await wait_for_entity(broker_url, victim, "urn:ngsi-ld:Thermometer:later")
    assert [before["temperature"]["value"], after["temperature"]["value"]] == [1, 2]
    assert later["temperature"]["value"] == 3
    assert letter.message.topic == f"/json/key-{attacker}/big/attrs"
    assert letter.size == len(poison)
    assert letter.truncated
    assert letter.message.payload == poison[: len(letter.message.payload)]
    assert 0 < len(letter.message.payload) <= 1024
    summary = letter.summary()
    assert (summary["reason"], summary["size"]) == ("oversized", len(poison))
    assert "over the limit of 65536" in summary["message"]


async def test_a_record_the_store_cannot_hold_is_dead_lettered_alone(
    store_url: str, mqtt_port: int, broker_url: str, broker_settings: BrokerSettings
) -> None:
    """Under the message cap but over the store's document limit once it is an entity:
    the batch is stored message by message and only that one is turned away."""
    database = f"unstorable_{suffix()}"
    ingest = _settings(store_url, mqtt_port, database, cap=POISON_BYTES + 1024)
    ingest = publishing_to(ingest, broker_url, broker_settings.database_prefix)
    attacker, victim = f"att{suffix()}", f"vic{suffix()}"
    async with running_ingest(ingest) as runtime:
        await runtime.registry.put_group(air_group(attacker, f"key-{attacker}"))
        await runtime.registry.put_group(air_group(victim, f"key-{victim}"))
        poison = b'{"t": "' + b"x" * POISON_BYTES + b'"}'
        with MqttPublisher(MqttOptions(port=mqtt_port)) as publisher:
            publisher.publish(f"/json/key-{attacker}/big/attrs", poison)
            publisher.publish(f"/json/key-{victim}/after/attrs", orjson.dumps({"t": 2}))
        letter = await wait_for_dead_letter(runtime, "unstorable", timeout_s=30)
        after = await wait_for_entity(broker_url, victim, "urn:ngsi-ld:Thermometer:after")
    assert after["temperature"]["value"] == 2
    assert (letter.size, letter.truncated) == (len(poison), True)
    assert letter.tenant == attacker


async def test_mosquitto_drops_a_payload_over_the_stack_limit(tmp_path: Path) -> None:
    broker = MosquittoBroker(tmp_path / "mqtt")
    broker.message_size_limit = 64 * 1024
    topic = f"flat/limit-{secrets.token_hex(4)}/dev"
    with broker:
        listener = MqttOptions(
            port=broker.port,
            client_id=f"limit-{suffix()}",
            shared_group=None,
            persistent=False,
            session_expiry_s=0,
        )
        async with MqttFeed(listener, (topic,)) as feed:
            # MQTT 3.1.1: Mosquitto acknowledges the oversized message, then drops it.
            with MqttPublisher(MqttOptions(port=broker.port, protocol="3.1.1")) as publisher:
                publisher.publish(topic, b"x" * (1024 * 1024))
                publisher.publish(topic, b"small")
            await asyncio.sleep(0.3)
            got = await feed.next_batch(max_wait_s=0.2, idle_timeout_s=2)
            feed.acknowledge(got)
    assert [d.message.payload for d in got] == [b"small"]
