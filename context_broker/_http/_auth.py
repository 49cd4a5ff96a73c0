"""API-key authentication and tenant/role authorization for every route (regional profile).

A pure ASGI middleware, so it adds one dictionary lookup per request once a key is known:
`Authorization: Bearer ctk_<tenant>_<secret>`. A key acts only in its own tenant (the
`NGSILD-Tenant` header), with its role: reads need `reader`, writes `writer`, `/admin`
routes `admin`; `region-admin` keys act in every tenant, including the default one.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from context_broker._errors import Forbidden, NgsiLdError, Unauthorized
from context_broker._http._responses import problem_response
from context_broker._store import tenant_key
from regional_tenants import ApiKeyRecord, Role, TenantRegistry, parse_api_key, verify

__all__ = ["ApiKeyGuard", "principal_of"]

_READS = frozenset({"GET", "HEAD", "OPTIONS"})
_GUARDED = ("/ngsi-ld/", "/admin/")
_VERIFIED_TTL_S = 60.0


def principal_of(scope_state: Any) -> ApiKeyRecord | None:
    """The key record the guard admitted for this request, if any."""
    found = getattr(scope_state, "principal", None)
    return found if isinstance(found, ApiKeyRecord) else None


class ApiKeyGuard:
    """Admits a request only with a key that grants its tenant and operation."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # plain key -> (expiry, record): the key hash is checked once a minute, not per request.
        self._verified: dict[str, tuple[float, ApiKeyRecord]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(_GUARDED):
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
        token = _bearer(authorization)
        registry: TenantRegistry = scope["app"].state.tenant_registry
        record = await self._record(registry, token)
        admin_route = scope["path"].startswith("/admin/")
        needed: Role = (
            "admin" if admin_route else ("reader" if scope["method"] in _READS else "writer")
        )
        if admin_route:
            return _allowed(record, record.tenant, needed)
        tenant = tenant_key(tenant_header)
        if tenant is None:
            if record.role != "region-admin":
                raise Forbidden(
                    f"a key of tenant {record.tenant!r} acts in its own tenant: "
                    f"send NGSILD-Tenant: {record.tenant}"
                )
            return record
        _allowed(record, tenant, needed)
        if await registry.status(tenant) == "suspended":
            raise Forbidden(f"tenant {tenant!r} is suspended")
        return record

    async def _record(self, registry: TenantRegistry, token: str) -> ApiKeyRecord:
        now = time.monotonic()
        cached = self._verified.get(token)
        if cached is not None and cached[0] > now:
            return cached[1]
        parts = parse_api_key(token)
        record = await registry.key(parts[1]) if parts is not None else None
        if record is None or not verify(token, record):
            raise Unauthorized(
                "the API key is not valid (revoked, mistyped or of another platform)"
            )
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[token] = (now + _VERIFIED_TTL_S, record)
        return record


def _bearer(header: str | None) -> str:
    if not header:
        raise Unauthorized("this broker needs an API key: send `Authorization: Bearer <key>`")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send the API key as `Authorization: Bearer <key>`")
    return token.strip()


def _allowed(record: ApiKeyRecord, tenant: str, needed: Role) -> ApiKeyRecord:
    if not record.grants(tenant, needed):
        if record.tenant != tenant and record.role != "region-admin":
            raise Forbidden(f"a key of tenant {record.tenant!r} has no access to tenant {tenant!r}")
        raise Forbidden(f"a {record.role} key may not do this: it needs the {needed} role")
    return record
