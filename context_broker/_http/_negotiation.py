"""Content negotiation and request reading: media types, body limits, Link and @context,
the NGSILD-Tenant header."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Request

from context_broker._errors import (
    BadRequestData,
    InvalidRequest,
    NotAcceptable,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from context_broker._jsonld import ContextResolver, TermMap
from regional_tenants import InvalidTenantName, TenantName

JSON = "application/json"
JSON_LD = "application/ld+json"
GEO_JSON = "application/geo+json"
MERGE_PATCH = "application/merge-patch+json"
CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")
# orjson reads an integer beyond 64 bits as a float, silently rounded: a body with such a
# long run of digits is read again exactly, and the attribute check then refuses the integer.
_LONG_DIGITS = re.compile(rb"\d{20}")


@dataclass(slots=True, frozen=True)
class Call:
    """What every operation needs from a request: tenant, @context terms, response type."""

    tenant: str | None
    terms: TermMap
    media_type: str


def response_media_type(request: Request, *, geo: bool = False) -> str:
    """The representation the client accepts, by the Accept header (clause 6.3.4).

    The highest q wins; between equal q values the broker's order decides (JSON, then
    JSON-LD, then GeoJSON), so `application/ld+json, application/json` is answered in JSON.
    `q=0` excludes a type; an unparsable q value is ignored (read as 1).
    """
    header = request.headers.get("accept")
    if not header:
        return JSON
    offered = [JSON, JSON_LD, GEO_JSON] if geo else [JSON, JSON_LD]
    weights: dict[str, float] = {}
    excluded: set[str] = set()
    for part in header.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = _quality(params)
        for candidate in _matches(media.lower(), offered):
            if quality <= 0:
                if media.lower() == candidate:
                    excluded.add(candidate)
                continue
            weights[candidate] = max(weights.get(candidate, 0.0), quality)
    choices = [(weights[media], -offered.index(media), media) for media in weights]
    choices = [choice for choice in choices if choice[2] not in excluded]
    if not choices:
        raise NotAcceptable(f"cannot answer with any of {header!r}; offered: {', '.join(offered)}")
    return max(choices)[2]


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                quality = float(value)
            except ValueError:
                return 1.0
            return quality if 0 <= quality <= 1 else 1.0
    return 1.0


def _matches(media: str, offered: list[str]) -> list[str]:
    if media in ("*/*", "application/*"):
        return offered
    return [media] if media in offered else []


def link_context(request: Request) -> str | None:
    """The @context URL of a Link header with the JSON-LD context relation, if any."""
    header = request.headers.get("link")
    if not header:
        return None
    for match in _LINK.finditer(header):
        url, params = match.group(1), match.group(2)
        if f'rel="{CONTEXT_REL}"' in params or f"rel={CONTEXT_REL}" in params:
            if not url:
                raise BadRequestData("the Link header's @context URL is empty")
            return url
    return None


def tenant_key(header: str | None) -> str | None:
    """The tenant an NGSILD-Tenant value names (None: the default tenant), case folded."""
    if header is None or header == "":
        return None
    try:
        return TenantName.parse(header).value
    except InvalidTenantName as error:
        raise BadRequestData(error.explain("NGSILD-Tenant")) from None


def tenant_of(request: Request) -> str | None:
    return tenant_key(request.headers.get("ngsild-tenant"))


async def get_call(request: Request, resolver: ContextResolver, *, geo: bool = False) -> Call:
    """A request without a body: terms come from the Link header (or the core context)."""
    media_type = response_media_type(request, geo=geo)
    terms = await resolver.resolve(link_context(request), tenant_of(request))
    return Call(tenant_of(request), terms, media_type)


async def read_json(
    request: Request, max_bytes: int, *, merge_patch: bool = False
) -> tuple[Any, bool]:
    """The request body as JSON and whether it is JSON-LD; checks type and size first."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    allowed = (JSON, JSON_LD, MERGE_PATCH) if merge_patch else (JSON, JSON_LD)
    if content_type not in allowed:
        raise UnsupportedMediaType(
            f"Content-Type must be one of {', '.join(allowed)}; got {content_type or 'none'!r}"
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"the body is larger than {max_bytes} bytes")
    body = await request.body()
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"the body is larger than {max_bytes} bytes")
    if not body:
        raise InvalidRequest("the request has no body")
    try:
        payload = orjson.loads(body)
        if _LONG_DIGITS.search(body):
            payload = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise InvalidRequest(f"the body is not valid JSON: {error}") from None
    return payload, content_type == JSON_LD


async def body_context(
    request: Request, payload: object, is_json_ld: bool, resolver: ContextResolver
) -> TermMap:
    """Terms for one payload object: its own @context (JSON-LD) or the Link header (JSON)."""
    link = link_context(request)
    if is_json_ld:
        if link is not None:
            raise BadRequestData(
                "with Content-Type application/ld+json the @context goes in the body, "
                "not in a Link header"
            )
        if not isinstance(payload, dict) or "@context" not in payload:
            raise BadRequestData("a body of type application/ld+json must carry an @context member")
        return await resolver.resolve(payload["@context"], tenant_of(request))
    if isinstance(payload, dict) and "@context" in payload:
        raise BadRequestData(
            "a body of type application/json must not carry @context; send it in a Link "
            "header or use Content-Type application/ld+json"
        )
    return await resolver.resolve(link, tenant_of(request))


async def write_call(
    request: Request, resolver: ContextResolver, max_bytes: int, *, merge_patch: bool = False
) -> tuple[Call, Any]:
    """A request with one JSON object body: its call facts and the payload."""
    payload, is_json_ld = await read_json(request, max_bytes, merge_patch=merge_patch)
    if not isinstance(payload, dict):
        raise InvalidRequest("the body must be a JSON object")
    terms = await body_context(request, payload, is_json_ld, resolver)
    return Call(tenant_of(request), terms, JSON), payload
