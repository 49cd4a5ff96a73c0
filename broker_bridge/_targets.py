"""Where each tenant's fragments go: our own broker by default, or an external NGSI-LD broker."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Target", "TargetDirectory"]


@dataclass(slots=True, frozen=True)
class Target:
    """An NGSI-LD API base URL (ending in /ngsi-ld/v1), the tenant there, and a token.

    `tenant_header` is `NGSILD-Tenant` for brokers of the current spec; Orion-LD also
    reads the older `Fiware-Service`.
    """

    base_url: str
    tenant: str | None = None
    token: str | None = None
    tenant_header: str = "NGSILD-Tenant"
    headers: dict[str, str] = field(init=False, repr=False, compare=False)
    upsert_url: str = field(init=False, repr=False, compare=False)
    entities_url: str = field(init=False, repr=False, compare=False)
    delete_url: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.tenant:
            headers[self.tenant_header] = self.tenant
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        base = self.base_url.rstrip("/")
        object.__setattr__(self, "headers", headers)
        object.__setattr__(self, "upsert_url", f"{base}/entityOperations/upsert")
        object.__setattr__(self, "entities_url", f"{base}/entities")
        object.__setattr__(self, "delete_url", f"{base}/entityOperations/delete")


class TargetDirectory:
    """Every tenant goes to `default_url` under its own name unless `overrides` names a target."""

    def __init__(
        self,
        default_url: str,
        overrides: Mapping[str, Target] | None = None,
        default_token: str | None = None,
    ) -> None:
        self.default_url = default_url
        self._targets: dict[str, Target] = dict(overrides or {})
        self._default_token = default_token

    def __call__(self, tenant: str) -> Target:
        found = self._targets.get(tenant)
        if found is None:
            found = self._targets[tenant] = Target(self.default_url, tenant, self._default_token)
        return found
