"""The MQTT broker of the embedded stack: Mosquitto as a child process, with our config.

Mosquitto keeps QoS 1 messages of persistent sessions on disk, so a restarted ingest
worker gets everything it did not acknowledge. The config lifts Mosquitto's default
queue bound (1,000 messages per offline client, then it drops) to a size that covers a
long worker outage.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from contesto._embedded import free_port, log_tail, port_in_use, stop_process

__all__ = ["MosquittoBroker", "MqttBrokerError", "find_mosquitto"]

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


def mosquitto_config(host: str, port: int, data_dir: Path) -> str:
    """A Mosquitto 2 configuration for a loopback development or test broker."""
    return "\n".join(
        [
            f"listener {port} {host}",
            "allow_anonymous true",
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
            "log_type error",
            "log_type warning",
            "log_type notice",
            "",
        ]
    )


class MosquittoBroker:
    """Runs Mosquitto on loopback with its state in `data_dir`; a context manager."""

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        start_timeout_s: float = 10.0,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.host = host
        self.log_path = self.data_dir / "mosquitto.log"
        self._requested_port = port
        self._port: int | None = None
        self._start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise MqttBrokerError("the MQTT broker is not running")
        return self._port

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        executable = find_mosquitto()
        if executable is None:
            raise MqttBrokerError(NOT_INSTALLED)
        port = self._requested_port or free_port(self.host)
        if port_in_use(self.host, port):
            raise MqttBrokerError(f"port {port} on {self.host} is already in use")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "mosquitto.conf"
        config.write_text(mosquitto_config(self.host, port, self.data_dir))
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [str(executable), "-c", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._port = port
        deadline = time.monotonic() + self._start_timeout_s
        while not _answers(self.host, port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                tail = log_tail(self.log_path, offset)
                self.stop()
                raise MqttBrokerError(f"Mosquitto did not start on {self.host}:{port}:\n{tail}")
            time.sleep(0.05)

    def stop(self) -> None:
        process, self._process = self._process, None
        self._port = None
        stop_process(process, 10.0)

    def __enter__(self) -> MosquittoBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False
