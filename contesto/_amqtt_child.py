"""The amqtt broker process: `python -m contesto._amqtt_child CONFIG.yaml`.

Only ever run as a child process (contesto._amqtt_broker.AmqttBroker starts it), so that
the broker's event loop is not the API's. Two things amqtt 0.12.1 needs for the ingest
worker's at-least-once delivery (QoS 1, persistent session, manual acknowledgement):

- Authentication: amqtt's anonymous plugin marks every session anonymous, even one with
  a valid user, and amqtt keeps nothing for an anonymous session while it is away. So one
  plugin does both: no username is an anonymous publisher; a username must match the
  password file (amqtt's own FileAuthPlugin check).
- QoS 1 delivery to subscribers: amqtt drops an outgoing message whose PUBACK takes over
  5 s and forgets the unacknowledged ones when the connection closes (upstream issues
  Yakifo/amqtt#391 and #401), and does not serve a reconnecting session (its SUBACK) until
  the resent and queued messages are acknowledged. The patch keeps each message in the
  session until its PUBACK, resends it with DUP at reconnect, and sends the resent and
  queued messages without waiting for their acknowledgements.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import yaml
from amqtt import __version__ as amqtt_version  # type: ignore[import-untyped]
from amqtt.broker import Broker  # type: ignore[import-untyped]
from amqtt.mqtt.protocol.handler import ProtocolHandler  # type: ignore[import-untyped]
from amqtt.plugins.authentication import FileAuthPlugin  # type: ignore[import-untyped]
from amqtt.session import OUTGOING, Session  # type: ignore[import-untyped]

__all__ = ["AnonymousPublishersAuth", "main"]

log = logging.getLogger("contesto.amqtt")

# The amqtt release whose internals `_patch_qos1_delivery` replaces.
PATCHED_RELEASE = "0.12.1"

_background: set[asyncio.Task[Any]] = set()


class AnonymousPublishersAuth(FileAuthPlugin):  # type: ignore[misc]
    """Clients without a username connect anonymously (nothing is kept for them while
    away); a client with a username must match the password file."""

    async def authenticate(self, *, session: Session) -> bool | None:
        if not session.username:
            session.is_anonymous = True
            return True
        accepted: bool | None = await super().authenticate(session=session)
        if accepted:
            session.is_anonymous = False
        return accepted


def _spawn(coroutine: Coroutine[Any, Any, Any]) -> None:
    task = asyncio.ensure_future(coroutine)
    _background.add(task)
    task.add_done_callback(_background.discard)


def _patch_qos1_delivery() -> None:
    original_flow = ProtocolHandler._handle_qos1_message_flow

    async def qos1_flow(self: Any, message: Any) -> None:
        if message.direction != OUTGOING or self.session is None:
            await original_flow(self, message)
            return
        packet_id = message.packet_id
        self.session.inflight_out[packet_id] = message
        if self.writer is None:  # the connection is gone: resend at the next one
            return
        packet = message.build_publish_packet(dup=message.publish_packet is not None)
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._puback_waiters[packet_id] = waiter
        try:
            await self._send_packet(packet)
            message.publish_packet = packet
            # No timeout: a closing connection cancels the waiter, and the message stays
            # in the session to be resent at the next connection.
            message.puback_packet = await waiter
        finally:
            if self._puback_waiters.get(packet_id) is waiter:
                del self._puback_waiters[packet_id]
        self.session.inflight_out.pop(packet_id, None)

    async def retry_deliveries(self: Any) -> None:
        session = self.session
        for message in [*session.inflight_in.values(), *session.inflight_out.values()]:
            _spawn(self._handle_message_flow(message))

    async def publish_queued(self: Any, session: Any) -> None:
        handler = self._get_handler(session)
        if handler is None:
            return
        while not session.retained_messages.empty():
            queued = session.retained_messages.get_nowait()
            _spawn(handler.mqtt_publish(queued.topic, queued.data, queued.qos, retain=True))

    ProtocolHandler._handle_qos1_message_flow = qos1_flow
    ProtocolHandler._retry_deliveries = retry_deliveries
    Broker._publish_session_retained_messages = publish_queued


async def _serve(config: dict[str, Any]) -> None:
    broker = Broker(config)
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.info("amqtt %s serving on %s", amqtt_version, config["listeners"]["default"]["bind"])
    await stop.wait()
    await broker.shutdown()


def main(argv: list[str]) -> int:
    logging.basicConfig(
        level=logging.WARNING, format="[%(asctime)s] %(levelname)s %(name)s: %(message)s"
    )
    log.setLevel(logging.INFO)
    if len(argv) != 2:
        log.error("usage: python -m contesto._amqtt_child CONFIG.yaml")
        return 2
    config = yaml.safe_load(Path(argv[1]).read_text())
    if amqtt_version == PATCHED_RELEASE:
        _patch_qos1_delivery()
    else:
        log.warning(
            "amqtt %s is not %s: running it unpatched, so a QoS 1 message not acknowledged "
            "within 5 s or when the connection closes is lost",
            amqtt_version,
            PATCHED_RELEASE,
        )
    asyncio.run(_serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
