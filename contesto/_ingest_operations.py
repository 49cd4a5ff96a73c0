"""Ingest's routes for operators, beside the provisioning API: liveness, readiness (MQTT
session, outbox depth and lag, from the status made once a second) and its metrics.

Outside `/iot`, so no key is asked for them; none of them reads the store.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from contesto._ingest_metrics import IngestMetrics
from context_broker import Readiness, ReadinessLimits, health_body

__all__ = ["operations_router"]

_EXPOSITION_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def operations_router(metrics: IngestMetrics, limits: ReadinessLimits) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    readiness = Readiness(None, lambda: metrics.status, limits)

    @router.get("/health/live")
    async def live() -> Response:
        return Response(b'{"status":"live"}', media_type="application/json")

    @router.get("/health/ready")
    async def ready() -> Response:
        ok, body = health_body(readiness.checks())
        return Response(body, status_code=200 if ok else 503, media_type="application/json")

    @router.get("/metrics")
    async def exported() -> Response:
        return Response(metrics.exposition(), media_type=_EXPOSITION_TYPE)

    return router
