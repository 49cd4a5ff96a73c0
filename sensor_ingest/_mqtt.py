"""The only module that speaks MQTT: a paho client on its own network thread that hands
messages to asyncio in batches and acknowledges them only when told to.

QoS 1, persistent session, manual acknowledgement: a message the caller never
acknowledges is delivered again after a reconnect, by this worker or another one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ._messages import InboundMessage

__all__ = ["Delivery", "MqttError", "MqttFeed", "MqttOptions", "MqttPublisher"]

log = logging.getLogger("sensor_ingest.mqtt")

Protocol = Literal["5", "3.1.1"]
# How paho names a CONNACK refusing MQTT 5 (amqtt answers that way).
_UNSUPPORTED_PROTOCOL = "Unsupported protocol version"


class MqttError(Exception):
    """The MQTT broker cannot be reached, refused us, or refused a subscription."""


@dataclass(slots=True, frozen=True)
class MqttOptions:
    """How to reach the MQTT broker and how to hold the session there.

    `shared_group` turns every filter into `$share/<group>/<filter>` (MQTT v5) so that
    several workers split the feed; with MQTT 3.1.1 there is no sharing: run one worker.
    `shared=False` subscribes to the plain filters: Mosquitto restores a persistent
    session's plain subscriptions after a restart but not its shared ones, so a lone
    worker misses nothing published before it is back. On connecting, the other form
    left in the session by an earlier run is dropped (it would deliver every message twice).
    `receive_maximum` bounds the unacknowledged messages the broker sends us at once.
    """

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    protocol: Protocol = "5"
    client_id: str = "contesto-ingest"
    shared_group: str | None = "contesto"
    shared: bool = True
    receive_maximum: int = 2000
    session_expiry_s: int = 7 * 24 * 3600
    keepalive_s: int = 30
    # A worker's session outlives a disconnect; a one-off listener's (session_expiry_s=0) not.
    persistent: bool = True


@dataclass(slots=True, frozen=True)
class Delivery:
    """A received message and what is needed to acknowledge it on the same connection."""

    message: InboundMessage
    mid: int
    qos: int
    connection: int


class MqttFeed:
    """Subscribes to topic filters and yields batches of deliveries to asyncio.

    Use as `async with MqttFeed(...) as feed:`; `await feed.next_batch()` returns at
    least one delivery, `feed.acknowledge(batch)` sends the PUBACKs in arrival order.
    """

    def __init__(self, options: MqttOptions, topic_filters: tuple[str, ...]) -> None:
        self._options = options
        self._filters = topic_filters
        self._received: deque[Delivery] = deque()
        self._lock = threading.Lock()
        self._waiter: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connection = 0
        self._subscribed: asyncio.Future[None] | None = None
        self._client = self._build_client()

    # -- life cycle --------------------------------------------------------------------

    async def __aenter__(self) -> MqttFeed:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def start(self, timeout_s: float = 15.0) -> None:
        """Connect, subscribe and start the network thread; raise MqttError on failure."""
        self._loop = asyncio.get_running_loop()
        self._subscribed = self._loop.create_future()
        options = self._options
        properties = None
        if options.protocol == "5":
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = options.session_expiry_s
            properties.ReceiveMaximum = options.receive_maximum
        try:
            self._client.connect_async(
                options.host,
                options.port,
                keepalive=options.keepalive_s,
                clean_start=not options.persistent,
                properties=properties,
            )
        except (OSError, ValueError) as exc:
            raise MqttError(f"cannot connect to {options.host}:{options.port}: {exc}") from exc
        self._client.loop_start()
        try:
            await asyncio.wait_for(asyncio.shield(self._subscribed), timeout_s)
        except TimeoutError:
            await self.stop()
            raise MqttError(
                f"no MQTT session with {options.host}:{options.port} after {timeout_s:.0f} s"
            ) from None
        except MqttError:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Disconnect and stop the network thread; unacknowledged messages stay queued."""
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)

    # -- consuming ---------------------------------------------------------------------

    async def next_batch(
        self, max_size: int = 1000, max_wait_s: float = 0.02, idle_timeout_s: float = 0.5
    ) -> list[Delivery]:
        """What arrived, up to `max_size`: waits up to `idle_timeout_s` for a first
        delivery (returning [] if none came), then `max_wait_s` for more."""
        batch = self._take(max_size)
        if not batch:
            if not await self._wait_for_messages(idle_timeout_s):
                return []
            batch = self._take(max_size)
        if len(batch) < max_size and max_wait_s > 0:
            await asyncio.sleep(max_wait_s)
            batch.extend(self._take(max_size - len(batch)))
        return batch

    @property
    def connected(self) -> bool:
        """Whether the session with the MQTT broker is open now."""
        return bool(self._client.is_connected())

    def pending(self) -> int:
        """Deliveries received but not yet taken by `next_batch`."""
        return len(self._received)

    def acknowledge(self, batch: list[Delivery]) -> int:
        """PUBACK every delivery of the current connection, in order; returns how many.

        Deliveries of an earlier connection are not acknowledged: the broker redelivers
        them, and the idempotent pipeline stores the same state again.
        """
        sent = 0
        current = self._connection
        for delivery in batch:
            if delivery.qos == 0 or delivery.connection != current:
                continue
            if self._client.ack(delivery.mid, delivery.qos) == MQTTErrorCode.MQTT_ERR_SUCCESS:
                sent += 1
        return sent

    def _take(self, limit: int) -> list[Delivery]:
        received = self._received
        count = min(limit, len(received))
        return [received.popleft() for _ in range(count)]

    async def _wait_for_messages(self, timeout_s: float) -> bool:
        assert self._loop is not None
        with self._lock:
            if self._received:
                return True
            waiter = self._waiter = self._loop.create_future()
        try:
            await asyncio.wait_for(waiter, timeout_s)
        except TimeoutError:
            return bool(self._received)
        finally:
            self._waiter = None
        return True

    # -- paho callbacks (network thread) -----------------------------------------------

    def _build_client(self) -> paho.Client:
        options = self._options
        protocol = (
            MQTTProtocolVersion.MQTTv5 if options.protocol == "5" else MQTTProtocolVersion.MQTTv311
        )
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=options.client_id,
            clean_session=not options.persistent if options.protocol == "3.1.1" else None,
            protocol=protocol,
            manual_ack=True,
        )
        if options.username is not None:
            client.username_pw_set(options.username, options.password)
        client.max_inflight_messages_set(options.receive_maximum)
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        return client

    def _subscription(self, topic_filter: str, *, shared: bool | None = None) -> str:
        group = self._options.shared_group
        shared = self._options.shared if shared is None else shared
        if group and shared and self._options.protocol == "5":
            return f"$share/{group}/{topic_filter}"
        return topic_filter

    def _stale_subscriptions(self) -> list[str]:
        """The filters in the form this worker does not use, left by an earlier run."""
        if not self._options.shared_group or self._options.protocol != "5":
            return []
        other = not self._options.shared
        return [self._subscription(f, shared=other) for f in self._filters]

    def _on_connect(
        self,
        client: paho.Client,
        _userdata: Any,
        _flags: Any,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self._fail(MqttError(f"the MQTT broker refused the connection: {reason}"))
            return
        self._connection += 1
        log.info("MQTT session %d open", self._connection)
        client.subscribe([(self._subscription(f), 1) for f in self._filters])
        if stale := self._stale_subscriptions():
            client.unsubscribe(stale)

    def _on_subscribe(
        self,
        _client: paho.Client,
        _userdata: Any,
        _mid: int,
        reasons: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        refused = [self._filters[i] for i, r in enumerate(reasons) if r.is_failure]
        if refused:
            self._fail(MqttError(f"the MQTT broker refused subscriptions: {', '.join(refused)}"))
            return
        self._resolve_subscribed()

    def _on_disconnect(
        self,
        _client: paho.Client,
        _userdata: Any,
        _flags: Any,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        log.warning("MQTT session %d closed: %s", self._connection, reason)

    def _on_message(self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        delivery = Delivery(
            InboundMessage(message.topic, bytes(message.payload), datetime.now(UTC)),
            message.mid,
            message.qos,
            self._connection,
        )
        with self._lock:
            self._received.append(delivery)
            waiter = self._waiter
            if waiter is not None:
                self._waiter = None
        if waiter is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(_wake, waiter)

    def _resolve_subscribed(self) -> None:
        future, loop = self._subscribed, self._loop
        if future is not None and loop is not None:
            loop.call_soon_threadsafe(_wake, future)

    def _fail(self, error: MqttError) -> None:
        future, loop = self._subscribed, self._loop
        log.error("%s", error)
        if future is not None and loop is not None:
            loop.call_soon_threadsafe(_fail_future, future, error)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _fail_future(future: asyncio.Future[None], error: Exception) -> None:
    if not future.done():
        future.set_exception(error)


class MqttPublisher:
    """A blocking QoS 1 publisher for tools (the simulator, the conformance kit, tests).

    `publish` returns once the broker acknowledged the message. A broker that does not
    speak MQTT 5 (amqtt, older Mosquitto) is spoken to in MQTT 3.1.1 instead.
    """

    def __init__(self, options: MqttOptions, client_id: str = "") -> None:
        self._options = options
        self._client_id = client_id
        self._refused: str | None = None
        self._unconfirmed: deque[paho.MQTTMessageInfo] = deque()
        self._client = self._build_client(options.protocol)

    def _build_client(self, protocol: Protocol) -> paho.Client:
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=MQTTProtocolVersion.MQTTv5
            if protocol == "5"
            else MQTTProtocolVersion.MQTTv311,
        )
        if self._options.username is not None:
            client.username_pw_set(self._options.username, self._options.password)
        client.max_inflight_messages_set(1000)
        client.on_connect = self._on_connect
        return client

    def __enter__(self) -> MqttPublisher:
        try:
            self._connect()
        except MqttError:
            if self._options.protocol != "5" or self._refused != _UNSUPPORTED_PROTOCOL:
                raise
            log.info("the MQTT broker does not speak MQTT 5: publishing in MQTT 3.1.1")
            self._refused = None
            self._client = self._build_client("3.1.1")
            self._connect()
        return self

    def _connect(self) -> None:
        try:
            self._client.connect(self._options.host, self._options.port)
        except OSError as exc:
            raise MqttError(
                f"cannot connect to {self._options.host}:{self._options.port}: {exc}"
            ) from exc
        self._client.loop_start()
        deadline = time.monotonic() + 10.0
        while not self._client.is_connected():
            if self._refused is not None or time.monotonic() > deadline:
                self._client.loop_stop()
                raise MqttError(
                    f"the MQTT broker at {self._options.host}:{self._options.port} did not "
                    f"accept the connection: {self._refused or 'no answer'}"
                )
            time.sleep(0.01)

    def _on_connect(
        self,
        _client: paho.Client,
        _userdata: Any,
        _flags: Any,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self._refused = str(reason)

    def __exit__(self, *_exc: object) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def publish(self, topic: str, payload: bytes | str, *, wait: bool = True) -> None:
        """Publish with QoS 1; with `wait`, block until the broker's PUBACK."""
        info = self._client.publish(topic, payload, qos=1)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise MqttError(f"cannot publish to {topic}: {paho.error_string(info.rc)}")
        if wait:
            info.wait_for_publish(timeout=30)
            if not info.is_published():
                raise MqttError(f"the MQTT broker did not acknowledge a message to {topic}")
        else:
            self._unconfirmed.append(info)
            while self._unconfirmed and self._unconfirmed[0].is_published():
                self._unconfirmed.popleft()

    def flush(self, timeout_s: float = 60.0) -> None:
        """Wait until every message published without `wait` was acknowledged."""
        deadline = time.monotonic() + timeout_s
        while self._unconfirmed:
            self._unconfirmed[0].wait_for_publish(max(0.0, deadline - time.monotonic()))
            if not self._unconfirmed[0].is_published():
                raise MqttError(f"the MQTT broker did not acknowledge within {timeout_s:g} s")
            self._unconfirmed.popleft()
