"""Responses: JSON bodies via orjson, @context placement, ProblemDetails."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Response

from context_broker._errors import NgsiLdError
from context_broker._http._negotiation import CONTEXT_REL, GEO_JSON, JSON_LD, Call
from context_broker._jsonld import NGSI_LD_CORE_CONTEXT_URL, TermMap

_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS
_CONTEXT_IN_BODY = (JSON_LD, GEO_JSON)


def json_response(
    body: Any,
    *,
    status: int = 200,
    media_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Response:
    return Response(
        orjson.dumps(body, option=_ORJSON_OPTIONS),
        status_code=status,
        media_type=media_type,
        headers=headers,
    )


def context_link(terms: TermMap) -> str:
    context = terms.response_context
    url = context if isinstance(context, str) else NGSI_LD_CORE_CONTEXT_URL
    return f'<{url}>; rel="{CONTEXT_REL}"; type="application/ld+json"'


def tenant_headers(call: Call) -> dict[str, str]:
    return {} if call.tenant is None else {"NGSILD-Tenant": call.tenant}


def representation(
    call: Call, body: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A body with the caller's @context: in the body for JSON-LD and GeoJSON (clause
    6.3.15), else in a Link header."""
    extra = tenant_headers(call) | (headers or {})
    if call.media_type in _CONTEXT_IN_BODY:
        context = call.terms.response_context
        if isinstance(body, list):
            body = [{**item, "@context": context} for item in body]
        elif isinstance(body, dict):
            body = {**body, "@context": context}
    else:
        extra["Link"] = context_link(call.terms)
    return json_response(body, status=status, media_type=call.media_type, headers=extra)


def problem_response(error: NgsiLdError, headers: dict[str, str] | None = None) -> Response:
    return json_response(
        error.problem_details(),
        status=error.status,
        media_type="application/json",
        headers=error.headers | (headers or {}),
    )


def no_content(call: Call) -> Response:
    return Response(status_code=204, headers=tenant_headers(call))
