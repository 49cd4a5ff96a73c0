"""`contesto devices ...`: provision, list, show and delete devices in the device registry.

Works on the registry's database directly (--store-url or CONTESTO_MONGO_URL, else the
running local `contesto up`); the files are in the
FIWARE IoT Agent provisioning shape that `POST /iot/services` and `POST /iot/devices` take.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from contesto._cli_stack import DataDir, stack_store_url
from contesto._cli_stack import StoreUrl as MongoUrl

if TYPE_CHECKING:
    from contesto._mqtt_access import MqttAccessFiles
    from sensor_ingest import Device, DeviceRegistry, Format, ServiceGroup

__all__ = ["devices_app"]

T = TypeVar("T")

devices_app = typer.Typer(
    name="devices",
    help="The device registry: provision service groups and devices from IoT Agent JSON "
    "files, list, show and delete them. Works on the store of --store-url or "
    "CONTESTO_MONGO_URL, else on the running local `contesto up` (its DATA_DIR/runtime.json).",
    no_args_is_help=True,
    rich_markup_mode=None,
)

DEFAULT_DATABASE = "contesto_ingest"
# sensor_ingest's provisioning FORMATS, written out for --help (a test holds them equal):
# the command line is built without importing what its commands work with.
FORMAT_NAMES = ("iotagent-json", "ttn-v3", "chirpstack-v4", "flat-json")
_STORE_TIMEOUT_MS = 10_000

Tenant = Annotated[
    str,
    typer.Option(
        "--tenant",
        "-t",
        help="The tenant: the fiware-service of the IoT Agent API, NGSILD-Tenant of the broker.",
    ),
]
Database = Annotated[
    str, typer.Option("--database", help="Database that holds the registry.", show_default=True)
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--apikey",
        help="The device's group (apikey, TTN or ChirpStack application id), needed when "
        "the tenant uses the same device id in several groups.",
    ),
]
FormatOption = Annotated[
    str | None,
    typer.Option("--format", help=f"The device's message format: {', '.join(FORMAT_NAMES)}."),
]


class _Failed(Exception):
    """A command's error, printed as `error: ...` with exit code 1."""


def _console() -> Console:
    return Console(soft_wrap=True, highlight=False)


@devices_app.command("provision")
def provision(
    file: Annotated[
        Path,
        typer.Argument(
            help='A JSON file in the IoT Agent shape: {"services": [...], "devices": [...]}, '
            "either member optional.",
            show_default=False,
        ),
    ],
    tenant: Tenant,
    mongo_url: MongoUrl = None,
    database: Database = DEFAULT_DATABASE,
    data_dir: DataDir = None,
) -> None:
    """Create or update the service groups and devices of FILE for one tenant.

    Service groups come first, so devices may name the file's own groups. Running a file
    again updates what it provisioned. Nothing is written when any entry is invalid.
    """

    async def work(registry: DeviceRegistry) -> None:
        from sensor_ingest._provisioning import provisioning_from_json, tenant_of

        key = tenant_of(tenant)
        body = _read_json(file)
        await registry.ensure_indexes()
        plan = provisioning_from_json(body, key, await registry.list_groups(key))
        records: tuple[ServiceGroup | Device, ...] = (*plan.groups, *plan.devices)
        for record in records:
            created = await registry.put(record)
            typer.echo(f"{_described(record)}: {'created' if created else 'updated'}")
        typer.echo(
            f"{_count(len(plan.groups), 'service group')} and "
            f"{_count(len(plan.devices), 'device')} provisioned for tenant {key}"
        )

    _run(mongo_url, data_dir, database, work)


@devices_app.command("list")
def list_devices(
    tenant: Tenant,
    mongo_url: MongoUrl = None,
    database: Database = DEFAULT_DATABASE,
    data_dir: DataDir = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Devices per page.")] = 100,
    offset: Annotated[int, typer.Option(min=0, help="Devices to skip.")] = 0,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the groups and devices as a file `contesto devices provision` takes.",
        ),
    ] = False,
) -> None:
    """List a tenant's service groups and devices."""

    async def work(registry: DeviceRegistry) -> None:
        from sensor_ingest._provisioning import device_to_json, group_to_json, tenant_of

        key = tenant_of(tenant)
        groups = await registry.list_groups(key)
        devices, total = await registry.list_devices(key, limit=limit, offset=offset)
        if as_json:
            body = {
                "services": [_provisionable(group_to_json(g)) for g in groups],
                "devices": [_provisionable(device_to_json(d, effective=False)) for d in devices],
            }
            typer.echo(json.dumps(body, indent=2, ensure_ascii=False))
            return
        _print_tables(key, groups, devices, total, offset)

    _run(mongo_url, data_dir, database, work)


