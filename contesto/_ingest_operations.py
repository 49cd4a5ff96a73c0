"""Ingest's routes for operators, beside the provisioning API: liveness, readiness (MQTT
session, outbox depth and lag, from the status made once a second) and its metrics.

Outside `/iot`, so no tenant's key is asked for them; /metrics asks for the metrics key
(CONTESTO_METRICS_KEY) when one is set, and in the regional profile refuses every scrape
without it. None of them reads the store.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request, Response

from contesto._ingest_metrics import IngestMetrics
from context_broker import Readiness, ReadinessSettings, health_body, is_metrics_key

__all__ = ["operations_router"]

_EXPOSITION_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def operations_router(
    metrics: IngestMetrics, settings: ReadinessSettings, *, key_required: bool
) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    readiness = Readiness(None, [lambda: metrics.status], settings.readiness_limits())
    metrics_key = settings.metrics_key
    guarded = key_required or bool(metrics_key)

    @router.get("/health/live")
    async def live() -> Response:
        return Response(b'{"status":"live"}', media_type="application/json")

    @router.get("/health/ready")
    async def ready() -> Response:
        ok, body = health_body(readiness.checks())
        return Response(body, status_code=200 if ok else 503, media_type="application/json")

    @router.get("/metrics")
    async def exported(request: Request) -> Response:
        if guarded and not is_metrics_key(request.headers.get("authorization"), metrics_key):
            detail = "ingest's /metrics needs the metrics key (CONTESTO_METRICS_KEY)"
            if not metrics_key:
                detail += ", which is not set: set it to scrape ingest"
            body = orjson.dumps({"title": "Unauthorized", "detail": detail})
            return Response(
                body,
                status_code=401,
                media_type="application/json",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return Response(metrics.exposition(), media_type=_EXPOSITION_TYPE)

    return router
