"""Where each tenant's fragments go: our own broker by default, or an external NGSI-LD broker."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pydantic import BaseModel

from ngsild_client import Endpoint, HttpAdapter, NgsiLdClient

__all__ = ["ExternalTarget", "TargetDirectory", "TenantClients"]


class ExternalTarget(BaseModel):
    """A tenant published to another NGSI-LD broker (Orion-LD, Scorpio, Stellio)."""

    url: str
    tenant: str | None = None
    token: str | None = None
    tenant_header: str = "NGSILD-Tenant"


class TargetDirectory:
    """Every tenant goes to `default_url` under its own name unless `overrides` names a target."""

    def __init__(
        self,
        default_url: str,
        overrides: Mapping[str, Endpoint] | None = None,
        default_token: str | None = None,
    ) -> None:
        self.default_url = default_url
        self._targets: dict[str, Endpoint] = dict(overrides or {})
        self._default_token = default_token

    @classmethod
    def of(
        cls,
        default_url: str,
        external: Mapping[str, ExternalTarget],
        default_token: str | None = None,
    ) -> TargetDirectory:
        """Our broker at `default_url`, and the `external` targets of some tenants."""
        overrides = {
            tenant: Endpoint(t.url, t.tenant or tenant, t.token, t.tenant_header)
            for tenant, t in external.items()
        }
        return cls(default_url, overrides, default_token)

    def __call__(self, tenant: str) -> Endpoint:
        found = self._targets.get(tenant)
        if found is None:
            found = self._targets[tenant] = Endpoint(self.default_url, tenant, self._default_token)
        return found


class TenantClients:
    """The NGSI-LD client of each tenant's target, all over one HTTP adapter."""

    def __init__(self, http: HttpAdapter, targets: Callable[[str], Endpoint]) -> None:
        self._http = http
        self._targets = targets
        self._clients: dict[str, NgsiLdClient] = {}

    def __call__(self, tenant: str) -> NgsiLdClient:
        found = self._clients.get(tenant)
        if found is None:
            found = self._clients[tenant] = NgsiLdClient(self._http, self._targets(tenant))
        return found
