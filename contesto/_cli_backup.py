"""`contesto backup` and `contesto restore`: tenants into one checksummed archive and back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeRemainingColumn

from contesto._cli_stack import DataDir, StoreUrl, stack_store_url

if TYPE_CHECKING:
    from pymongo import AsyncMongoClient

    from contesto._backup import Restored

__all__ = ["backup", "restore_command"]

T = TypeVar("T")
ACTOR = "cli"
# contesto._backup's DEFAULT_TENANT, written out for --help (a test holds them equal): the
# command line is built without importing what its commands work with.
DEFAULT_TENANT = "@default"

Prefix = Annotated[
    str,
    typer.Option(envvar="CONTESTO_DATABASE_PREFIX", help="The broker's database prefix."),
]
PipelineDatabase = Annotated[
    str,
    typer.Option(
        envvar="CONTESTO_PIPELINE_DATABASE",
        help="The database of ingest's devices, dead letters and outbox.",
    ),
]


def _tenant_name(text: str | None) -> str | None:
    from regional_tenants import InvalidTenantName, TenantName

    if text is None or text == DEFAULT_TENANT:
        return text
    try:
        return TenantName.parse(text).value
    except InvalidTenantName as error:
        raise typer.BadParameter(error.explain("the tenant name")) from None


def _tenant_names(texts: list[str] | None) -> list[str] | None:
    return None if texts is None else [name for t in texts if (name := _tenant_name(t))]


class _Bar:
    """The progress bar of a stage, on the terminal only (a pipe or a log stays clean)."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None

    def begin(self, stage: str, total: int) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(stage, total=total)

    def advance(self, documents: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, documents)


if TYPE_CHECKING:
    Work = Callable[[AsyncMongoClient[dict[str, Any]], _Bar], Awaitable[T]]


def _run(explicit_url: str | None, data_dir: Path | None, what: str, work: Work[T]) -> T:
    from contesto._backup import BackupError
    from store_edge import StoreError, connect, translated

    url = stack_store_url(explicit_url, data_dir)
    console = Console(stderr=True)
    columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn())
    progress = Progress(
        *columns,
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )

    async def main() -> T:
        client = connect(url)
        try:
            async with translated(what):
                return await work(client, _Bar(progress))
        finally:
            await client.close()

    try:
        with progress:
            return asyncio.run(main())
    except StoreError as exc:
        typer.secho(f"cannot {what}: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    except BackupError as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None


def backup(
    out: Annotated[Path, typer.Option(help="The archive to write (a zip file).")],
    tenant: Annotated[
        list[str] | None,
        typer.Option(
            help=f"A tenant to back up; repeat for several; {DEFAULT_TENANT} is the tenant of "
            "requests without NGSILD-Tenant.",
            callback=_tenant_names,
        ),
    ] = None,
    all_tenants: Annotated[bool, typer.Option("--all", help="Every tenant of the store.")] = False,
    store_url: StoreUrl = None,
    prefix: Prefix = "ctx",
    pipeline_database: PipelineDatabase = "contesto_ingest",
    data_dir: DataDir = None,
) -> None:
    """Write tenants into one archive: their databases (entities, subscriptions, everything)
    with indexes, and their records of the platform and of ingest (tenant record, API keys
    as stored, hashed; sharing rules, hosted @contexts, schedules, devices, dead letters,
    audit log), each part with its document count and SHA-256 in the manifest."""
    if all_tenants == bool(tenant):
        typer.secho("give --tenant (one or more) or --all", err=True, fg=typer.colors.RED)
        raise typer.Exit(2)
    from contesto._backup import StoreLayout, back_up

    layout = StoreLayout(prefix, pipeline_database)

    async def work(client: AsyncMongoClient[dict[str, Any]], bar: _Bar) -> list[tuple[str, int]]:
        manifest = await back_up(client, layout, None if all_tenants else tenant, out, bar)
        return [
            (name, sum(part.documents for part in manifest.parts_of(name)))
            for name in manifest.tenants
        ]

    counted = _run(store_url, data_dir, "back up", work)
    for name, documents in counted:
        typer.echo(f"{name}: {documents} documents")
    typer.echo(f"{len(counted)} tenant{'' if len(counted) == 1 else 's'} backed up to {out}")


def restore_command(
    archive: Annotated[
        Path, typer.Argument(help="An archive of `contesto backup`.", exists=True, dir_okay=False)
    ],
    tenant: Annotated[
        str | None,
        typer.Option(help="Only this tenant of the archive [all].", callback=_tenant_name),
    ] = None,
    as_name: Annotated[
        str | None,
        typer.Option("--as", help="Restore the tenant under this name.", callback=_tenant_name),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Overwrite tenants the store already holds.")
    ] = False,
    store_url: StoreUrl = None,
    prefix: Prefix = "ctx",
    pipeline_database: PipelineDatabase = "contesto_ingest",
    data_dir: DataDir = None,
) -> None:
    """Restore tenants from an archive. Every part's checksum is verified before anything is
    written; a tenant the store holds is refused unless --replace. Running brokers serve the
    restored tenant within 5 s; restart them to serve restored hosted @contexts."""
    from contesto._backup import ArchiveReader, BackupError, StoreLayout, restore

    layout = StoreLayout(prefix, pipeline_database)
    try:
        reader = ArchiveReader(archive)
    except BackupError as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None

    async def work(client: AsyncMongoClient[dict[str, Any]], bar: _Bar) -> list[Restored]:
        return await restore(
            client,
            layout,
            reader,
            tenant=tenant,
            rename=as_name,
            replace=replace,
            meter=bar,
            actor=ACTOR,
        )

    try:
        done = _run(store_url, data_dir, "restore", work)
    finally:
        reader.close()
    for restored in done:
        typer.echo(_restored_line(restored))


def _restored_line(restored: Restored) -> str:
    name = restored.target
    if restored.source != restored.target:
        name = f"{restored.source} as {restored.target}"
    line = f"{name}: {restored.documents} documents restored"
    if restored.left_out.get("api_keys"):
        line += (
            f"; {restored.left_out['api_keys']} API keys left out (a key names its tenant: "
            f"issue new ones with `contesto tenants key {restored.target}`)"
        )
    if restored.left_out.get("audit_log"):
        line += f"; the audit log stays with {restored.source}"
    return line
