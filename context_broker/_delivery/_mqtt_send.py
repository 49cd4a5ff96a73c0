"""Notifications to MQTT endpoints (clause 5.11, MQTT binding): the only module of the
broker that speaks MQTT.

One paho client per (scheme, host, port, MQTT version, user), connected on first use and
kept, each on paho's own network thread. The message is the spec's form: a JSON object
with the notification's headers as `metadata` and the Notification as `body`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from context_broker._delivery._outcome import DELIVERED, Outcome
from context_broker._delivery._queue import Queued

log = logging.getLogger("context_broker.notifier")


@dataclass(slots=True, frozen=True)
class _Target:
    """Where an MQTT endpoint URI publishes, and as whom."""

    tls: bool
    host: str
    port: int
    version: str
    username: str | None
    password: str | None
    topic: str

    @classmethod
    def of(cls, record: Queued) -> _Target:
        parts = urlsplit(record.endpoint)
        tls = parts.scheme == "mqtts"
        return cls(
            tls=tls,
            host=parts.hostname or "",
            port=parts.port or (8883 if tls else 1883),
            version=record.notifier_info.get("MQTT-Version", "mqtt3.1.1"),
            username=unquote(parts.username) if parts.username is not None else None,
            password=unquote(parts.password) if parts.password is not None else None,
            topic=unquote(parts.path.lstrip("/")),
        )

    @property
    def connection(self) -> tuple[bool, str, int, str, str | None, str | None]:
        return (self.tls, self.host, self.port, self.version, self.username, self.password)


def mqtt_message(record: Queued) -> bytes:
    """The spec's MQTT notification: {"metadata": {headers}, "body": <Notification>}."""
    return b'{"metadata":' + orjson.dumps(record.headers) + b',"body":' + record.body + b"}"


class _Connection:
    """One paho client, connected lazily, with its own network thread."""

    def __init__(self, target: _Target, timeout_s: float) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self._connected = threading.Event()
        self._refused: str | None = None
        self._started = False
        self._lock = asyncio.Lock()
        v5 = target.version == "mqtt5.0"
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"contesto-notifier-{secrets.token_hex(6)}",
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
        )
        if target.username is not None:
            client.username_pw_set(target.username, target.password)
        if target.tls:
            client.tls_set_context(ssl.create_default_context())
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        self.client = client

    async def ready(self) -> str | None:
        """Connect on first use; None once connected, else why not."""
        if self._connected.is_set():
            return None
        async with self._lock:
            if not self._started:
                self._refused = None
                try:
                    self.client.connect_async(self.target.host, self.target.port, keepalive=30)
                except (OSError, ValueError) as error:
                    return f"cannot connect: {error}"
                self.client.loop_start()
                self._started = True
        connected = await asyncio.to_thread(self._connected.wait, self.timeout_s)
        if connected:
            return None
        return f"no MQTT session: {self._refused or 'no answer in time'}"

    async def publish(self, topic: str, payload: bytes, qos: int) -> Outcome:
        why = await self.ready()
        if why is not None:
            return Outcome("retry", why)
        try:
            info = self.client.publish(topic, payload, qos=qos)
        except ValueError as error:  # an invalid topic, a payload too large
            return Outcome("refused", str(error))
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return Outcome("retry", f"cannot publish: {paho.error_string(info.rc)}")
        try:
            await asyncio.to_thread(info.wait_for_publish, self.timeout_s)
        except (RuntimeError, ValueError) as error:
            return Outcome("retry", f"cannot publish: {error}")
        if not info.is_published():
            return Outcome("retry", "the MQTT broker did not acknowledge in time")
        return DELIVERED

    def close(self) -> None:
        if self._started:
            self.client.disconnect()
            self.client.loop_stop()

    # -- paho callbacks (network thread) ------------------------------------------------

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
            return
        self._connected.set()

    def _on_disconnect(
        self,
        _client: paho.Client,
        _userdata: Any,
        _flags: Any,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self._connected.clear()


class MqttSender:
    """Publishes notifications to MQTT endpoints, with the QoS of their notifierInfo."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._connections: dict[tuple[Any, ...], _Connection] = {}

    async def send(self, record: Queued) -> Outcome:
        target = _Target.of(record)
        if not target.topic or not target.host:
            return Outcome("refused", "the endpoint names no host or topic")
        qos = int(record.notifier_info.get("MQTT-QoS", "0"))
        connection = self._connections.get(target.connection)
        if connection is None:
            connection = self._connections[target.connection] = _Connection(target, self.timeout_s)
        return await connection.publish(target.topic, mqtt_message(record), qos)

    async def aclose(self) -> None:
        connections, self._connections = list(self._connections.values()), {}
        for connection in connections:
            await asyncio.to_thread(connection.close)
