"""The fallback MQTT broker of the embedded stack when Mosquitto is not installed: amqtt
(pure Python, MQTT 3.1.1 only), run as a child process so the API's event loop stays free.

amqtt keeps the QoS 1 messages of a persistent session while its client is away only if
that client authenticated. So the broker takes anonymous publishers (devices, simulator)
and one user for the ingest worker: `credentials`, a random password made once per data
directory and kept there (mode 0600), so a restarted stack reuses it.

Unlike Mosquitto, amqtt keeps its sessions in memory: what is queued for the worker is lost
when the broker itself stops. The process is contesto._amqtt_child, which also fixes
amqtt's QoS 1 redelivery (see there).
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import socket
import sys
from pathlib import Path

import yaml

from contesto._mqtt_broker import LoopbackBroker, MqttBrokerError

__all__ = ["INGEST_USER", "AmqttBroker", "amqtt_config", "amqtt_installed"]

INGEST_USER = "contesto-ingest"
NOT_INSTALLED = (
    "no MQTT broker is installed: `apt-get install mosquitto`, or pip install "
    "'contesto[embedded]' for amqtt (or point CONTESTO_MQTT_HOST/CONTESTO_MQTT_PORT at an "
    "MQTT broker)"
)
_CHILD_MODULE = "contesto._amqtt_child"
_AUTH_PLUGIN = f"{_CHILD_MODULE}.AnonymousPublishersAuth"


def amqtt_installed() -> bool:
    return importlib.util.find_spec("amqtt") is not None


def amqtt_config(host: str, port: int, password_file: Path) -> str:
    """The amqtt broker configuration: one TCP listener, anonymous publishers and the
    users of `password_file` (lines `user:argon2-hash`)."""
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        # A configured plugin list replaces amqtt's defaults ($SYS topics, packet logging).
        "plugins": {_AUTH_PLUGIN: {"password_file": str(password_file)}},
    }
    return yaml.safe_dump(config, sort_keys=False)


class AmqttBroker(LoopbackBroker):
    """Runs amqtt on loopback with its files in `data_dir`; a context manager."""

    _program = "amqtt"
    _log_name = "amqtt.log"
    _default_start_timeout_s = 20.0

    @property
    def _secret_path(self) -> Path:
        return self.data_dir / "ingest.password"

    @property
    def credentials(self) -> tuple[str, str]:
        """The ingest worker's username and password (made on first use, then reused)."""
        try:
            password = self._secret_path.read_text().strip()
        except FileNotFoundError:
            password = ""
        if not password:
            password = secrets.token_urlsafe(24)
            self.data_dir.mkdir(parents=True, exist_ok=True)
            _write_private(self._secret_path, password + "\n")
        return INGEST_USER, password

    def start(self) -> None:
        if not amqtt_installed():
            raise MqttBrokerError(NOT_INSTALLED)
        port = self._pick_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        password_file = self.data_dir / "amqtt.passwd"
        username, password = self.credentials
        _write_private(password_file, f"{username}:{_password_hash(password)}\n")
        config = self.data_dir / "amqtt.yaml"
        config.write_text(amqtt_config(self.host, port, password_file))
        self._run([sys.executable, "-m", _CHILD_MODULE, str(config)], port, _answers)


def _password_hash(password: str) -> str:
    """An Argon2 hash, the format amqtt's password file check (pwdlib) verifies."""
    from pwdlib import PasswordHash  # noqa: PLC0415 - installed with amqtt only
    from pwdlib.hashers.argon2 import Argon2Hasher  # noqa: PLC0415

    return PasswordHash((Argon2Hasher(),)).hash(password)


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by this user only (mode 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(text)


# MQTT 3.1.1 CONNECT (clean session, no client id, no keep-alive) and DISCONNECT: a probe
# that amqtt serves quietly, where a bare TCP connection is logged as an error.
_PROBE_CONNECT = bytes([0x10, 12, 0, 4, *b"MQTT", 4, 0x02, 0, 0, 0, 0])
_PROBE_DISCONNECT = bytes([0xE0, 0])


def _answers(host: str, port: int) -> bool:
    """Whether an MQTT broker accepts an anonymous connection on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(_PROBE_CONNECT)
            connack = sock.recv(4)
            if connack[:1] == b"\x20":
                sock.sendall(_PROBE_DISCONNECT)
                return True
            return False
    except OSError:
        return False
