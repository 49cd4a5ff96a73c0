"""What a tenant owns in the store: its own database, and its records in the shared ones.

A tenant's data is the database `tenant_database(prefix, name)`, all of it. The platform
database (`<prefix>__platform`) and the ingest pipeline's database hold records of every
tenant, each naming its tenant in one field; `SHARED` lists those collections and how a
record follows a tenant restored under another name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from regional_tenants import platform_database, tenant_database

__all__ = [
    "DEFAULT_TENANT",
    "SHARED",
    "Place",
    "SharedCollection",
    "StoreLayout",
    "tenant_value",
]

# The tenant of requests without NGSILD-Tenant; no tenant name can start with "@".
DEFAULT_TENANT = "@default"

Place = Literal["tenant", "platform", "pipeline"]
Record = dict[str, Any]
Rekey = Callable[[Record, str | None], Any]


def tenant_value(name: str) -> str | None:
    """The value the shared records hold for the tenant `name` (None: the default one)."""
    return None if name == DEFAULT_TENANT else name


@dataclass(frozen=True, slots=True)
class StoreLayout:
    """The database names of one deployment: the broker's prefix and ingest's database."""

    prefix: str
    pipeline_database: str

    def database_of(self, place: Place, tenant: str) -> str:
        if place == "platform":
            return platform_database(self.prefix)
        if place == "pipeline":
            return self.pipeline_database
        return tenant_database(self.prefix, tenant_value(tenant))


@dataclass(frozen=True, slots=True)
class SharedCollection:
    """A collection of records of every tenant, `field` naming each record's tenant.

    Under another name (`restore --as`) a record gets the new name in `field`, and a new
    `_id` from `rekey` when its `_id` spells the tenant. `renamed_copy` False: the record
    is not carried to another name (API keys spell their tenant; the audit log is the
    history of the name it was written under). `fresh_ids` True: its `_id` is an ObjectId
    nobody refers to, replaced under another name so the original tenant keeps its own.
    `merge` True: a restore adds the records the store lacks and deletes none (the audit
    log is append-only). `unique` lists the field sets no two tenants may share (beyond `_id`).
    """

    place: Place
    name: str
    field: str
    rekey: Rekey | None = None
    renamed_copy: bool = True
    fresh_ids: bool = False
    merge: bool = False
    unique: tuple[tuple[str, ...], ...] = ()

    def query(self, tenant: str) -> Record:
        """The filter of `tenant`'s records (the default tenant has no tenant document)."""
        return {self.field: tenant_value(tenant)}

    def renamed(self, record: Record, new_tenant: str) -> Record:
        """The record as it belongs to `new_tenant`."""
        value = tenant_value(new_tenant)
        copy = dict(record)
        if self.rekey is not None:
            copy["_id"] = self.rekey(copy, value)
        if self.field != "_id":
            copy[self.field] = value
        return copy


def _scoped_key(record: Mapping[str, Any], tenant: str | None) -> str:
    """`<tenant>\\n<id>`: the key of the expiry and periodic schedules."""
    _, _, own = str(record["_id"]).partition("\n")
    return f"{tenant or ''}\n{own}"


def _rule_key(record: Mapping[str, Any], tenant: str | None) -> str:
    return f"{tenant}/{record['rule']['name']}"


def _copy_key(record: Mapping[str, Any], tenant: str | None) -> str:
    return f"{tenant} {record['target']} {record['entity']}"


def _rule_renamed(record: Record, tenant: str | None) -> str:
    record["rule"] = {**record["rule"], "owner": tenant}
    return _rule_key(record, tenant)


SHARED: tuple[SharedCollection, ...] = (
    SharedCollection("platform", "tenants", "_id", rekey=lambda _record, tenant: tenant),
    SharedCollection("platform", "api_keys", "tenant", renamed_copy=False),
    SharedCollection("platform", "sharing_rules", "owner", rekey=_rule_renamed),
    SharedCollection("platform", "audit_log", "tenant", renamed_copy=False, merge=True),
    SharedCollection("platform", "contexts", "tenant"),
    SharedCollection("platform", "notifications", "tenant", fresh_ids=True),
    SharedCollection("platform", "periodic_schedule", "tenant", rekey=_scoped_key),
    SharedCollection("platform", "entity_expiry", "tenant", rekey=_scoped_key),
    SharedCollection("pipeline", "service_groups", "tenant", unique=(("format", "group"),)),
    SharedCollection("pipeline", "devices", "tenant", unique=(("format", "group", "device_id"),)),
    SharedCollection("pipeline", "dead_letters", "tenant", fresh_ids=True),
    SharedCollection("pipeline", "outbox", "tenant", fresh_ids=True),
    SharedCollection("pipeline", "shared_copies", "owner", rekey=_copy_key),
)
