"""The tenant directory on MongoDB: the tenant documents of `<prefix>__platform.tenants`.

A tenant exists when its document does (`_id` = name); an onboarded tenant's document also
holds its regional record (`regional`, written by `TenantRegistry`), and with it its status.
Each process caches the tenants it found; every deletion or status change writes a new
token for the tenant into one change document, which each process reads at most once per
`cache_ttl_s` to forget the tenants whose token moved. Tenants not found are never cached,
so a tenant created anywhere is seen at once.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pymongo import AsyncMongoClient

from ._directory import TenantEntry, TenantState
from ._tenant_name import platform_database, tenant_database

__all__ = ["MongoTenantDirectory"]

_CHANGES_ID = "tenants"


class MongoTenantDirectory:
    """The `TenantDirectory` of one store and database prefix; the caller owns the client."""

    def __init__(
        self,
        client: AsyncMongoClient[dict[str, Any]],
        prefix: str,
        *,
        auto_create: bool = False,
        cache_ttl_s: float = 5.0,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._auto_create = auto_create
        self._ttl = cache_ttl_s
        platform = client[platform_database(prefix)]
        self._tenants = platform["tenants"]
        self._changes = platform["tenant_changes"]
        self._found: dict[str, TenantState] = {}
        self._tokens: dict[str, str] | None = None
        self._next_check = 0.0
        self._listeners: list[Callable[[str], None]] = []

    async def exists(self, name: str) -> bool:
        return await self.status(name) is not None

    async def create_if_allowed(self, name: str) -> bool:
        if await self.exists(name):
            return True
        if not self._auto_create:
            return False
        await self._tenants.update_one(
            {"_id": name}, {"$setOnInsert": {"createdAt": datetime.now(UTC)}}, upsert=True
        )
        return True

    async def status(self, name: str) -> TenantState | None:
        await self._catch_up()
        found = self._found.get(name)
        if found is not None:
            return found
        document = await self._tenants.find_one({"_id": name}, {"regional.status": 1})
        if document is None:
            return None
        found = _status_of(document)
        self._found[name] = found
        return found

    async def suspend(self, name: str) -> bool:
        return await self._set_status(name, "suspended")

    async def resume(self, name: str) -> bool:
        return await self._set_status(name, "active")

    async def delete(self, name: str) -> bool:
        deleted = await self._tenants.delete_one({"_id": name})
        await self.announce(name)
        await self._client.drop_database(tenant_database(self._prefix, name))
        return deleted.deleted_count == 1

    async def entries(self) -> list[TenantEntry]:
        cursor = self._tenants.find({}, {"regional.status": 1}, sort=[("_id", 1)])
        return [
            TenantEntry(
                str(document["_id"]),
                "onboarded" if isinstance(document.get("regional"), dict) else "auto",
                _status_of(document),
            )
            async for document in cursor
        ]

    def on_forget(self, listener: Callable[[str], None]) -> None:
        self._listeners.append(listener)

    async def announce(self, name: str) -> None:
        """Tell every process that the tenant changed (its regional record was rewritten)."""
        await self._changes.update_one(
            {"_id": _CHANGES_ID}, {"$set": {f"tokens.{name}": secrets.token_hex(8)}}, upsert=True
        )
        self._forget(name)

    async def _set_status(self, name: str, status: TenantState) -> bool:
        result = await self._tenants.update_one(
            {"_id": name, "regional": {"$exists": True}}, {"$set": {"regional.status": status}}
        )
        await self.announce(name)
        return result.matched_count == 1

    async def _catch_up(self) -> None:
        """Forget the tenants changed by any process since the last look (once per TTL)."""
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self._ttl
        try:
            document = await self._changes.find_one({"_id": _CHANGES_ID})
        except BaseException:
            self._next_check = 0.0
            raise
        tokens: dict[str, str] = dict(document.get("tokens", {})) if document else {}
        if self._tokens is not None:
            for name, token in tokens.items():
                if self._tokens.get(name) != token:
                    self._forget(name)
        self._tokens = tokens

    def _forget(self, name: str) -> None:
        self._found.pop(name, None)
        for listener in self._listeners:
            listener(name)


def _status_of(document: dict[str, Any]) -> TenantState:
    regional = document.get("regional")
    if isinstance(regional, dict) and regional.get("status") == "suspended":
        return "suspended"
    return "active"
