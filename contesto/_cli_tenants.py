"""`contesto tenants ...` and `contesto audit`: the regional operator's commands.

They work on the platform database of the store given by --store-url or CONTESTO_MONGO_URL,
else of the running local `contesto up` (`_cli_stack.py`); the admin
HTTP API (`/admin/tenants`, OpenAPI at /docs) does the same over the network.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import orjson
import typer
from rich.console import Console
from rich.table import Table

from contesto._cli_stack import ApiUrl, DataDir, stack_api_url, stack_store_url
from contesto._cli_stack import StoreUrl as MongoUrl
from contesto._cli_tables import add_whole_column

if TYPE_CHECKING:
    from pymongo import AsyncMongoClient

    from datamodels import PersonalData
    from ngsild_client import Endpoint, NgsiLdClient
    from regional_tenants import TenantRegistry

__all__ = ["audit", "tenants_app"]

T = TypeVar("T")
ACTOR = "cli"

tenants_app = typer.Typer(
    help="Onboard comuni and utilities as tenants, issue their API keys, suspend or delete "
    "them. Works on the store of --store-url or CONTESTO_MONGO_URL, else on the running "
    "local `contesto up` (its DATA_DIR/runtime.json).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
_console = Console()

Prefix = Annotated[
    str,
    typer.Option(envvar="CONTESTO_DATABASE_PREFIX", help="The broker's database prefix [ctx]."),
]


def _tenant_name(text: str) -> str:
    from regional_tenants import InvalidTenantName, TenantName

    try:
        return TenantName.parse(text).value
    except InvalidTenantName as error:
        raise typer.BadParameter(error.explain("the tenant name")) from None


Slug = Annotated[str, typer.Argument(help="The tenant's name.", callback=_tenant_name)]


# regional_tenants.ApiValidation, written out for the command's choices (a test holds them
# equal): the command line is built without importing what its commands work with.
ApiValidationMode = Literal["off", "warn", "enforce"]

if TYPE_CHECKING:
    Work = Callable[[AsyncMongoClient[dict[str, Any]], TenantRegistry], Awaitable[T]]


def _run(explicit_url: str | None, data_dir: Path | None, prefix: str, work: Work[T]) -> T:
    """Run `work` on the tenant registry of the store the command names (`_cli_stack.py`)."""
    from regional_tenants import MongoTenantDirectory, TenantRegistry, platform_database
    from store_edge import StoreError, connect, translated

    url = stack_store_url(explicit_url, data_dir)

    async def main() -> T:
        client = connect(url)
        try:
            registry = TenantRegistry(
                client[platform_database(prefix)], directory=MongoTenantDirectory(client, prefix)
            )
            await registry.ensure_indexes()
            async with translated("a tenants command"):
                return await work(client, registry)
        finally:
            await client.close()

    try:
        return asyncio.run(main())
    except StoreError as exc:
        typer.secho(f"cannot reach the store: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None


def _say_key(slug: str, key: str, role: str) -> None:
    typer.echo(f"{role} key for {slug} (shown once; store it now):\n  {key}")


@tenants_app.command("bootstrap")
def bootstrap(mongo_url: MongoUrl = None, prefix: Prefix = "ctx", data_dir: DataDir = None) -> None:
    """Create the regional tenant `toscana` and print a region-admin key (shown once)."""
    from regional_tenants import REGION_TENANT, Tenant, issue_key, onboard

    async def work(_client: object, registry: TenantRegistry) -> str:
        tenant = Tenant(REGION_TENANT, "region", "Regione Toscana", datetime.now(UTC))
        await onboard(registry, tenant, actor=ACTOR)
        return await issue_key(registry, REGION_TENANT, "region-admin", actor=ACTOR)

    _say_key(REGION_TENANT, _run(mongo_url, data_dir, prefix, work), "region-admin")


@tenants_app.command("onboard")
def onboard_command(
    mongo_url: MongoUrl = None,
    comune: Annotated[
        str | None, typer.Option(help="A comune by name, slug or ISTAT code, e.g. Prato, 100005.")
    ] = None,
    utility: Annotated[
        str | None, typer.Option(help="Or a utility's tenant slug, e.g. publiacqua.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="The utility's name.")] = None,
    new_key: Annotated[
        bool, typer.Option(help="Issue a new admin key even if the tenant exists.")
    ] = False,
    prefix: Prefix = "ctx",
    data_dir: DataDir = None,
) -> None:
    """Onboard a comune (boundary, default data models, admin key) or a utility. Idempotent:
    an onboarded tenant is left as it is and gets no new key unless --new-key."""
    from regional_tenants import OnboardingError, Tenant, onboard, onboard_comune

    if (comune is None) == (utility is None):
        typer.secho("give --comune or --utility", err=True, fg=typer.colors.RED)
        raise typer.Exit(2)

    async def work(_client: object, registry: TenantRegistry) -> tuple[str, bool, str | None]:
        if comune is not None:
            done = await onboard_comune(registry, comune, actor=ACTOR, new_key=new_key)
        else:
            assert utility is not None
            tenant = Tenant(utility, "utility", name or utility, datetime.now(UTC))
            done = await onboard(registry, tenant, actor=ACTOR, new_key=new_key)
        return done.tenant.slug, done.created, done.admin_key

    try:
        slug, created, key = _run(mongo_url, data_dir, prefix, work)
    except (OnboardingError, ValueError) as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    typer.echo(f"tenant {slug} {'onboarded' if created else 'was already onboarded'}")
    if key:
        _say_key(slug, key, "admin")


@tenants_app.command("list")
def list_command(
    mongo_url: MongoUrl = None, prefix: Prefix = "ctx", data_dir: DataDir = None
) -> None:
    """Every tenant: slug, kind, name, ISTAT code, status. Tenants created by a first write
    (where tenants are created automatically) have the kind `auto`."""

    async def work(_client: object, registry: TenantRegistry) -> list[tuple[str, ...]]:
        onboarded = {tenant.slug: tenant for tenant in await registry.list_tenants()}
        rows: list[tuple[str, ...]] = []
        for entry in await registry.directory.entries():
            tenant = onboarded.get(entry.name)
            if tenant is None:
                rows.append((entry.name, "auto", "-", "-", entry.status))
            else:
                istat = tenant.istat_code or "-"
                rows.append((entry.name, tenant.kind, tenant.name, istat, entry.status))
        return rows

    rows = _run(mongo_url, data_dir, prefix, work)
    table = Table()
    add_whole_column(table, "tenant", [row[0] for row in rows])
    for header in ("kind", "name", "ISTAT", "status"):
        table.add_column(header)
    for row in rows:
        table.add_row(*row)
    _console.print(table)


@tenants_app.command("show")
def show_command(
    slug: Slug, mongo_url: MongoUrl = None, prefix: Prefix = "ctx", data_dir: DataDir = None
) -> None:
    """One tenant's record (boundary summarised) and its API keys (ids, roles, profiles)."""

    async def work(_client: object, registry: TenantRegistry) -> dict[str, object] | None:
        tenant = await registry.get_tenant(slug)
        if tenant is None:
            return None
        data = tenant.to_dict()
        if tenant.boundary is not None:
            data["boundary"] = {"type": tenant.boundary["type"]}
        data["keys"] = [
            {"key_id": k.key_id, "role": k.role, "profile": k.profile}
            for k in await registry.keys_of(slug)
        ]
        return data

    found = _run(mongo_url, data_dir, prefix, work)
    if found is None:
        typer.secho(f"no tenant {slug!r} is onboarded", err=True, fg=typer.colors.RED)
        raise typer.Exit(1)
    typer.echo(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode())


