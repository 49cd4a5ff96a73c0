"""`contesto conformance ...`: vendors check their sensors' messages against a regional model.

`payloads` checks files offline, `mqtt` listens to a live broker; both decode and validate
each message exactly as ingest does, and write console, JUnit, HTML and JSON reports.
Exit code 0 when every message conforms, 1 when any does not, 2 on usage errors.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from contesto._cli_conformance_broker import broker

if TYPE_CHECKING:
    from conformance_tests import Report, Sample, Target

__all__ = ["conformance_app"]

conformance_app = typer.Typer(
    name="conformance",
    help="Conformance kit: check a sensor's messages (files or live MQTT) against a "
    "regional data model, as ingest would. Exit code 0: all conform; 1: some do not; "
    "2: usage error.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

# -- options shared by the commands -----------------------------------------------------

ModelOption = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Target data model, e.g. AirQualityObserved."),
]
ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile", "-p", help="Target regional profile, e.g. toscana/AirQualityObserved."
    ),
]
MappingOption = Annotated[
    Path | None,
    typer.Option(
        "--mapping",
        help='Attribute mapping: an IoT Agent service-group body ({"services": [...]}), as '
        "the city provisions it. Default: each measure becomes the attribute of the same "
        "name, with the profile's unitCode.",
    ),
]
JunitOption = Annotated[
    Path | None, typer.Option("--junit", help="Write a JUnit XML report to this file.")
]
HtmlOption = Annotated[
    Path | None,
    typer.Option("--html", help="Write a self-contained HTML report (to send to the city)."),
]
JsonOption = Annotated[Path | None, typer.Option("--json", help="Write a JSON report.")]


def _console() -> Console:
    return Console(soft_wrap=True, highlight=False)


def _usage_error(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(2)


def _target(model: str | None, profile: str | None, mapping: Path | None) -> Target:
    from conformance_tests import TargetError, make_target
    from datamodels import load_catalogue

    body: Any = None
    if mapping is not None:
        try:
            body = json.loads(mapping.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _usage_error(f"cannot read the mapping {mapping}: {exc}") from None
    try:
        return make_target(load_catalogue(), model, profile, body)
    except TargetError as exc:
        raise _usage_error(str(exc)) from None


# -- commands ---------------------------------------------------------------------------


@conformance_app.command("payloads")
def payloads(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Payload files: one JSON message, a JSON array, JSON Lines (one message per "
            'line), {"topic": ..., "payload": ...} captures, or NGSI-LD entities.'
        ),
    ],
    model: ModelOption = None,
    profile: ProfileOption = None,
    mapping: MappingOption = None,
    topic: Annotated[
        str | None,
        typer.Option(
            "--topic",
            help="MQTT topic of messages whose file does not name one, e.g. "
            "/json/APIKEY/DEVICE/attrs (TTN and ChirpStack uplinks are recognised).",
        ),
    ] = None,
    junit: JunitOption = None,
    html_file: HtmlOption = None,
    json_file: JsonOption = None,
) -> None:
    """Check payload files offline, exactly as ingest would decode, map and validate them.

    \b
    Examples:
      contesto conformance payloads uplinks.jsonl --profile toscana/AirQualityObserved
      contesto conformance payloads m.json --topic /json/KEY/aq-1/attrs -m AirQualityObserved
      contesto conformance payloads up.json -p toscana/AirQualityObserved \\
          --mapping group.json --junit report.xml --html report.html
    """
    from conformance_tests import Checker, Report, samples_from_text
    from datamodels import load_catalogue

    target = _target(model, profile, mapping)
    samples: list[Sample] = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise _usage_error(f"cannot read {path}: {exc}") from None
        samples.extend(samples_from_text(text, str(path), topic))
    checker = Checker(target, load_catalogue())
    results = asyncio.run(checker.check(samples))
    report = Report("payloads", target.describe(), datetime.now(UTC), tuple(results))
    _finish(report, junit, html_file, json_file)


@conformance_app.command("mqtt")
def mqtt(
    model: ModelOption = None,
    profile: ProfileOption = None,
    mapping: MappingOption = None,
    host: Annotated[str, typer.Option(help="MQTT broker host.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="MQTT broker port.")] = 1883,
    username: Annotated[str | None, typer.Option(help="MQTT user name.")] = None,
    password: Annotated[str | None, typer.Option(help="MQTT password.")] = None,
    protocol: Annotated[str, typer.Option(help="MQTT protocol: 5 or 3.1.1.")] = "5",
    connect_timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds to wait for the MQTT session.")
    ] = 15.0,
    topic: Annotated[
        list[str] | None,
        typer.Option(
            "--topic",
            help="Topic filter to listen to (repeatable), e.g. 'v3/+/devices/+/up'. "
            "Default: every topic ingest subscribes to.",
        ),
    ] = None,
    count: Annotated[int | None, typer.Option(min=1, help="Stop after this many messages.")] = None,
    seconds: Annotated[float, typer.Option(min=0.1, help="Stop after this many seconds.")] = 60.0,
    junit: JunitOption = None,
    html_file: HtmlOption = None,
    json_file: JsonOption = None,
) -> None:
    """Listen to a live MQTT broker for --count messages or --seconds, whichever comes
    first, check each as ingest would, and report timing: message rate, clock skew of the
    payload's timestamp against arrival, duplicates, and gaps (over 3x a device's median
    interval).

    The listener uses its own client id and no shared group (it never takes messages
    from an ingest worker), QoS 1, and acknowledges what it read.

    \b
    Examples:
      contesto conformance mqtt --host mqtt.example.it --topic 'v3/+/devices/+/up' \\
          --count 50 --seconds 600 --profile toscana/AirQualityObserved --html aria.html
      contesto conformance mqtt --port 1883 --topic '/json/KEY/+/attrs' -m AirQualityObserved
    """
    from conformance_tests import Checker, Report, listen, timing_facts
    from datamodels import load_catalogue
    from sensor_ingest import TOPIC_FILTERS, MqttError, MqttOptions

    if protocol not in ("5", "3.1.1"):
        raise _usage_error("--protocol must be 5 or 3.1.1")
    target = _target(model, profile, mapping)
    filters = tuple(topic) if topic else TOPIC_FILTERS
    options = MqttOptions(
        host=host,
        port=port,
        username=username,
        password=password,
        protocol="5" if protocol == "5" else "3.1.1",
    )
    console = _console()
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"connecting to {host}:{port}", total=count)

        def ready() -> None:
            progress.update(task, description=f"listening on {', '.join(filters)}")

        def received(total: int) -> None:
            progress.update(task, completed=total)

        try:
            messages, elapsed = asyncio.run(
                listen(
                    options,
                    filters,
                    count=count,
                    seconds=seconds,
                    on_message=received,
                    on_ready=ready,
                    connect_timeout_s=connect_timeout,
                )
            )
        except MqttError as exc:
            progress.stop()
            raise _usage_error(str(exc)) from None
    checker = Checker(target, load_catalogue())

    async def check_all() -> list[Any]:
        return [
            await checker.check_message(f"#{i} {m.topic}", m) for i, m in enumerate(messages, 1)
        ]

    results = asyncio.run(check_all())
    report = Report(
        f"mqtt {host}:{port}",
        target.describe(),
        datetime.now(UTC),
        tuple(results),
        timing_facts(results, elapsed),
    )
    _finish(report, junit, html_file, json_file, console)


# The broker suite, `contesto conformance broker URL`, lives in its own module.
conformance_app.command("broker")(broker)


# -- reports ----------------------------------------------------------------------------


def _finish(
    report: Report,
    junit: Path | None,
    html_file: Path | None,
    json_file: Path | None,
    console: Console | None = None,
) -> None:
    """Print the summary, write the requested reports, exit 0 or 1."""
    from conformance_tests import to_html, to_json, to_junit

    console = console or _console()
    _print_summary(console, report)
    for path, render in ((junit, to_junit), (html_file, to_html), (json_file, to_json)):
        if path is None:
            continue
        try:
            path.write_text(render(report), encoding="utf-8")
        except OSError as exc:
            raise _usage_error(f"cannot write {path}: {exc}") from None
        console.print(f"wrote {escape(str(path))}")
    raise typer.Exit(0 if report.passed else 1)


def _print_summary(console: Console, report: Report) -> None:
    from conformance_tests import timing_lines

    for result in report.results:
        if result.passed:
            console.print(f"[green]PASS[/green] {escape(result.source)}")
            continue
        count = len(result.violations)
        console.print(
            f"[red]FAIL[/red] {escape(result.source)} "
            f"({count} violation{'' if count == 1 else 's'})"
        )
        table = Table("path", "rule", "message", "hint", show_edge=False)
        for v in result.violations:
            table.add_row(escape(v.path), escape(v.rule), escape(v.message), escape(v.hint))
        console.print(table)
    if report.timing is not None:
        table = Table("timing", "", show_header=False, show_edge=False)
        for name, value in timing_lines(report.timing):
            table.add_row(escape(name), escape(value))
        console.print(table)
    total = len(report.results)
    if not total:
        console.print("[red]no messages were checked[/red]")
        return
    colour = "green" if report.passed else "red"
    console.print(
        f"[{colour}]{total - report.failed} of {total} messages conform to "
        f"{escape(report.target)}[/{colour}]"
    )
