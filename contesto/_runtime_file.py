"""DATA_DIR/runtime.json: where a running `contesto up` serves, so operator commands on the
same machine find it by themselves. Written once the API serves, readable by its owner
only (it holds the store URL with its password), removed when the stack stops cleanly;
one left by a stack that was killed names a dead PID and is ignored."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from contesto._store_credentials import write_private

if TYPE_CHECKING:
    from contesto._settings import StackSettings

__all__ = [
    "RUNTIME_FILE",
    "NoLocalStack",
    "StackRuntime",
    "read_runtime",
    "remove_runtime",
    "runtime_path",
]

RUNTIME_FILE = "runtime.json"


class NoLocalStack(RuntimeError):
    """No running `contesto up` on the data directory; the message says what to do."""


@dataclass(slots=True, frozen=True)
class StackRuntime:
    """What a running stack serves, as its runtime file records it."""

    pid: int
    api_url: str
    store_url: str
    # The embedded store's own copy of its URL (0600), None with an external MongoDB.
    store_url_file: str | None
    mqtt_host: str | None
    mqtt_port: int | None
    # The MQTT logins of the device groups (regional profile), None without logins.
    mqtt_credentials_file: str | None
    provisioning_url: str | None

    @classmethod
    def of(cls, settings: StackSettings, store_url: str) -> StackRuntime:
        """The runtime of this process's stack, run with `settings` on `store_url`."""
        # Here, not at the top: operator commands read runtime files without the stack.
        from contesto._embedded import URL_FILE  # noqa: PLC0415
        from contesto._stack_mqtt import access_files  # noqa: PLC0415

        data_dir = settings.data_dir.absolute()
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        web_host = f"[{host}]" if ":" in host else host
        mqtt_host = settings.mqtt_host if settings.ingest else None
        credentials = None
        if settings.ingest and settings.auth_required and not settings.mqtt_external:
            credentials = str(access_files(settings).credentials_path)
        return cls(
            pid=os.getpid(),
            api_url=f"http://{web_host}:{settings.port}/ngsi-ld/v1",
            store_url=store_url,
            store_url_file=None if settings.mongo_url else str(data_dir / "db" / URL_FILE),
            mqtt_host=mqtt_host,
            mqtt_port=settings.mqtt_port if settings.ingest else None,
            mqtt_credentials_file=credentials,
            provisioning_url=(
                f"http://{web_host}:{settings.provisioning_port}/iot" if settings.ingest else None
            ),
        )

    def write(self, data_dir: Path) -> Path:
        path = runtime_path(data_dir)
        write_private(path, json.dumps(asdict(self), indent=2) + "\n")
        return path


def runtime_path(data_dir: Path) -> Path:
    return data_dir.absolute() / RUNTIME_FILE


def remove_runtime(data_dir: Path) -> None:
    runtime_path(data_dir).unlink(missing_ok=True)


def read_runtime(data_dir: Path) -> StackRuntime:
    """The runtime of the stack running on `data_dir`; NoLocalStack if none runs there."""
    path = runtime_path(data_dir)
    try:
        fields = json.loads(path.read_text(encoding="utf-8"))
        runtime = StackRuntime(**fields)
    except FileNotFoundError:
        raise NoLocalStack(f"no running `contesto up` found ({path} does not exist)") from None
    except (OSError, ValueError, TypeError) as exc:
        raise NoLocalStack(f"{path} is not a runtime file of `contesto up`: {exc}") from None
    if not _running(runtime.pid):
        raise NoLocalStack(
            f"{path} is stale: the `contesto up` that wrote it (PID {runtime.pid}) "
            "no longer runs; it was ignored"
        )
    return runtime


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
