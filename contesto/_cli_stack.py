"""How an operator command finds the stack it works on: an explicit URL first (the option,
else its environment variable), else the runtime file of the local `contesto up`
(DATA_DIR/runtime.json, with DATA_DIR from --data-dir, CONTESTO_DATA_DIR or ./var)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from contesto._runtime_file import StackRuntime

__all__ = [
    "ApiUrl",
    "DataDir",
    "MqttTarget",
    "StoreUrl",
    "local_runtime",
    "stack_api_url",
    "stack_mqtt",
    "stack_store_url",
]

_ORDER = "; else the running `contesto up` of --data-dir, found in DATA_DIR/runtime.json"

StoreUrl = Annotated[
    str | None,
    typer.Option(
        "--store-url",
        "--mongo-url",
        envvar="CONTESTO_MONGO_URL",
        show_envvar=False,
        help="The store (MongoDB URL) [env CONTESTO_MONGO_URL]" + _ORDER + ".",
    ),
]
ApiUrl = Annotated[
    str | None,
    typer.Option(
        "--url",
        "--broker-url",
        envvar="CONTESTO_BROKER_URL",
        show_envvar=False,
        help="The NGSI-LD API, e.g. http://127.0.0.1:1026/ngsi-ld/v1 [env CONTESTO_BROKER_URL]"
        + _ORDER
        + ".",
    ),
]
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="The data directory of the local `contesto up`, whose runtime file says where "
        "its store, API and MQTT broker are when no URL or setting names them "
        "[env CONTESTO_DATA_DIR; ./var].",
    ),
]


def local_runtime(data_dir: Path | None, wanted: str) -> StackRuntime:
    """The running local stack, or exit 1 saying why none was found and what to give."""
    from contesto._runtime_file import NoLocalStack, read_runtime
    from contesto._settings import StackSettings

    directory = data_dir if data_dir is not None else StackSettings().data_dir
    try:
        return read_runtime(directory)
    except NoLocalStack as exc:
        typer.secho(
            f"error: {exc}; give {wanted}, or start the stack with `contesto up`",
            err=True,
            fg=typer.colors.RED,
        )
        raise typer.Exit(1) from None


def stack_store_url(explicit: str | None, data_dir: Path | None) -> str:
    """The store of the command: `explicit` (--store-url or CONTESTO_MONGO_URL) or the local
    stack's."""
    if explicit:
        return explicit
    return local_runtime(data_dir, "--store-url (or CONTESTO_MONGO_URL)").store_url


def stack_api_url(explicit: str | None, data_dir: Path | None) -> str:
    """The NGSI-LD API of the command: `explicit` (--url or CONTESTO_BROKER_URL) or the local
    stack's."""
    if explicit:
        return explicit
    return local_runtime(data_dir, "--url (or CONTESTO_BROKER_URL)").api_url


@dataclass(slots=True, frozen=True)
class MqttTarget:
    """Where to publish, and the device groups' logins file (regional profile) if any."""

    host: str
    port: int
    credentials: Path | None


def stack_mqtt(
    host: str | None, port: int | None, credentials: Path | None, data_dir: Path | None
) -> MqttTarget:
    """The MQTT broker as `contesto up` sees it: each of host, port and logins from its option,
    else from CONTESTO_MQTT_HOST, CONTESTO_MQTT_PORT, else from the running local stack, else
    the defaults; the logins of the regional profile (CONTESTO_AUTH_REQUIRED) from
    DATA_DIR/mqtt/access/credentials."""
    from contesto._runtime_file import NoLocalStack, read_runtime
    from contesto._settings import StackSettings
    from contesto._stack_mqtt import access_files

    stack = StackSettings() if data_dir is None else StackSettings(data_dir=data_dir)
    from_env = stack.model_fields_set
    try:
        running: StackRuntime | None = read_runtime(stack.data_dir)
    except NoLocalStack:
        running = None
    if host is None:
        host = stack.mqtt_host
        if "mqtt_host" not in from_env and running is not None and running.mqtt_host:
            host = running.mqtt_host
    if port is None:
        port = stack.mqtt_port
        if "mqtt_port" not in from_env and running is not None and running.mqtt_port:
            port = running.mqtt_port
    if credentials is None:
        if running is not None and running.mqtt_credentials_file:
            credentials = Path(running.mqtt_credentials_file)
        elif stack.auth_required and not stack.mqtt_external:
            credentials = access_files(stack).credentials_path
    return MqttTarget(host, port, credentials)
