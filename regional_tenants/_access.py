"""Who may act where in the regional profile: one rule for every entry point.

A request carries `Authorization: Bearer ctk_<tenant>_<secret>`; its key must be valid,
minted under the regional profile, of an existing and active tenant (as the registry's
`TenantDirectory` says), and grant the role the operation needs in the tenant it names
(region-admin keys: in every tenant, even a suspended one).
The NGSI-LD API, its admin routes and the provisioning API all ask `KeyGate`.
"""

from __future__ import annotations

import time

from ._keys import ApiKeyRecord, Role, parse_api_key, verify
from ._registry import TenantRegistry

__all__ = ["AccessRefused", "KeyGate"]

_VERIFIED_TTL_S = 60.0
_VERIFIED_MAX = 10_000


class AccessRefused(Exception):
    """A request refused: `status` 401 (no valid key) or 403 (a key without that reach)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class KeyGate:
    """Verifies keys (hash checked once a minute per key) and decides what they may do."""

    def __init__(self, registry: TenantRegistry, *, tenant_header: str = "NGSILD-Tenant") -> None:
        self.registry = registry
        self._tenant_header = tenant_header
        self._verified: dict[str, tuple[float, ApiKeyRecord]] = {}

    async def admit(
        self, authorization: str | None, tenant: str | None, needed: Role
    ) -> ApiKeyRecord:
        """The key's record when it may act as `needed` in `tenant` (None: the default tenant)."""
        record = await self.principal(authorization)
        if tenant is None:
            if record.role != "region-admin":
                raise AccessRefused(
                    403,
                    f"a key of tenant {record.tenant!r} acts in its own tenant: "
                    f"send {self._tenant_header}: {record.tenant}",
                )
            return record
        if not record.grants(tenant, needed):
            if record.tenant != tenant and record.role != "region-admin":
                raise AccessRefused(
                    403, f"a key of tenant {record.tenant!r} has no access to tenant {tenant!r}"
                )
            raise AccessRefused(
                403, f"a {record.role} key may not do this: it needs the {needed} role"
            )
        if (
            record.role != "region-admin"
            and await self.registry.directory.status(tenant) == "suspended"
        ):
            raise AccessRefused(403, f"tenant {tenant!r} is suspended")
        return record

    async def principal(self, authorization: str | None) -> ApiKeyRecord:
        """The record of a valid regional key whose tenant is not suspended."""
        record = await self._record(_bearer(authorization))
        if record.profile != "regional":
            reissue = (
                "contesto tenants bootstrap"
                if record.role == "region-admin"
                else f"contesto tenants key {record.tenant} --role {record.role}"
            )
            raise AccessRefused(
                401,
                "this key was issued while the platform asked for no API key (the development "
                f"profile) and is not valid in the regional profile; issue a new one with "
                f"`{reissue}`",
            )
        if record.role != "region-admin":
            status = await self.registry.directory.status(record.tenant)
            if status is None:
                raise AccessRefused(401, f"tenant {record.tenant!r} was deleted: its keys are void")
            if status == "suspended":
                raise AccessRefused(
                    403, f"tenant {record.tenant!r} is suspended: its keys are refused"
                )
        return record

    async def _record(self, token: str) -> ApiKeyRecord:
        now = time.monotonic()
        cached = self._verified.get(token)
        if cached is not None and cached[0] > now:
            return cached[1]
        parts = parse_api_key(token)
        record = await self.registry.key(parts[1]) if parts is not None else None
        if record is None or not verify(token, record):
            raise AccessRefused(
                401, "the API key is not valid (revoked, mistyped or of another platform)"
            )
        if len(self._verified) > _VERIFIED_MAX:
            self._verified.clear()
        self._verified[token] = (now + _VERIFIED_TTL_S, record)
        return record


def _bearer(header: str | None) -> str:
    if not header:
        raise AccessRefused(401, "an API key is needed: send `Authorization: Bearer <key>`")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AccessRefused(401, "send the API key as `Authorization: Bearer <key>`")
    return token.strip()
