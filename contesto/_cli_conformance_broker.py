"""`contesto conformance broker URL`: the NGSI-LD conformance suite against any broker."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from contesto._cli_stack import DataDir, stack_api_url

if TYPE_CHECKING:
    from conformance_tests._broker_framework import Check, CheckResult
    from conformance_tests._broker_runner import SuiteResult

__all__ = ["broker"]

# By the value of each Outcome.
_STYLE = {"pass": "green", "fail": "red", "not-supported": "yellow"}
# conformance_tests' GROUPS, written out for --help (a test holds them equal): the command
# line is built without importing the suite.
GROUP_NAMES = (
    "entity",
    "attributes",
    "batch",
    "payloads",
    "updates",
    "query",
    "retrieve",
    "context",
    "errors",
    "tenants",
    "routing",
    "jsonld-contexts",
    "linked",
    "lifecycle",
    "subscription",
    "notification",
)


def broker(
    url: Annotated[
        str | None,
        typer.Argument(
            help="The broker's root or its NGSI-LD API URL, e.g. http://127.0.0.1:1026 or "
            "http://127.0.0.1:1026/ngsi-ld/v1 [the running local `contesto up` of --data-dir, "
            "found in DATA_DIR/runtime.json].",
            show_default=False,
        ),
    ] = None,
    group: Annotated[
        list[str] | None,
        typer.Option("--group", "-g", help=f"Run only these groups: {', '.join(GROUP_NAMES)}."),
    ] = None,
    tenant: Annotated[
        str | None,
        typer.Option(help="NGSILD-Tenant of the probe entities [conformance-<run>]."),
    ] = None,
    no_tenant: Annotated[
        bool, typer.Option("--no-tenant", help="Use the default tenant (no NGSILD-Tenant).")
    ] = False,
    token: Annotated[
        str | None,
        typer.Option(envvar="CONTESTO_CONFORMANCE_TOKEN", help="Bearer token [env ...TOKEN]."),
    ] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write a JSON report.")] = None,
    junit_path: Annotated[
        Path | None, typer.Option("--junit", help="Write a JUnit XML report.")
    ] = None,
    markdown_path: Annotated[
        Path | None, typer.Option("--markdown", help="Write the one-line Markdown summary.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each answer.")] = 30.0,
    notify_host: Annotated[
        str,
        typer.Option(
            help="Address the notification checks listen on and give the broker as endpoint: "
            "for a remote broker, an address of this machine that the broker can reach."
        ),
    ] = "127.0.0.1",
    notify_port: Annotated[
        int,
        typer.Option(min=0, max=65535, help="Port to listen on for notifications (0: any free)."),
    ] = 0,
    notify_wait_s: Annotated[
        float,
        typer.Option(min=0.1, help="Seconds to wait for each expected notification."),
    ] = 10.0,
    data_dir: DataDir = None,
) -> None:
    """Check an NGSI-LD broker against ETSI GS CIM 009 V1.8; exit 1 when any check fails.

    The probe entities (urn:ngsi-ld:ConformanceProbe:<run>-<n>) and subscriptions
    (urn:ngsi-ld:Subscription:ConformanceProbe:<run>-<n>) live in their own tenant and are
    deleted after each check; nothing else is touched. The notification checks listen on
    --notify-host:--notify-port for the broker's notifications: a remote broker needs a
    host it can reach (and a port its firewall lets through).
    """
    from conformance_tests._broker_reports import markdown_line, to_json, to_junit_xml
    from conformance_tests._broker_runner import select_checks

    url = stack_api_url(url, data_dir)
    console = Console()
    try:
        checks = select_checks(group)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--group") from None
    notify = _Notify(notify_host, notify_port, notify_wait_s)
    result = _run_with_progress(
        console, url, checks, group, tenant, no_tenant, token, timeout, notify
    )
    _print_summary(console, result)
    for path, text in (
        (json_path, to_json(result)),
        (junit_path, to_junit_xml(result)),
        (markdown_path, markdown_line(result) + "\n"),
    ):
        if path is not None:
            path.write_text(text, encoding="utf-8")
            console.print(f"wrote {path}")
    if not result.ok:
        raise typer.Exit(1)


@dataclass(slots=True, frozen=True)
class _Notify:
    """Where the suite listens for notifications, and how long it waits for each."""

    host: str
    port: int
    wait_s: float


def _run_with_progress(
    console: Console,
    url: str,
    checks: list[Check],
    groups: list[str] | None,
    tenant: str | None,
    no_tenant: bool,
    token: str | None,
    timeout: float,
    notify: _Notify,
) -> SuiteResult:
    from conformance_tests._broker_runner import run_suite

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("conformance", total=len(checks))

        def progress(check: Check, done: CheckResult | None) -> None:
            if done is None:
                bar.update(task, description=f"{check.group}: {check.id}")
            else:
                bar.advance(task)

        return asyncio.run(
            run_suite(
                url,
                tenant=tenant,
                use_tenant=not no_tenant,
                token=token,
                groups=groups,
                progress=progress,
                timeout_s=timeout,
                notify_host=notify.host,
                notify_port=notify.port,
                notify_wait_s=notify.wait_s,
            )
        )


def _print_summary(console: Console, result: SuiteResult) -> None:
    from conformance_tests._broker_framework import Outcome
    from conformance_tests._broker_reports import markdown_line

    for check in result.results:
        if check.outcome is not Outcome.PASS:
            style = _STYLE[check.outcome.value]
            console.print(
                f"[{style}]{check.outcome.value.upper()}[/{style}] {check.id} "
                f"(clause {check.clause}): {check.title}",
                highlight=False,
            )
            console.print(f"    {check.reason}", highlight=False, markup=False)
    table = Table(title=f"NGSI-LD conformance of {result.url} (tenant {result.tenant or '-'})")
    table.add_column("group")
    table.add_column("pass", style="green", justify="right")
    table.add_column("fail", style="red", justify="right")
    table.add_column("not supported", style="yellow", justify="right")
    for group in [*result.groups(), None]:
        counts = result.counts(group)
        table.add_row(
            group or "[bold]total",
            str(counts.passed),
            str(counts.failed),
            str(counts.not_supported),
        )
    console.print(table)
    for problem in result.cleanup_problems:
        console.print(f"[yellow]clean-up:[/yellow] {problem}", highlight=False)
    style = "green" if result.ok else "red"
    console.print(f"[{style}]{markdown_line(result)}[/{style}]", highlight=False)
