"""The MQTT feed against real Mosquitto: batches, acknowledgement, redelivery, sharing."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from sensor_ingest._mqtt import MqttFeed, MqttOptions, MqttPublisher

pytestmark = pytest.mark.integration


def _options(port: int, **kwargs: object) -> MqttOptions:
    return MqttOptions(port=port, **kwargs)  # type: ignore[arg-type]


async def _collect(feed: MqttFeed, count: int, timeout_s: float = 20.0) -> list[bytes]:
    got: list[bytes] = []
    deadline = asyncio.get_running_loop().time() + timeout_s
    while len(got) < count and asyncio.get_running_loop().time() < deadline:
        batch = await feed.next_batch(max_size=500, max_wait_s=0.01, idle_timeout_s=0.2)
        got += [d.message.payload for d in batch]
        feed.acknowledge(batch)
    return got


async def test_messages_arrive_in_batches_in_order(mqtt_port: int) -> None:
    topic = f"flat/feed-{secrets.token_hex(4)}/dev"
    options = _options(mqtt_port, client_id=f"feed-{secrets.token_hex(4)}", shared_group=None)
    async with MqttFeed(options, (topic,)) as feed:
        with MqttPublisher(_options(mqtt_port)) as publisher:
            for n in range(300):
                publisher.publish(topic, str(n), wait=False)
            publisher.flush()
        got = await _collect(feed, 300)
    assert got == [str(n).encode() for n in range(300)]


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_unacknowledged_messages_come_back_after_a_reconnect(
    mqtt_port: int, protocol: str
) -> None:
    topic = f"flat/redeliver-{secrets.token_hex(4)}/dev"
    options = _options(mqtt_port, client_id=f"redeliver-{secrets.token_hex(4)}", protocol=protocol)
    async with MqttFeed(options, (topic,)) as feed:
        with MqttPublisher(_options(mqtt_port)) as publisher:
            for n in range(10):
                publisher.publish(topic, str(n))
        first = await feed.next_batch(max_wait_s=0.2)
        assert len(first) == 10
        feed.acknowledge(first[:4])
    # Same client id, persistent session: the six unacknowledged ones are delivered again,
    # and messages published while the worker was away are kept for it.
    with MqttPublisher(_options(mqtt_port)) as publisher:
        publisher.publish(topic, "while-away")
    async with MqttFeed(options, (topic,)) as feed:
        got = await _collect(feed, 7)
    assert got == [str(n).encode() for n in range(4, 10)] + [b"while-away"]


async def test_two_workers_in_a_shared_group_split_the_feed(mqtt_port: int) -> None:
    topic = f"flat/shared-{secrets.token_hex(4)}/dev"
    group = f"g{secrets.token_hex(4)}"
    one = _options(mqtt_port, client_id=f"w1-{group}", shared_group=group)
    two = _options(mqtt_port, client_id=f"w2-{group}", shared_group=group)
    async with MqttFeed(one, (topic,)) as first, MqttFeed(two, (topic,)) as second:
        with MqttPublisher(_options(mqtt_port)) as publisher:
            for n in range(200):
                publisher.publish(topic, str(n), wait=False)
            publisher.flush()
        got_first, got_second = [], []
        for _ in range(40):
            for feed, into in ((first, got_first), (second, got_second)):
                batch = await feed.next_batch(max_wait_s=0.0, idle_timeout_s=0.05)
                into += [d.message.payload for d in batch]
                feed.acknowledge(batch)
            if len(got_first) + len(got_second) == 200:
                break
    assert sorted(got_first + got_second, key=int) == [str(n).encode() for n in range(200)]
    assert got_first and got_second
