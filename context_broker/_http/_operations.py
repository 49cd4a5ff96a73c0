"""Routes for operators and their tools: liveness, readiness and Prometheus metrics.

Outside `/ngsi-ld/` and `/admin/`, so no API key is asked for them (probes and scrapers
hold none); none of them reads the store.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from context_broker._health import Readiness, health_body
from context_broker._http._responses import json_response
from context_broker._metrics import EXPOSITION_TYPE, BrokerMetrics

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
    exported: BrokerMetrics = request.app.state.metrics
    return Response(exported.exposition(), media_type=EXPOSITION_TYPE)
