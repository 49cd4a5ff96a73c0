"""An NGSI-LD API endpoint: base URL, the tenant there and a token."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Endpoint"]


@dataclass(slots=True, frozen=True)
class Endpoint:
    """An NGSI-LD API base URL (ending in /ngsi-ld/v1), the tenant there, and a token.

    `tenant_header` is `NGSILD-Tenant` for brokers of the current spec; Orion-LD also
    reads the older `Fiware-Service`.
    """

    base_url: str
    tenant: str | None = None
    token: str | None = None
    tenant_header: str = "NGSILD-Tenant"
    headers: dict[str, str] = field(init=False, repr=False, compare=False)
    """JSON in and out, the tenant and the token: the headers of the client's operations."""
    scope_headers: dict[str, str] = field(init=False, repr=False, compare=False)
    """The tenant and the token only: the headers of a raw `NgsiLdClient.request`."""

    def __post_init__(self) -> None:
        scope: dict[str, str] = {}
        if self.tenant:
            scope[self.tenant_header] = self.tenant
        if self.token:
            scope["Authorization"] = f"Bearer {self.token}"
        headers = {"Content-Type": "application/json", "Accept": "application/json", **scope}
        object.__setattr__(self, "scope_headers", scope)
        object.__setattr__(self, "headers", headers)

    def url(self, path: str) -> str:
        """The URL of `path` (e.g. `entities`) under the base URL."""
        return f"{self.base_url.rstrip('/')}/{path.lstrip('/')}"
