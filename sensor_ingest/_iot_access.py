"""Who may provision where: the provisioning API's keys, tenants and audit log.

In the regional profile the provisioning API takes the NGSI-LD API's keys and roles
(`regional_tenants.KeyGate`): `fiware-service` must be the key's tenant, reads need a
`reader` key, changes a `writer` key. With auto-create off a tenant must be onboarded;
a suspended tenant is refused (except to region-admin keys). Every change is appended to
the tenant's audit log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from regional_tenants import AccessRefused, KeyGate, Role, TenantRegistry

__all__ = ["ProvisioningAccess"]


@dataclass(slots=True)
class ProvisioningAccess:
    """The provisioning API's gate on `tenants`; `keys_required` is the regional profile."""

    tenants: TenantRegistry
    keys_required: bool
    auto_create_tenants: bool
    _gate: KeyGate = field(init=False)

    def __post_init__(self) -> None:
        self._gate = KeyGate(self.tenants, tenant_header="fiware-service")

    async def admit(self, headers: Mapping[str, str], tenant: str, needed: Role) -> str:
        """The actor (for the audit log) when the request may act as `needed` in `tenant`."""
        region_admin = False
        actor = "anonymous"
        if self.keys_required:
            record = await self._gate.admit(headers.get("authorization"), tenant, needed)
            region_admin = record.role == "region-admin"
            actor = f"key:{record.key_id}"
        if self.auto_create_tenants and needed == "reader":
            return actor
        status = await self.tenants.directory.status(tenant)
        if status is None and not self.auto_create_tenants:
            raise AccessRefused(404, f"no tenant {tenant!r} is onboarded")
        if status == "suspended" and needed != "reader" and not region_admin:
            raise AccessRefused(403, f"tenant {tenant!r} is suspended")
        return actor

    async def audit(self, tenant: str, actor: str, action: str, detail: dict[str, Any]) -> None:
        await self.tenants.audit(tenant, actor, action, detail)
