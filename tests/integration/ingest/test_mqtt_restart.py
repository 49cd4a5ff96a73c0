"""A lone ingest worker subscribes to the plain topic filters, because Mosquitto restores a
persistent session's plain subscriptions after a restart but not its shared ones: what a
device publishes after Mosquitto came back, and before the worker did, still reaches the
worker. With a shared subscription the same message is acknowledged to the device and
dropped, which is why `contesto up` shares only between several workers."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from contesto._mqtt_broker import MosquittoBroker
from sensor_ingest._mqtt import MqttFeed, MqttOptions

pytestmark = pytest.mark.integration

# Mosquitto writes its state every 5 s (contesto/_mqtt_broker.py).
AUTOSAVE_S = 5.0
TOPIC = "/json/key/dev/attrs"


def _publish(port: int, payload: bytes) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(TOPIC, payload, qos=1).wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()


async def _received_after_restart(data_dir: Path, *, shared: bool) -> list[bytes]:
    broker = MosquittoBroker(data_dir)
    broker.start()
    port = broker.port
    options = MqttOptions(port=port, client_id=f"worker-{shared}", shared=shared)
    try:
        async with MqttFeed(options, ("/json/+/+/attrs",)):
            pass  # the session and its subscription exist; the worker is away
        time.sleep(AUTOSAVE_S + 1.0)
        assert broker.pid is not None
        os.kill(broker.pid, signal.SIGKILL)
        broker.stop()
        broker = MosquittoBroker(data_dir, port=port)
        broker.start()
        _publish(port, b"after the restart")
        async with MqttFeed(options, ("/json/+/+/attrs",)) as feed:
            batch = await feed.next_batch(idle_timeout_s=2.0)
            feed.acknowledge(batch)
            return [delivery.message.payload for delivery in batch]
    finally:
        broker.stop()


async def test_a_lone_worker_gets_what_was_published_while_mosquitto_restarted(
    tmp_path: Path,
) -> None:
    assert await _received_after_restart(tmp_path / "plain", shared=False) == [b"after the restart"]


async def test_mosquitto_drops_it_for_a_shared_subscription(tmp_path: Path) -> None:
    """What the lone worker avoids; if Mosquitto ever restores shared subscriptions, this
    fails and `contesto up` may share again with one worker."""
    assert await _received_after_restart(tmp_path / "shared", shared=True) == []
