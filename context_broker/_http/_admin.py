"""The regional admin API: onboard, list, show, suspend tenants; issue keys; read audit logs.

Onboarding and suspension need a `region-admin` key; a tenant's `admin` key reads its own
tenant, its audit log, and issues keys for it. Without the regional profile (no API keys
required) every call is allowed, as the development stack expects.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from context_broker._errors import BadRequestData, Forbidden, ResourceNotFound
from context_broker._http._auth import principal_of
from context_broker._http._responses import json_response
from regional_tenants import (
    ApiValidation,
    OnboardingError,
    Profile,
    Tenant,
    TenantRegistry,
    issue_key,
    onboard,
    onboard_comune,
)

router = APIRouter(prefix="/admin", tags=["regional admin"])


class OnboardRequest(BaseModel):
    """A comune by name, slug or ISTAT code; or a utility or region tenant by slug."""

    comune: str | None = Field(None, examples=["Prato"])
    slug: str | None = Field(None, examples=["publiacqua"])
    kind: Literal["utility", "region"] | None = None
    name: str | None = None
    models: list[str] = []
    new_key: bool = False


class ValidationRequest(BaseModel):
    """How the NGSI-LD API checks the tenant's writes of the types its models cover."""

    apiValidation: ApiValidation


class KeyRequest(BaseModel):
    role: Literal["reader", "writer", "admin"] = "reader"


def _registry(request: Request) -> TenantRegistry:
    registry: TenantRegistry = request.app.state.tenant_registry
    return registry


def _actor(request: Request, *, region: bool = False, tenant: str | None = None) -> str:
    """Who acts (for the audit log); refuses keys without the needed reach."""
    record = principal_of(request.state)
    if record is None:
        return "local"
    if record.role == "region-admin":
        return f"key:{record.key_id}"
    if region or (tenant is not None and tenant != record.tenant):
        raise Forbidden("only a region-admin key may do this")
    return f"key:{record.key_id}"


def _profile(actor: str) -> Profile:
    """Keys minted without a key asked for (the development profile) stay in that profile."""
    return "dev" if actor == "local" else "regional"


def _view(tenant: Tenant) -> dict[str, Any]:
    data = tenant.to_dict()
    data["boundary"] = None if tenant.boundary is None else {"type": tenant.boundary["type"]}
    return data


@router.post("/tenants", status_code=201)
async def onboard_tenant(body: OnboardRequest, request: Request) -> Response:
    """Onboard a comune (with its boundary and default models) or a utility; idempotent."""
    actor = _actor(request, region=True)
    registry = _registry(request)
    try:
        if body.comune:
            done = await onboard_comune(
                registry, body.comune, actor=actor, new_key=body.new_key, profile=_profile(actor)
            )
        elif body.slug and body.kind:
            tenant = Tenant(
                slug=body.slug,
                kind=body.kind,
                name=body.name or body.slug,
                created_at=datetime.now(UTC),
                models=tuple(body.models),
            )
            done = await onboard(
                registry, tenant, actor=actor, new_key=body.new_key, profile=_profile(actor)
            )
        else:
            raise BadRequestData("give `comune`, or `slug` and `kind` (utility or region)")
    except (OnboardingError, ValueError) as exc:
        raise BadRequestData(str(exc)) from None
    answer = {"tenant": _view(done.tenant), "created": done.created}
    if done.admin_key:
        answer["adminKey"] = done.admin_key
    return json_response(answer, status=201 if done.created else 200)


@router.get("/tenants")
async def list_tenants(request: Request) -> Response:
    _actor(request, region=True)
    return json_response([_view(t) for t in await _registry(request).list_tenants()])


@router.get("/tenants/{slug}")
async def show_tenant(slug: str, request: Request) -> Response:
    _actor(request, tenant=slug)
    tenant = await _registry(request).get_tenant(slug)
    if tenant is None:
        raise ResourceNotFound(f"no tenant {slug!r} is onboarded")
    return json_response(_view(tenant))


@router.post("/tenants/{slug}/suspend", status_code=204)
async def suspend_tenant(slug: str, request: Request) -> Response:
    actor = _actor(request, region=True)
    registry = _registry(request)
    if not await registry.directory.suspend(slug):
        raise ResourceNotFound(f"no tenant {slug!r} is onboarded")
    await registry.audit(slug, actor, "tenant.suspended")
    return Response(status_code=204)


@router.put("/tenants/{slug}/api-validation")
async def set_api_validation(slug: str, body: ValidationRequest, request: Request) -> Response:
    actor = _actor(request, tenant=slug)
    registry = _registry(request)
    if not await registry.set_api_validation(slug, body.apiValidation):
        raise ResourceNotFound(f"no tenant {slug!r} is onboarded")
    await registry.audit(slug, actor, "tenant.api_validation", {"mode": body.apiValidation})
    validation = request.app.state.deps.broker.validation
    if validation is not None:
        validation.forget(slug)
    return json_response({"tenant": slug, "apiValidation": body.apiValidation})


@router.post("/tenants/{slug}/keys", status_code=201)
async def new_key(slug: str, body: KeyRequest, request: Request) -> Response:
    actor = _actor(request, tenant=slug)
    registry = _registry(request)
    if await registry.get_tenant(slug) is None:
        raise ResourceNotFound(f"no tenant {slug!r} is onboarded")
    key = await issue_key(registry, slug, body.role, actor=actor, profile=_profile(actor))
    return json_response({"tenant": slug, "role": body.role, "key": key}, status=201)


@router.get("/tenants/{slug}/audit")
async def audit_log(slug: str, request: Request, limit: int = 100) -> Response:
    _actor(request, tenant=slug)
    entries = await _registry(request).audit_log(slug, limit=min(max(limit, 1), 1000))
    return json_response(
        [
            {"at": e.at.isoformat(), "actor": e.actor, "action": e.action, "detail": e.detail}
            for e in entries
        ]
    )
