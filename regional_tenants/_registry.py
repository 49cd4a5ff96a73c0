"""The platform database's regional records: tenants, API keys, sharing rules and audit log.

A tenant's record is the directory's tenant document (`tenants`, `_id` = slug) with the
regional fields added, so an onboarded tenant exists for the broker at once; whether a
tenant exists, its status, suspension and deletion belong to the `TenantDirectory`.
The audit log is append-only: this module never updates or deletes an entry.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, get_args

from pymongo.asynchronous.database import AsyncDatabase

from store_edge import Index, ensure_indexes, store_operation

from ._directory import TenantDirectory
from ._keys import ApiKeyRecord
from ._mongo_directory import MongoTenantDirectory
from ._sharing import SharingRule
from ._tenant_name import platform_database
from ._tenants import ApiValidation, Tenant

__all__ = ["AuditEntry", "TenantRegistry"]

_TENANTS, _KEYS, _RULES, _AUDIT = "tenants", "api_keys", "sharing_rules", "audit_log"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One admin action or cross-tenant share, as written."""

    tenant: str
    at: datetime
    actor: str
    action: str
    detail: dict[str, Any]


class TenantRegistry:
    """Reads and writes the regional records; the caller owns the database client.

    `key` is cached for `cache_ttl_s`, since the broker asks on every request. `directory`
    answers for the tenants themselves (by default the directory of the same store).
    """

    def __init__(
        self,
        platform: AsyncDatabase[dict[str, Any]],
        *,
        cache_ttl_s: float = 5.0,
        directory: TenantDirectory | None = None,
    ):
        self._db = platform
        self._ttl = cache_ttl_s
        self._keys: dict[str, tuple[float, ApiKeyRecord | None]] = {}
        self.directory: TenantDirectory = directory or MongoTenantDirectory(
            platform.client, _prefix_of(platform), cache_ttl_s=cache_ttl_s
        )

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self._db[_AUDIT], [Index((("tenant", 1), ("at", -1)))])
        await ensure_indexes(self._db[_KEYS], [Index((("tenant", 1),))])

    # -- tenants -----------------------------------------------------------------------

    @store_operation("writing a tenant")
    async def put_tenant(self, tenant: Tenant) -> bool:
        """Create or update a tenant's record; True when it is new."""
        regional = tenant.to_dict()
        del regional["slug"]
        result = await self._db[_TENANTS].update_one(
            {"_id": tenant.slug},
            {"$set": {"regional": regional}, "$setOnInsert": {"createdAt": tenant.created_at}},
            upsert=True,
        )
        return result.upserted_id is not None

    @store_operation("reading a tenant")
    async def get_tenant(self, slug: str) -> Tenant | None:
        doc = await self._db[_TENANTS].find_one({"_id": slug, "regional": {"$exists": True}})
        return None if doc is None else _tenant_from(doc)

    @store_operation("listing tenants")
    async def list_tenants(self) -> list[Tenant]:
        cursor = self._db[_TENANTS].find({"regional": {"$exists": True}}, sort=[("_id", 1)])
        return [_tenant_from(doc) async for doc in cursor]

    @store_operation("writing a tenant's API validation")
    async def set_api_validation(self, slug: str, mode: ApiValidation) -> bool:
        """Set how the API checks the tenant's writes; False when it is not onboarded."""
        if mode not in get_args(ApiValidation):
            modes = get_args(ApiValidation)
            raise ValueError(f"apiValidation must be one of {modes}, not {mode!r}")
        result = await self._db[_TENANTS].update_one(
            {"_id": slug, "regional": {"$exists": True}},
            {"$set": {"regional.api_validation": mode}},
        )
        return result.matched_count == 1

    @store_operation("removing a tenant")
    async def remove_tenant(self, slug: str) -> bool:
        """Delete the tenant through the directory (its data too), then its keys and rules;
        False when it did not exist."""
        deleted = await self.directory.delete(slug)
        await self._db[_KEYS].delete_many({"tenant": slug})
        await self._db[_RULES].delete_many({"owner": slug})
        self._keys.clear()
        return deleted

    # -- API keys ----------------------------------------------------------------------

    @store_operation("storing an API key")
    async def put_key(self, record: ApiKeyRecord) -> None:
        document = record.to_dict()
        await self._db[_KEYS].replace_one(
            {"_id": record.key_id}, {"_id": record.key_id, **document}, upsert=True
        )
        self._keys.pop(record.key_id, None)

    @store_operation("reading an API key")
    async def key(self, key_id: str) -> ApiKeyRecord | None:
        now = time.monotonic()
        cached = self._keys.get(key_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        doc = await self._db[_KEYS].find_one({"_id": key_id})
        record = None
        if doc is not None:
            doc.pop("_id", None)
            try:
                record = ApiKeyRecord.from_dict(doc)
            except ValueError:
                record = None
        self._keys[key_id] = (now + self._ttl, record)
        return record

    @store_operation("listing API keys")
    async def keys_of(self, tenant: str) -> list[ApiKeyRecord]:
        cursor = self._db[_KEYS].find({"tenant": tenant}, {"_id": 0})
        return [ApiKeyRecord.from_dict(doc) async for doc in cursor]

    @store_operation("revoking an API key")
    async def revoke_key(self, key_id: str) -> bool:
        result = await self._db[_KEYS].delete_one({"_id": key_id})
        self._keys.pop(key_id, None)
        return result.deleted_count == 1

    # -- sharing rules -----------------------------------------------------------------

    @store_operation("storing a sharing rule")
    async def put_rule(self, owner: str, rule: SharingRule) -> None:
        await self._db[_RULES].replace_one(
            {"_id": f"{owner}/{rule.name}"},
            {"_id": f"{owner}/{rule.name}", "owner": owner, "rule": rule.to_dict()},
            upsert=True,
        )

    @store_operation("reading sharing rules")
    async def rules_of(self, owner: str) -> list[SharingRule]:
        cursor = self._db[_RULES].find({"owner": owner})
        return [SharingRule.from_dict(doc["rule"]) async for doc in cursor]

    @store_operation("reading sharing rules")
    async def all_rules(self) -> dict[str, list[SharingRule]]:
        rules: dict[str, list[SharingRule]] = {}
        async for doc in self._db[_RULES].find({}):
            rules.setdefault(doc["owner"], []).append(SharingRule.from_dict(doc["rule"]))
        return rules

    # -- audit log ---------------------------------------------------------------------

    @store_operation("writing the audit log")
    async def audit(
        self, tenant: str, actor: str, action: str, detail: dict[str, Any] | None = None
    ) -> None:
        """Append one entry to the tenant's audit log."""
        await self._db[_AUDIT].insert_one(
            {
                "tenant": tenant,
                "at": datetime.now(UTC),
                "actor": actor,
                "action": action,
                "detail": detail or {},
            }
        )

    @store_operation("reading the audit log")
    async def audit_log(self, tenant: str, *, limit: int = 100) -> list[AuditEntry]:
        cursor = self._db[_AUDIT].find({"tenant": tenant}, sort=[("at", -1)], limit=limit)
        return [
            AuditEntry(doc["tenant"], doc["at"], doc["actor"], doc["action"], doc["detail"])
            async for doc in cursor
        ]


def _tenant_from(doc: dict[str, Any]) -> Tenant:
    return Tenant.from_dict({**doc["regional"], "slug": doc["_id"]})


def _prefix_of(platform: AsyncDatabase[dict[str, Any]]) -> str:
    prefix = platform.name.removesuffix(platform_database(""))
    if platform_database(prefix) != platform.name:
        raise ValueError(f"{platform.name!r} is not a platform database (<prefix>__platform)")
    return prefix
