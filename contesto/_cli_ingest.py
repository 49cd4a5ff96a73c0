"""`contesto ingest`, `contesto simulate` and `contesto dead-letter ...`."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import orjson
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from contesto._cli_stack import DataDir, StoreUrl, stack_mqtt, stack_store_url
from contesto._cli_tables import add_whole_column

if TYPE_CHECKING:
    from contesto._ingest import IngestRuntime
    from sensor_ingest import IngestSettings
    from sensor_ingest._mqtt import MqttPublisher

__all__ = ["dead_letter_app", "ingest", "simulate"]

T = TypeVar("T")

dead_letter_app = typer.Typer(
    help="Messages that could not become entities: list them, read why, replay them. Works "
    "on the store of --store-url or CONTESTO_MONGO_URL, else on the running local "
    "`contesto up` (its DATA_DIR/runtime.json).",
    no_args_is_help=True,
    rich_markup_mode=None,
)

_console = Console()


def ingest(
    host: Annotated[
        str, typer.Option(help="Address of the device provisioning API (/iot).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the device provisioning API.")] = 4041,
    provisioning: Annotated[
        bool,
        typer.Option(
            help="Serve the device provisioning API; one worker of a group does, the others "
            "only ingest."
        ),
    ] = True,
    demo: Annotated[
        bool, typer.Option(help="Provision the demo devices of Firenze and Prato first.")
    ] = False,
) -> None:
    """Run an ingest worker: MQTT -> decode -> validate -> outbox -> NGSI-LD broker.

    Reads CONTESTO_MONGO_URL (store), CONTESTO_MQTT_HOST/PORT/USERNAME/PASSWORD/PROTOCOL
    (MQTT broker; v5 shared subscription `$share/contesto/...` unless CONTESTO_MQTT_PROTOCOL
    is 3.1.1) and CONTESTO_BROKER_URL (NGSI-LD API the outbox is published to).
    Several workers may run side by side. Ctrl-C or SIGTERM stops it; what it did not
    acknowledge, MQTT delivers again.
    """
    from contesto._ingest import serve_ingest
    from sensor_ingest import IngestSettings, MqttError

    settings = IngestSettings()
    if demo:
        asyncio.run(_provision_demo(settings))
    try:
        serve_ingest(settings, provisioning=(host, port) if provisioning else None, say=typer.echo)
    except MqttError as exc:
        typer.secho(f"contesto ingest: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None


async def _provision_demo(settings: IngestSettings) -> None:
    from contesto._demo import DEMO_DEVICES, DEMO_GROUPS
    from contesto._ingest import open_ingest

    async with open_ingest(settings) as runtime:
        for group in DEMO_GROUPS:
            await runtime.registry.put_group(group)
        for device in DEMO_DEVICES:
            await runtime.registry.put_device(device)


def simulate(
    count: Annotated[int, typer.Option(help="How many messages to publish.")] = 100,
    rate: Annotated[float, typer.Option(help="Messages per second (0: as fast as possible).")] = 10,
    mqtt_host: Annotated[
        str | None,
        typer.Option(help="MQTT broker host [env CONTESTO_MQTT_HOST; the local stack's]."),
    ] = None,
    mqtt_port: Annotated[
        int | None,
        typer.Option(help="MQTT broker port [env CONTESTO_MQTT_PORT; the local stack's; 1883]."),
    ] = None,
    credentials: Annotated[
        Path | None,
        typer.Option(
            help="Log in as each demo group's MQTT user, from this `credentials` file "
            "[the local stack's in the regional profile, or DATA_DIR/mqtt/access/credentials "
            "with CONTESTO_AUTH_REQUIRED=true; none: anonymous]."
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Publish demo sensor data: Firenze air quality (IoT Agent JSON), Prato air quality
    (The Things Stack v3) and Prato parking bays (flat JSON), as `make run` provisions them.

    Each of the MQTT host, port and logins comes from its option, else from the
    CONTESTO_MQTT_* settings `contesto up` reads, else from the running local `contesto up`.
    Then look at http://127.0.0.1:1026/ngsi-ld/v1/entities?type=AirQualityObserved with
    the header `NGSILD-Tenant: firenze`.
    """
    from contesto._demo import simulated_messages
    from sensor_ingest import MqttError, MqttOptions
    from sensor_ingest._mqtt import MqttPublisher
    from sensor_ingest._mqtt_acl import group_user

    target = stack_mqtt(mqtt_host, mqtt_port, credentials, data_dir)
    mqtt_host, mqtt_port, credentials = target.host, target.port, target.credentials
    interval = 1.0 / rate if rate > 0 else 0.0
    try:
        logins = _logins(credentials)
        with contextlib.ExitStack() as open_publishers, Progress(console=_console) as progress:
            publishers: dict[str | None, MqttPublisher] = {}
            task = progress.add_task("publishing", total=count)
            started = time.monotonic()
            for n, message in enumerate(simulated_messages(count)):
                user = group_user(message.group) if logins is not None else None
                publisher = publishers.get(user)
                if publisher is None:
                    options = MqttOptions(host=mqtt_host, port=mqtt_port)
                    if user is not None and logins is not None:
                        options = replace(options, username=user, password=logins.get(user, ""))
                    publisher = open_publishers.enter_context(MqttPublisher(options))
                    publishers[user] = publisher
                publisher.publish(message.topic, message.payload, wait=False)
                progress.advance(task)
                if interval:
                    time.sleep(max(0.0, started + (n + 1) * interval - time.monotonic()))
            for publisher in publishers.values():
                publisher.flush()
    except (MqttError, OSError) as exc:
        hint = ""
        if credentials is None and "Not authorized" in str(exc):
            hint = (
                " (the regional profile asks for logins: --credentials var/mqtt/access/credentials)"
            )
        typer.secho(f"contesto simulate: {exc}{hint}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    typer.echo(f"published {count} messages to {mqtt_host}:{mqtt_port}")


def _logins(credentials: Path | None) -> dict[str, str] | None:
    """Each MQTT user's password from a `credentials` file, or None for anonymous."""
    from sensor_ingest import MqttError

    if credentials is None:
        return None
    try:
        text = credentials.read_text()
    except OSError as exc:
        raise MqttError(f"cannot read {credentials}: {exc.strerror}") from None
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _with_runtime(
    explicit_url: str | None,
    data_dir: Path | None,
    action: Callable[[IngestRuntime], Awaitable[T]],
) -> T:
    """Run `action` on the ingest store the command names (`_cli_stack.py`)."""
    # Which store first: without one the command fails before it imports the pipeline.
    mongo_url = stack_store_url(explicit_url, data_dir)
    from contesto._ingest import open_ingest
    from sensor_ingest import IngestSettings
    from store_edge import StoreError

    settings = IngestSettings(mongo_url=mongo_url)

    async def main() -> T:
        async with open_ingest(settings) as runtime:
            return await action(runtime)

    try:
        return asyncio.run(main())
    except StoreError as exc:
        typer.secho(f"cannot reach the store: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None


TenantOption = Annotated[str | None, typer.Option(help="Only this tenant's dead letters.")]


@dead_letter_app.command("list")
def list_letters(
    tenant: TenantOption = None,
    reason: Annotated[
        str | None, typer.Option(help="Only this reason, e.g. invalid-entity, unknown-device.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
    store_url: StoreUrl = None,
    data_dir: DataDir = None,
) -> None:
    """The newest dead letters: when, tenant, topic, reason and what was wrong."""
    letters = _with_runtime(
        store_url,
        data_dir,
        lambda rt: rt.dead_letters.recent(tenant=tenant, reason=reason, limit=limit),
    )
    if as_json:
        for letter in letters:
            typer.echo(orjson.dumps(letter.summary()).decode())
        return
    summaries = [letter.summary() for letter in letters]
    table = Table()
    add_whole_column(table, "id", [found["id"] for found in summaries])
    table.add_column("dead at")
    add_whole_column(table, "tenant", [found["tenant"] or "-" for found in summaries])
    table.add_column("topic", overflow="fold")
    add_whole_column(table, "reason", [found["reason"] for found in summaries])
    table.add_column("message")
    for found in summaries:
        table.add_row(
            found["id"],
            found["deadAt"][:19],
            found["tenant"] or "-",
            found["topic"],
            found["reason"],
            found["message"],
        )
    _console.print(table)
    typer.echo(f"{len(letters)} dead letter(s)")


@dead_letter_app.command("show")
def show_letter(
    letter_id: Annotated[str, typer.Argument(help="The id `list` shows.")],
    store_url: StoreUrl = None,
    data_dir: DataDir = None,
) -> None:
    """One dead letter in full: payload, topic, reason, path and the hint to fix it."""
    letter = _with_runtime(store_url, data_dir, lambda rt: rt.dead_letters.get(letter_id))
    if letter is None:
        typer.secho(f"no dead letter {letter_id!r}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1)
    typer.echo(orjson.dumps(letter.summary(), option=orjson.OPT_INDENT_2).decode())


@dead_letter_app.command("replay")
def replay_letters(
    letter_ids: Annotated[
        list[str] | None, typer.Argument(help="Ids to replay; none: all (of --tenant).")
    ] = None,
    tenant: TenantOption = None,
    reason: Annotated[str | None, typer.Option(help="Only dead letters of this reason.")] = None,
    store_url: StoreUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Run dead letters through the pipeline again, after fixing a device's mapping.

    A letter that now passes goes to the outbox and leaves the dead-letter store; one
    that fails again stays, with its new reason printed.
    """

    async def replay(runtime: IngestRuntime) -> tuple[int, list[dict[str, Any]]]:
        if letter_ids:
            found = [await runtime.dead_letters.get(i) for i in letter_ids]
            letters = [letter for letter in found if letter is not None]
        else:
            letters = await runtime.dead_letters.recent(tenant=tenant, reason=reason, limit=10_000)
        passed, failed = 0, []
        for letter in letters:
            outcome = await runtime.pipeline.process([letter.message])
            if outcome.refused:
                rejection = outcome.refused[0][1]
                failed.append(
                    {"id": letter.id, "reason": rejection.reason, "message": rejection.message}
                )
                continue
            await runtime.outbox.append(outcome.fragments)
            await runtime.dead_letters.remove([letter.id])
            passed += 1
        return passed, failed

    passed, failed = _with_runtime(store_url, data_dir, replay)
    for failure in failed:
        typer.echo(f"still refused {failure['id']}: {failure['reason']}: {failure['message']}")
    typer.echo(f"replayed {passed}, still refused {len(failed)}")
    if failed:
        raise typer.Exit(1)
