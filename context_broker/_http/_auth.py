"""API-key authentication and tenant/role authorization for every route (regional profile).

A pure ASGI middleware in front of the routes; the rule itself is `regional_tenants.KeyGate`,
shared with the provisioning API: a key acts only in its own tenant (the `NGSILD-Tenant`
header), with its role: reads (and `POST /entityOperations/query`) need `reader`, other
writes `writer`, `/admin` routes `admin`; `region-admin` keys act in every tenant.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from context_broker._errors import Forbidden, NgsiLdError, Unauthorized
from context_broker._http._negotiation import tenant_key
from context_broker._http._responses import problem_response
from regional_tenants import AccessRefused, ApiKeyRecord, KeyGate, Role

__all__ = ["ApiKeyGuard", "principal_of"]

_READS = frozenset({"GET", "HEAD", "OPTIONS"})
# POSTs that only read: the spec puts this query in a body because it does not fit a URL.
_READ_POSTS = frozenset({"/ngsi-ld/v1/entityOperations/query"})
_GUARDED = ("/ngsi-ld/", "/admin/")


def principal_of(scope_state: Any) -> ApiKeyRecord | None:
    """The key record the guard admitted for this request, if any."""
    found = getattr(scope_state, "principal", None)
    return found if isinstance(found, ApiKeyRecord) else None


def needed_role(method: str, path: str) -> Role:
    """The role an NGSI-LD or admin request needs."""
    if path.startswith("/admin/"):
        return "admin"
    if method in _READS or (method == "POST" and path.rstrip("/") in _READ_POSTS):
        return "reader"
    return "writer"


class ApiKeyGuard:
    """Admits a request only with a key that grants its tenant and operation."""

    def __init__(self, app: ASGIApp, also_guarded: tuple[str, ...] = ()) -> None:
        """`also_guarded`: path prefixes beside the API's whose requests are reads or
        writes of a tenant like the API's (the control room's live stream)."""
        self.app = app
        self._guarded = _GUARDED + also_guarded
        self._gate: KeyGate | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self._guarded):
            await self.app(scope, receive, send)
            return
        try:
            record = await self._admit(scope)
        except NgsiLdError as error:
            headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
            await problem_response(error, headers=headers)(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = record
        await self.app(scope, receive, send)

    async def _admit(self, scope: Scope) -> ApiKeyRecord:
        authorization = tenant_header = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"ngsild-tenant":
                tenant_header = value.decode("latin-1")
        if self._gate is None:
            self._gate = KeyGate(scope["app"].state.tenant_registry)
        needed = needed_role(scope["method"], scope["path"])
        try:
            if needed == "admin":
                record = await self._gate.principal(authorization)
                return await self._gate.admit(authorization, record.tenant, needed)
            return await self._gate.admit(authorization, tenant_key(tenant_header), needed)
        except AccessRefused as refused:
            if refused.status == 401:
                raise Unauthorized(refused.message) from None
            raise Forbidden(refused.message) from None
