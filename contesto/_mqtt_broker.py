"""The MQTT broker of the embedded stack: Mosquitto as a child process, with our config.

Mosquitto keeps QoS 1 messages of persistent sessions on disk, so a restarted ingest
worker gets everything it did not acknowledge. The config lifts Mosquitto's default
queue bound (1,000 messages per offline client, then it drops) to a size that covers a
long worker outage.
"""

from __future__ import annotations

import getpass
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from contesto._child import ChildServer
from contesto._embedded import free_port, port_in_use

__all__ = ["LoopbackBroker", "MosquittoBroker", "MqttBrokerError", "find_mosquitto"]

MOSQUITTO = "mosquitto"
NOT_INSTALLED = (
    "Mosquitto is not installed: `apt-get install mosquitto` "
    "(or point CONTESTO_MQTT_HOST/CONTESTO_MQTT_PORT at an MQTT broker)"
)


class MqttBrokerError(RuntimeError):
    """The local MQTT broker could not be found or started."""


def find_mosquitto() -> Path | None:
    """The Mosquitto executable (Debian installs it in /usr/sbin), or None."""
    found = shutil.which(MOSQUITTO) or shutil.which(MOSQUITTO, path="/usr/sbin:/usr/local/sbin")
    return Path(found) if found else None


def mosquitto_config(
    host: str,
    port: int,
    data_dir: Path,
    access: Path | None = None,
    message_size_limit: int = 0,
) -> str:
    """A Mosquitto 2 configuration; with `access` (a directory written by
    `contesto devices mqtt-acl`), only known users, each on its own topics.

    Mosquitto acknowledges a message whose payload is over `message_size_limit` bytes
    (0: no limit) and drops it, so it never reaches ingest."""
    if access is None:
        login = ["allow_anonymous true"]
    else:
        login = [
            "allow_anonymous false",
            f"password_file {access / 'passwd'}",
            f"acl_file {access / 'acl'}",
        ]
    return "\n".join(
        [
            # Run as whoever started the stack: it owns the data and password files.
            f"user {getpass.getuser()}",
            f"listener {port} {host}",
            *login,
            "persistence true",
            f"persistence_location {data_dir}/",
            "autosave_interval 5",
            # 0 = no bound on in-flight QoS 1 messages to MQTT 3.1.1 clients; v5 clients
            # bound it themselves with Receive Maximum.
            "max_inflight_messages 0",
            "max_queued_messages 2000000",
            "max_queued_bytes 0",
            "persistent_client_expiration 14d",
            "set_tcp_nodelay true",
            # Not max_packet_size, which Mosquitto recommends: that one disconnects the
            # client, which then sends the same message again at every reconnection.
            f"message_size_limit {message_size_limit}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "",
        ]
    )


class LoopbackBroker(ChildServer):
    """An MQTT broker run on loopback with its files in `data_dir`; a context manager.

    `start_timeout_s` defaults to the subclass's `_default_start_timeout_s`.
    """

    _error = MqttBrokerError
    _name = "the MQTT broker"
    _program: ClassVar[str]
    _log_name: ClassVar[str]
    _default_start_timeout_s: ClassVar[float]

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        start_timeout_s: float | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.host = host
        self.log_path = self.data_dir / self._log_name
        self._requested_port = port
        self._start_timeout_s = (
            self._default_start_timeout_s if start_timeout_s is None else start_timeout_s
        )

    def _pick_port(self) -> int:
        """The requested port, else a free one; an error if a server already listens there."""
        port = self._requested_port or free_port(self.host)
        if port_in_use(self.host, port):
            raise MqttBrokerError(f"port {port} on {self.host} is already in use")
        return port

    def _run(self, command: list[str], port: int, answers: Callable[[str, int], bool]) -> None:
        """Start the broker and return once `answers(host, port)`; an error if it does not."""
        offset = self._spawn(command)
        self._port = port
        self._wait_until(
            lambda: answers(self.host, port),
            offset,
            f"{self._program} did not start on {self.host}:{port}",
        )


class MosquittoBroker(LoopbackBroker):
    """Runs Mosquitto on loopback with its state in `data_dir`; a context manager."""

    _program = "Mosquitto"
    _log_name = "mosquitto.log"
    _default_start_timeout_s = 10.0
    # Set to a `contesto devices mqtt-acl` output directory to require logins and ACLs.
    access: Path | None = None
    # Payloads over this many bytes are acknowledged and dropped; 0: no limit.
    message_size_limit: int = 0

    def start(self) -> None:
        executable = find_mosquitto()
        if executable is None:
            raise MqttBrokerError(NOT_INSTALLED)
        port = self._pick_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "mosquitto.conf"
        config.write_text(
            mosquitto_config(self.host, port, self.data_dir, self.access, self.message_size_limit)
        )
        self._run([str(executable), "-c", str(config)], port, _answers)
        if self._process is not None:
            self.pid_file.write_text(f"{self._process.pid}\n")

    @property
    def pid_file(self) -> Path:
        """Where the running Mosquitto's pid is written (for a reload by SIGHUP)."""
        return self.data_dir / "mosquitto.pid"


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False