DeviceId = Annotated[str, typer.Argument(help="The device id.", show_default=False)]
DeviceWork = Callable[["DeviceRegistry", "Device"], Awaitable[None]]


async def _show(registry: DeviceRegistry, device: Device) -> None:
    """Show one device as JSON: what was provisioned, with the entity id and type it gets."""
    from sensor_ingest._provisioning import device_to_json

    group = await registry.get_group(device.tenant, device.format, device.group)
    typer.echo(json.dumps(device_to_json(device, group), indent=2, ensure_ascii=False))


async def _delete(registry: DeviceRegistry, device: Device) -> None:
    """Delete one device; its group stays (an autoprovisioning group still accepts it)."""
    await registry.remove(device)
    typer.echo(f"device {device.device_id} deleted from {device.group} ({device.format})")


def _device_command(name: str, work: DeviceWork) -> None:
    """`contesto devices NAME DEVICE_ID --tenant T ...`: `work` on one device, named by the
    options every such command shares; its docstring is the command's help."""

    @devices_app.command(name, help=work.__doc__)
    def command(
        device_id: DeviceId,
        tenant: Tenant,
        mongo_url: MongoUrl = None,
        database: Database = DEFAULT_DATABASE,
        data_dir: DataDir = None,
        apikey: ApiKey = None,
        format: FormatOption = None,
    ) -> None:
        _on_device(mongo_url, data_dir, database, tenant, device_id, apikey, format, work)


_device_command("show", _show)
_device_command("delete", _delete)


def _on_device(
    mongo_url: str | None,
    data_dir: Path | None,
    database: str,
    tenant: str,
    device_id: str,
    apikey: str | None,
    format: str | None,
    work: DeviceWork,
) -> None:
    """Run `work` on the tenant's device named by the options; no such device is an error."""

    async def found(registry: DeviceRegistry) -> None:
        from sensor_ingest._provisioning import tenant_of

        key = tenant_of(tenant)
        device = await registry.get_device(
            key, device_id, format=_format(format), group=apikey or None
        )
        if device is None:
            where = f" in group {apikey}" if apikey else ""
            raise _Failed(f"no device {device_id!r}{where} in tenant {key!r}")
        await work(registry, device)

    _run(mongo_url, data_dir, database, found)


def _described(record: ServiceGroup | Device) -> str:
    from sensor_ingest import Device

    if isinstance(record, Device):
        return f"device {record.device_id} in {record.group} ({record.format})"
    return f"service group {record.group} ({record.format})"


