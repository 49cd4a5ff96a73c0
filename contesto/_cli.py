"""The `contesto` command line: one typer app, one subcommand group per area.

Every `_cli_*` module imports at its top only typer, rich and the standard library, and
each command imports what it works with when it runs: building the command tree for any
command (or for --help) then costs milliseconds, not the seconds of importing the broker,
the ingest pipeline and their libraries (tests/unit/test_cli_imports.py holds it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from contesto._cli_backup import backup, restore_command
from contesto._cli_conformance import conformance_app
from contesto._cli_devices import devices_app
from contesto._cli_ingest import dead_letter_app, ingest, simulate
from contesto._cli_models import models_app
from contesto._cli_notifications import notifications_app
from contesto._cli_tenants import audit, tenants_app

__all__ = ["app", "main"]

app = typer.Typer(
    name="contesto",
    help="Contesto: the NGSI-LD context broker toolkit of Tuscany. Every command has --help.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
# One subcommand group per area, each from its own module.
app.add_typer(models_app, name="models")
app.add_typer(devices_app, name="devices")
app.add_typer(dead_letter_app, name="dead-letter")
app.add_typer(tenants_app, name="tenants")
app.add_typer(conformance_app, name="conformance")
app.add_typer(notifications_app, name="notifications")
app.command()(audit)
app.command()(ingest)
app.command()(simulate)
app.command()(backup)
app.command("restore")(restore_command)


@app.callback()
def _root() -> None:
    """Makes `contesto` a group of commands, even while it has a single one."""


@app.command()
def up(
    host: Annotated[
        str | None,
        typer.Option(help="Address the NGSI-LD API listens on [env CONTESTO_HOST; 127.0.0.1]."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help="Port of the NGSI-LD API [env CONTESTO_PORT; 1026]."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where the embedded store keeps its data (DIR/db) and log "
            "(DIR/secantus.log) [env CONTESTO_DATA_DIR; ./var]."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=32,
            help="API processes sharing the port (each restarted alone when it dies, logs in "
            "DIR/api-N.log) and ingest workers sharing one MQTT v5 subscription group, so "
            "each message is ingested once; needs Mosquitto 2, not amqtt. 1 runs the API in "
            "this process [env CONTESTO_WORKERS; 1].",
        ),
    ] = None,
) -> None:
    """Run the stack: MQTT ingest feeding the NGSI-LD API at http://HOST:PORT/ngsi-ld/v1.

    With CONTESTO_MONGO_URL unset, an embedded MongoDB-protocol store (SecantusDB, from
    `pip install 'contesto[embedded]'`) runs as a child process on loopback, with its data
    under --data-dir, kept across runs. With CONTESTO_MONGO_URL set (a MongoDB replica set in
    production), the broker uses that server instead.
    Unless CONTESTO_MQTT_EXTERNAL is true, Mosquitto runs on CONTESTO_MQTT_HOST:PORT
    (127.0.0.1:1883; logins per device group when CONTESTO_AUTH_REQUIRED is true; amqtt,
    which loses acknowledged messages if the stack stops, where Mosquitto is missing in the
    dev profile), and an ingest process (`contesto ingest`, log in DIR/ingest.log)
    publishes what arrives there, with the demo devices of Firenze and Prato provisioned
    (try `contesto simulate`). A child process that dies is restarted; one that keeps dying
    ends the stack with exit status 1 (CONTESTO_RESTART_MAX, CONTESTO_RESTART_WINDOW_S).
    Ctrl-C or SIGTERM stops the API, ingest, MQTT, then the store, within 10 s.
    While it serves, DIR/runtime.json (owner only) tells the operator commands (tenants,
    devices, dead-letter, simulate) where it runs; a clean stop removes it.
    """
    from contesto._settings import StackSettings
    from contesto._stack import StackError, run_stack

    given: dict[str, Any] = {"host": host, "port": port, "data_dir": data_dir, "workers": workers}
    settings = StackSettings(**{name: value for name, value in given.items() if value is not None})
    try:
        run_stack(settings, say=typer.echo)
    except StackError as exc:
        typer.secho(f"contesto up: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    typer.echo("Contesto stopped.")


def main() -> None:
    """Entry point of the `contesto` console script."""
    app()