def _set_status(
    slug: str,
    status: Literal["active", "suspended"],
    url: str | None,
    data_dir: Path | None,
    prefix: str,
) -> None:
    async def work(_client: object, registry: TenantRegistry) -> bool:
        tenants = registry.directory
        changed = await (tenants.suspend(slug) if status == "suspended" else tenants.resume(slug))
        if changed:
            action = "tenant.suspended" if status == "suspended" else "tenant.reactivated"
            await registry.audit(slug, ACTOR, action)
        return changed

    if not _run(url, data_dir, prefix, work):
        typer.secho(f"no tenant {slug!r} is onboarded", err=True, fg=typer.colors.RED)
        raise typer.Exit(1)
    typer.echo(f"tenant {slug} is {status}")


@tenants_app.command("suspend")
def suspend_command(
    slug: Slug, mongo_url: MongoUrl = None, prefix: Prefix = "ctx", data_dir: DataDir = None
) -> None:
    """Refuse every request of the tenant (its data stays) until `resume`."""
    _set_status(slug, "suspended", mongo_url, data_dir, prefix)


@tenants_app.command("resume")
def resume_command(
    slug: Slug, mongo_url: MongoUrl = None, prefix: Prefix = "ctx", data_dir: DataDir = None
) -> None:
    """Serve a suspended tenant again."""
    _set_status(slug, "active", mongo_url, data_dir, prefix)


