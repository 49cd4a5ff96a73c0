"""Retrieve Context Source Identity (clause 5.15): GET /info/sourceIdentity answers the
broker's ContextSourceIdentity (clause 5.2.40)."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Request, Response

from context_broker._http._deps import deps_of
from context_broker._http._negotiation import get_call
from context_broker._http._openapi import MEDIA_TYPES, READ, answer, operation
from context_broker._http._responses import representation
from context_broker._time import format_datetime, utc_now

router = APIRouter(tags=["Discovery"])
ALIAS = "contesto"


@router.get(
    "/info/sourceIdentity",
    openapi_extra=operation(
        "Retrieve Context Source Identity (clause 5.15)",
        errors=READ,
        answers=answer(200),
        representations=MEDIA_TYPES,
    ),
)
async def retrieve_source_identity(request: Request) -> Response:
    deps = deps_of(request)
    call = await get_call(request, deps.resolver)
    settings = deps.settings
    deployment = uuid.uuid5(uuid.NAMESPACE_URL, f"{settings.mongo_url}#{settings.database_prefix}")
    # Clause 5.2.40: with tenants, the alias identifies the tenant within this source.
    alias = ALIAS if call.tenant is None else f"{ALIAS}:{call.tenant}"
    now = utc_now()
    started: datetime = request.app.state.started_at
    body = {
        "id": f"urn:ngsi-ld:ContextSourceIdentity:{deployment}",
        "type": "ContextSourceIdentity",
        "contextSourceAlias": alias,
        "contextSourceUptime": iso_duration((now - started).total_seconds()),
        "contextSourceTimeAt": format_datetime(now),
    }
    return representation(call, body)


def iso_duration(seconds: float) -> str:
    """An ISO 8601 duration such as P0DT1H2M3.5S."""
    whole = int(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes = rest // 60
    second = round(seconds - whole + rest % 60, 3)
    return f"P{days}DT{hours}H{minutes}M{second:g}S"
