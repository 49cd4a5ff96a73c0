"""Routes for operators and their tools: liveness, readiness and Prometheus metrics.

Outside `/ngsi-ld/` and `/admin/`, so no tenant's API key is asked for them: the probes
hold none. /metrics names the tenants, so it asks for the metrics key
(CONTESTO_METRICS_KEY) when one is set, and in the regional profile for that key or a
region-admin key. None of them reads the store, but for looking up such a key.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from context_broker._errors import Forbidden, NgsiLdError, Unauthorized
from context_broker._health import Readiness, health_body
from context_broker._http._deps import Deps
from context_broker._http._responses import json_response, problem_response
from context_broker._metrics import EXPOSITION_TYPE, BrokerMetrics, is_metrics_key
from regional_tenants import AccessRefused, KeyGate

router = APIRouter(include_in_schema=False)


@router.get("/health/live")
async def live() -> Response:
    """The process serves HTTP."""
    return json_response({"status": "live"})


@router.get("/health/ready")
async def ready(request: Request) -> Response:
    """200 when every check passes, else 503; the body names each check and its verdict."""
    readiness: Readiness = request.app.state.readiness
    ok, body = health_body(readiness.checks())
    return Response(body, status_code=200 if ok else 503, media_type="application/json")


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """The Prometheus text exposition of this process, and of ingest under `contesto up`."""
    refusal = await _scrape_refusal(request)
    if refusal is not None:
        headers = {"WWW-Authenticate": "Bearer"} if refusal.status == 401 else None
        return problem_response(refusal, headers=headers)
    exported: BrokerMetrics = request.app.state.metrics
    return Response(exported.exposition(), media_type=EXPOSITION_TYPE)


async def _scrape_refusal(request: Request) -> NgsiLdError | None:
    """Why this scrape is refused, or None when it may read the metrics."""
    deps: Deps = request.app.state.deps
    metrics_key, key_required = deps.settings.metrics_key, deps.settings.auth_required
    if not metrics_key and not key_required:
        return None
    authorization = request.headers.get("authorization")
    if is_metrics_key(authorization, metrics_key):
        return None
    wanted = "the metrics key (CONTESTO_METRICS_KEY)" if metrics_key else ""
    if key_required:
        wanted += " or a region-admin key" if wanted else "a region-admin key"
        if authorization is not None:
            try:
                record = await KeyGate(request.app.state.tenant_registry).principal(authorization)
            except AccessRefused as refused:
                return Unauthorized(f"/metrics needs {wanted}: {refused.message}")
            if record.role == "region-admin":
                return None
            return Forbidden(f"/metrics needs {wanted}, not a key of tenant {record.tenant!r}")
    return Unauthorized(f"/metrics needs {wanted} as `Authorization: Bearer ...`")