def _format(value: str | None) -> Format | None:
    from sensor_ingest._provisioning import FORMATS

    if value is None:
        return None
    for known in FORMATS:
        if value == known:
            return known
    raise _Failed(f"--format must be one of {', '.join(FORMATS)}; got {value!r}")


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _Failed(f"cannot read {path}: {exc}") from None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise _Failed(f"{path} is not valid JSON: {exc}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _provisionable(body: dict[str, Any]) -> dict[str, Any]:
    """Without the read-only members (`service`, `subservice`, `service_path`)."""
    return {k: v for k, v in body.items() if k not in {"service", "subservice", "service_path"}}


def _print_tables(
    tenant: str, groups: list[ServiceGroup], devices: list[Device], total: int, offset: int
) -> None:
    from sensor_ingest import bind
    from sensor_ingest._devices import bind_device_only

    console = _console()
    table = _table(
        f"Service groups of {tenant}",
        "apikey",
        "format",
        "entity type",
        "model / profile",
        "autoprovision",
    )
    for group in groups:
        table.add_row(
            group.group,
            group.format,
            group.entity_type,
            group.profile or group.model or "-",
            "yes" if group.autoprovision else "no",
        )
    console.print(table)
    by_key = {(g.format, g.group): g for g in groups}
    table = _table(f"Devices of {tenant}", "device", "apikey", "format", "entity id", "entity type")
    for device in devices:
        own = by_key.get((device.format, device.group))
        if own is not None:
            binding = bind(own, device.device_id, device)
            entity_id, entity_type = binding.entity_id, binding.entity_type
        elif device.entity_type is not None:
            binding = bind_device_only(device)
            entity_id, entity_type = binding.entity_id, binding.entity_type
        else:
            entity_id, entity_type = "- (no group)", "-"
        table.add_row(device.device_id, device.group, device.format, entity_id, entity_type)
    console.print(table)
    shown = f"{offset + 1}-{offset + len(devices)} of {total}" if devices else f"none of {total}"
    console.print(f"{_count(len(groups), 'service group')}; devices {shown}")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _table(title: str, *columns: str) -> Table:
    """A table whose cells fold rather than lose characters: ids must stay whole."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _run(
    explicit_url: str | None,
    data_dir: Path | None,
    database: str,
    work: Callable[[DeviceRegistry], Awaitable[T]],
) -> T:
    """Run `work` on the registry of the store the command names (`_cli_stack.py`); every
    expected failure is `error: ...` and exit code 1."""
    # Which store first: without one the command fails before it imports the registry.
    mongo_url = stack_store_url(explicit_url, data_dir)
    from sensor_ingest._provisioning import ProvisioningError
    from sensor_ingest._registry import RegistryError

    try:
        return asyncio.run(_with_registry(mongo_url, database, work))
    except (_Failed, ProvisioningError, RegistryError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


async def _with_registry(
    mongo_url: str, database: str, work: Callable[[DeviceRegistry], Awaitable[T]]
) -> T:
    async with _registry(mongo_url, database) as registry:
        return await work(registry)


@asynccontextmanager
async def _registry(mongo_url: str, database: str) -> AsyncIterator[DeviceRegistry]:
    from pymongo import AsyncMongoClient
    from pymongo.errors import PyMongoError

    from sensor_ingest import DeviceRegistry

    try:
        # A store that does not answer fails in seconds, unless the URL says otherwise.
        options: dict[str, Any] = {}
        if "serverselectiontimeoutms" not in mongo_url.lower():
            options["serverSelectionTimeoutMS"] = _STORE_TIMEOUT_MS
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            mongo_url, tz_aware=True, **options
        )
    except (PyMongoError, ValueError, TypeError) as exc:
        raise _Failed(f"CONTESTO_MONGO_URL / --mongo-url is not a MongoDB URL: {exc}") from None
    try:
        try:
            registry = DeviceRegistry(client[database], cache_ttl_s=0)
        except PyMongoError as exc:
            raise _Failed(f"--database {database!r} is not a database name: {exc}") from None
        yield registry
    finally:
        await client.close()


@devices_app.command("mqtt-acl")
def mqtt_acl(
    out: Annotated[Path, typer.Option(help="Directory for the acl, passwd and credentials.")],
    mongo_url: MongoUrl = None,
    database: Database = DEFAULT_DATABASE,
    data_dir: DataDir = None,
    ingest_user: Annotated[str, typer.Option(help="The ingest workers' MQTT user.")] = (
        "contesto-ingest"
    ),
    every: Annotated[
        float | None,
        typer.Option(
            min=0.1,
            help="Keep running: look at the registry every this many seconds and rewrite the "
            "files when the groups changed, until SIGTERM or Ctrl-C (a sidecar of a Mosquitto "
            "that reloads changed files, as deploy/mosquitto/run-mosquitto.sh does).",
        ),
    ] = None,
) -> None:
    """Write Mosquitto's `acl_file` and `password_file` from the registry: one MQTT user per
    device group, allowed to publish only on its own topics; the ingest user reads all.

    Passwords already in OUT/credentials are kept, new users get random ones; hand each
    group's line of OUT/credentials (mode 0600) to its vendor. Point mosquitto.conf at
    OUT/acl (acl_file) and OUT/passwd (password_file), set allow_anonymous false, and
    reload Mosquitto (SIGHUP).
    """
    from contesto._mqtt_access import MqttAccessError, MqttAccessFiles

    if every is not None:
        files = MqttAccessFiles(out, ingest_user)
        _run(mongo_url, data_dir, database, lambda registry: _keep_in_step(registry, files, every))
        return
    groups = _run(mongo_url, data_dir, database, lambda registry: registry.all_groups())
    try:
        MqttAccessFiles(out, ingest_user).write(groups)
    except MqttAccessError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{len(groups)} group user(s) and {ingest_user}: wrote {out}/acl, {out}/passwd")


async def _keep_in_step(registry: DeviceRegistry, files: MqttAccessFiles, every_s: float) -> None:
    """Rewrite the access files whenever the registry's groups change, until SIGTERM/SIGINT."""
    from contesto._mqtt_access import keep_access_in_step

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # Reloading is left to whoever runs Mosquitto: it may be in another container.
    await keep_access_in_step(registry.all_groups, files, lambda: None, stop, every_s)
