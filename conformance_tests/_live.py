"""Listen to a live MQTT broker for the conformance kit, through sensor_ingest's feed.

A unique client id, no shared group and a session that ends with the connection, so the
kit never takes messages away from a running ingest worker nor leaves a session behind.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import replace

from sensor_ingest import InboundMessage, MqttOptions
from sensor_ingest._mqtt import MqttFeed

__all__ = ["listen", "listener_options"]


def listener_options(options: MqttOptions) -> MqttOptions:
    """`options` as a private, throw-away listener."""
    return replace(
        options,
        client_id=f"contesto-conformance-{secrets.token_hex(6)}",
        shared_group=None,
        session_expiry_s=0,
        persistent=False,
    )


async def listen(
    options: MqttOptions,
    topic_filters: tuple[str, ...],
    *,
    count: int | None,
    seconds: float,
    on_message: Callable[[int], None] = lambda _received: None,
    on_ready: Callable[[], None] = lambda: None,
    connect_timeout_s: float = 15.0,
) -> tuple[list[InboundMessage], float]:
    """Messages received for up to `count` messages or `seconds`, whichever comes first,
    and how long it listened; each is acknowledged (QoS 1) once read.

    Raises `sensor_ingest.MqttError` when the broker cannot be reached or refuses us.
    """
    received: list[InboundMessage] = []
    feed = MqttFeed(listener_options(options), topic_filters)
    await feed.start(connect_timeout_s)
    try:
        on_ready()
        started = time.monotonic()
        deadline = started + seconds
        while count is None or len(received) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            limit = 1000 if count is None else count - len(received)
            batch = await feed.next_batch(
                max_size=limit, max_wait_s=0.0, idle_timeout_s=min(0.5, left)
            )
            if not batch:
                continue
            received.extend(d.message for d in batch)
            feed.acknowledge(batch)
            on_message(len(received))
        elapsed = time.monotonic() - started
    finally:
        await feed.stop()
    return received, elapsed