@tenants_app.command("validation")
def validation_command(
    slug: Slug,
    mode: Annotated[ApiValidationMode, typer.Argument(help="off (the default), warn or enforce.")],
    mongo_url: MongoUrl = None,
    prefix: Prefix = "ctx",
    data_dir: DataDir = None,
) -> None:
    """How the NGSI-LD API checks the tenant's writes of the types its models cover:
    off, warn (stored, violations reported), enforce (refused with 400). Running brokers
    apply it within 5 s."""

    async def work(_client: object, registry: TenantRegistry) -> bool:
        changed = await registry.set_api_validation(slug, mode)
        if changed:
            await registry.audit(slug, ACTOR, "tenant.api_validation", {"mode": mode})
        return changed

    if not _run(mongo_url, data_dir, prefix, work):
        typer.secho(f"no tenant {slug!r} is onboarded", err=True, fg=typer.colors.RED)
        raise typer.Exit(1)
    typer.echo(f"tenant {slug}: apiValidation {mode}")


@tenants_app.command("delete")
def delete_command(
    slug: Slug,
    mongo_url: MongoUrl = None,
    export: Annotated[
        Path | None, typer.Option(help="Where to export its data first [<slug>-export.jsonl].")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    prefix: Prefix = "ctx",
    data_dir: DataDir = None,
) -> None:
    """Export the tenant's entities (JSON lines), then delete its data, keys and rules.

    Asks for confirmation unless --yes. The audit log is kept. Running brokers and ingest
    processes forget the tenant within 5 seconds.
    """
    from bson import json_util

    from regional_tenants import OnboardingError, tenant_database

    target = export or Path(f"{slug}-export.jsonl")
    if not yes:
        typer.confirm(
            f"Delete tenant {slug!r} and all its data (exported to {target})?", abort=True
        )

    async def work(client: AsyncMongoClient[dict[str, Any]], registry: TenantRegistry) -> int:
        if not await registry.directory.exists(slug):
            raise OnboardingError(f"no tenant {slug!r} exists")
        database = client[tenant_database(prefix, slug)]
        count = 0
        with target.open("w") as out:
            for name in await database.list_collection_names():
                async for doc in database[name].find({}):
                    out.write(json_util.dumps({"collection": name, "document": doc}) + "\n")
                    count += 1
        await registry.remove_tenant(slug)
        await registry.audit(slug, ACTOR, "tenant.deleted", {"exported": str(target)})
        return count

    try:
        count = _run(mongo_url, data_dir, prefix, work)
    except OnboardingError as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    typer.echo(f"tenant {slug} deleted; {count} documents exported to {target}")


@tenants_app.command("key")
def key_command(
    slug: Slug,
    mongo_url: MongoUrl = None,
    role: Annotated[str, typer.Option(help="reader, writer or admin.")] = "reader",
    prefix: Prefix = "ctx",
    data_dir: DataDir = None,
) -> None:
    """Issue a new API key for the tenant (shown once; stored hashed)."""
    from regional_tenants import issue_key

    if role not in ("reader", "writer", "admin"):
        typer.secho("the role is reader, writer or admin", err=True, fg=typer.colors.RED)
        raise typer.Exit(2)

    async def work(_client: object, registry: TenantRegistry) -> str | None:
        if await registry.get_tenant(slug) is None:
            return None
        return await issue_key(registry, slug, role, actor=ACTOR)  # type: ignore[arg-type]

    key = _run(mongo_url, data_dir, prefix, work)
    if key is None:
        typer.secho(f"no tenant {slug!r} is onboarded", err=True, fg=typer.colors.RED)
        raise typer.Exit(1)
    _say_key(slug, key, role)


def audit(
    tenant: Annotated[
        str, typer.Argument(help="The tenant whose log to show.", callback=_tenant_name)
    ],
    mongo_url: MongoUrl = None,
    limit: Annotated[int, typer.Option(help="At most this many entries, newest first.")] = 50,
    prefix: Prefix = "ctx",
    data_dir: DataDir = None,
) -> None:
    """A tenant's append-only audit log: admin actions and cross-tenant shares."""

    async def work(_client: object, registry: TenantRegistry) -> list[tuple[str, str, str, str]]:
        return [
            (e.at.isoformat()[:19], e.actor, e.action, orjson.dumps(e.detail).decode())
            for e in await registry.audit_log(tenant, limit=limit)
        ]

    table = Table("at (UTC)", "actor", "action", "detail")
    for row in _run(mongo_url, data_dir, prefix, work):
        table.add_row(*row)
    _console.print(table)


@tenants_app.command("share")
def share_command(
    owner: Annotated[
        str,
        typer.Argument(help="The tenant that shares (a utility, a comune).", callback=_tenant_name),
    ],
    name: Annotated[str, typer.Option(help="The rule's name, unique for the owner.")],
    types: Annotated[str, typer.Option(help="Entity types, comma-separated, e.g. Alert.")],
    attrs: Annotated[
        str, typer.Option(help="Attributes that may leave the owner, comma-separated.")
    ],
    to: Annotated[
        str,
        typer.Option(
            help="Targets, comma-separated: tenant slugs, `comuni-it-lies-in` (by the "
            "entity's location) and/or `region` (the tenant toscana)."
        ),
    ] = "comuni-it-lies-in",
    profile: Annotated[
        str | None,
        typer.Option(help="A profile whose private and personal attributes are never shared."),
    ] = None,
    mongo_url: MongoUrl = None,
    prefix: Prefix = "ctx",
    data_dir: DataDir = None,
) -> None:
    """Share an owner's entities of some types, only the allowed attributes, with other
    tenants. The bridge applies it to everything the owner publishes from now on."""
    from datamodels import CatalogueError, load_catalogue
    from regional_tenants import SharingRule

    try:
        rule = SharingRule(
            name=name,
            owner=owner,
            entity_types=_names(types),
            attributes=_names(attrs),
            targets=_names(to),
        )
        if profile is not None:
            rule = rule.with_profile(load_catalogue().profile(profile))
    except (ValueError, CatalogueError) as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from None

    async def work(_client: object, registry: TenantRegistry) -> None:
        await registry.put_rule(owner, rule)
        await registry.audit(owner, ACTOR, "sharing.rule-set", rule.to_dict())

    _run(mongo_url, data_dir, prefix, work)
    withheld = sorted(set(rule.private) | set(rule.personal))
    shared = ", ".join(sorted(rule.shared_attributes))
    never = f"; never {', '.join(withheld)}" if withheld else ""
    typer.echo(f"{owner} shares {', '.join(rule.entity_types)} ({shared}) with {to}{never}")


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


@tenants_app.command("purge")
def purge_command(
    tenant: Annotated[
        str,
        typer.Argument(help="The tenant whose personal data to purge.", callback=_tenant_name),
    ],
    profile: Annotated[
        str, typer.Option(help="The profile that flags personal attributes and their retention.")
    ],
    broker_url: ApiUrl = None,
    token: Annotated[
        str | None, typer.Option(envvar="CONTESTO_BROKER_TOKEN", help="An API key of the tenant.")
    ] = None,
    mongo_url: MongoUrl = None,
    prefix: Prefix = "ctx",
    data_dir: DataDir = None,
) -> None:
    """Delete personal attributes observed longer ago than their retention (GDPR).

    For each attribute the profile flags as personal, every entity of the profile's model
    whose attribute was observed before now - retention_days loses that attribute, through
    the NGSI-LD API (so it works on any broker). Run it daily, e.g. from cron.
    """
    from datamodels import CatalogueError, load_catalogue
    from ngsild_client import Endpoint

    try:
        found = load_catalogue().profile(profile)
    except CatalogueError as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from None
    purged = asyncio.run(
        _purge(
            Endpoint(stack_api_url(broker_url, data_dir), tenant, token), found.base, found.personal
        )
    )

    async def work(_client: object, registry: TenantRegistry) -> None:
        await registry.audit(tenant, ACTOR, "gdpr.purged", {"profile": profile, **purged})

    _run(mongo_url, data_dir, prefix, work)
    for name, count in purged.items():
        typer.echo(f"{name}: removed from {count} entities")


async def _purge(
    endpoint: Endpoint, entity_type: str, personal: Mapping[str, PersonalData]
) -> dict[str, int]:
    from ngsild_client import HttpAdapter, NgsiLdClient

    purged: dict[str, int] = {}
    async with HttpAdapter(timeout_s=60) as http:
        client = NgsiLdClient(http, endpoint)
        for name, rule in personal.items():
            cutoff = datetime.now(UTC) - timedelta(days=rule.retention_days)
            purged[name] = await _purge_attribute(client, entity_type, name, cutoff)
    return purged


async def _purge_attribute(
    client: NgsiLdClient, entity_type: str, name: str, cutoff: datetime
) -> int:
    from ngsild_client import NgsiLdClientError, Refused

    stamp = cutoff.strftime("%Y-%m-%dT%H:%M:%SZ")
    params = {"type": entity_type, "q": f"{name}.observedAt<{stamp}", "attrs": name}
    removed = 0
    while True:
        try:
            entities = await client.query_entities({**params, "limit": "500"})
        except NgsiLdClientError as exc:
            why = (
                f"the broker answered {exc.status}: {exc.text}" if isinstance(exc, Refused) else exc
            )
            typer.secho(str(why), err=True)
            raise typer.Exit(1) from None
        if not entities:
            return removed
        for entity in entities:
            try:
                await client.delete_attribute(entity["id"], name)
            except NgsiLdClientError as exc:
                why = exc.text if isinstance(exc, Refused) else exc
                typer.secho(f"cannot purge {entity['id']}: {why}", err=True)
                raise typer.Exit(1) from None
            removed += 1
