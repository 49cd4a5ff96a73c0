"""`contesto up` runs ingest as a child process (`python -m contesto ingest`), as in production."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Literal

from contesto._child import ChildProcess
from contesto._embedded import port_in_use
from contesto._settings import StackSettings

__all__ = ["IngestChild", "IngestChildError", "ingest_status_path"]


def ingest_status_path(data_dir: Path, index: int = 0) -> Path:
    """Where the stack's ingest worker `index` writes its status for the API's readiness."""
    name = "ingest-status.json" if index == 0 else f"ingest-status-{index}.json"
    return data_dir.absolute() / name


class IngestChildError(RuntimeError):
    """The ingest process did not start."""


class IngestChild(ChildProcess):
    """Ingest worker `index` of the stack, its log in DATA_DIR/ingest.log (worker 0, which
    also serves device provisioning) or DATA_DIR/ingest-INDEX.log; a context manager.

    Workers share the MQTT v5 subscription group, each with its own client id and session.
    """

    _error = IngestChildError
    _stop_timeout_s = 15.0
    # Ingest acknowledges a message only once it is stored: killing it loses nothing, and
    # its graceful stop can wait long on a store that died with the stack.
    _death_signal = signal.SIGKILL

    def __init__(
        self,
        settings: StackSettings,
        mongo_url: str,
        start_timeout_s: float = 30.0,
        *,
        mqtt_credentials: tuple[str, str] | None = None,
        mqtt_protocol: Literal["5", "3.1.1"] | None = None,
        mqtt_access: tuple[Path, Path] | None = None,
        index: int = 0,
    ):
        self.index = index
        self._settings = settings
        self._mongo_url = mongo_url
        self._mqtt_credentials = mqtt_credentials
        self._mqtt_protocol = mqtt_protocol
        self._mqtt_access = mqtt_access
        self._start_timeout_s = start_timeout_s
        data_dir = settings.data_dir.absolute()
        self.log_path = data_dir / ("ingest.log" if index == 0 else f"ingest-{index}.log")
        self.status_path = ingest_status_path(data_dir, index)

    def start(self) -> None:
        settings = self._settings
        host, port = settings.host, settings.provisioning_port
        if self.index == 0 and port_in_use(host, port):
            raise IngestChildError(
                f"port {port} on {host} (device provisioning) is already in use: "
                "choose another with CONTESTO_PROVISIONING_PORT"
            )
        api_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        env = {
            **os.environ,
            "CONTESTO_MONGO_URL": self._mongo_url,
            "CONTESTO_MQTT_HOST": settings.mqtt_host,
            "CONTESTO_MQTT_PORT": str(settings.mqtt_port),
            "CONTESTO_BROKER_URL": f"http://{api_host}:{settings.port}/ngsi-ld/v1",
            "CONTESTO_INGEST_STATUS_FILE": str(self.status_path),
            # A lone worker takes the plain filters, which survive a restart of Mosquitto.
            "CONTESTO_MQTT_SHARED": "true" if settings.workers > 1 else "false",
        }
        if self._mqtt_protocol is not None:
            env["CONTESTO_MQTT_PROTOCOL"] = self._mqtt_protocol
        if self._mqtt_access is not None:
            access_dir, pid_file = self._mqtt_access
            env["CONTESTO_MQTT_ACCESS_DIR"] = str(access_dir)
            env["CONTESTO_MQTT_BROKER_PID_FILE"] = str(pid_file)
        if self._mqtt_credentials is not None:
            env["CONTESTO_MQTT_USERNAME"], env["CONTESTO_MQTT_PASSWORD"] = self._mqtt_credentials
        command = [sys.executable, "-m", "contesto", "ingest", "--host", host, "--port", str(port)]
        if self.index > 0:
            client_id = os.environ.get("CONTESTO_MQTT_CLIENT_ID", "contesto-ingest")
            env["CONTESTO_MQTT_CLIENT_ID"] = f"{client_id}-{self.index}"
            command.append("--no-provisioning")
        elif settings.demo_tenants:
            command.append("--demo")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # Until the new process writes its own, no status: the API is not ready.
        self.status_path.unlink(missing_ok=True)
        offset = self._spawn(command, env=env)
        # Worker 0 is up once it serves provisioning, the others once they report a status.
        self._wait_until(
            (lambda: port_in_use(host, port)) if self.index == 0 else self.status_path.exists,
            offset,
            "the ingest process did not start",
            poll_s=0.1,
        )
