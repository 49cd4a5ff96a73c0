"""Routes of clause 6.29-6.30: the @context management API (/jsonldContexts).

Everything here is the request's tenant's (`NGSILD-Tenant`): its hosted contexts (see
`_hosted_contexts.py`) and the cached remote contexts its own requests used (`_jsonld.py`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response

from context_broker._errors import (
    BadRequestData,
    ContextReloadFailed,
    LdContextNotAvailable,
    ResourceNotFound,
)
from context_broker._hosted_contexts import CONTEXTS_PATH
from context_broker._http._deps import deps_of
from context_broker._http._negotiation import read_json, tenant_of
from context_broker._http._openapi import CONTEXT, CREATE, answer, operation
from context_broker._http._params import bool_param
from context_broker._http._responses import json_response
from context_broker._jsonld import (
    NGSI_LD_CORE_CONTEXT_URL,
    ContextResolver,
    core_context_document,
    is_core_context_url,
)
from context_broker._time import format_datetime

router = APIRouter(tags=["@context"])
# ImplicitlyCreated contexts are those a broker makes of inline request @contexts; this
# broker makes none, so the kind is a valid filter that lists nothing.
_KINDS = ("Hosted", "Cached", "ImplicitlyCreated")


def _hosted_url(request: Request, local_id: str) -> str:
    return str(request.base_url).rstrip("/") + CONTEXTS_PATH + local_id


@router.post(
    "/jsonldContexts",
    openapi_extra=operation(
        "Add @context (clause 6.29.3.1)",
        link=False,
        body=CONTEXT,
        errors=CREATE,
        answers=answer(201, "Created: the Location header is the hosted @context's URL"),
    ),
)
async def add_context(request: Request) -> Response:
    deps = deps_of(request)
    document, _ = await read_json(request, deps.settings.max_body_bytes)
    hosted = await deps.contexts.add(document, tenant_of(request))
    # Relative, like Create Entity's: the hosted context's URL is the base URL plus this path.
    return Response(status_code=201, headers={"Location": CONTEXTS_PATH + hosted.local_id})


@router.get(
    "/jsonldContexts",
    openapi_extra=operation(
        "List @contexts (clause 6.29.3.2)",
        query=("kind", "details"),
        link=False,
        answers=answer(200),
    ),
)
async def list_contexts(request: Request) -> Response:
    deps = deps_of(request)
    kind = request.query_params.get("kind")
    if kind is not None and kind not in _KINDS:
        raise BadRequestData(f"kind must be one of {', '.join(_KINDS)}; got {kind!r}")
    tenant = tenant_of(request)
    entries: list[dict[str, Any]] = []
    if kind in (None, "Hosted"):
        for hosted in deps.contexts.all(tenant):
            entries.append(
                _entry(_hosted_url(request, hosted.local_id), hosted.local_id, "Hosted")
                | _usage(hosted.created_at, hosted.hits, hosted.last_used)
            )
    if kind in (None, "Cached"):
        core = deps.resolver.core_usage
        entries.append(
            _entry(NGSI_LD_CORE_CONTEXT_URL, NGSI_LD_CORE_CONTEXT_URL, "Cached")
            | _usage(_moment(core.created_at), core.hits, _moment(core.last_used))
        )
        for url, usage in deps.resolver.cached_usage(tenant):
            entries.append(
                _entry(url, url, "Cached")
                | _usage(_moment(usage.created_at), usage.hits, _moment(usage.last_used))
            )
    if bool_param(request, "details"):
        return json_response(entries)
    return json_response([entry["URL"] for entry in entries])


def _entry(url: str, local_id: str, kind: str) -> dict[str, Any]:
    return {"URL": url, "localId": local_id, "kind": kind}


def _usage(created_at: datetime | None, hits: int, last_used: datetime | None) -> dict[str, Any]:
    """createdAt, numberOfHits and (once used) lastUsage of a detailed entry (clause 6.29.3.2)."""
    usage: dict[str, Any] = {"numberOfHits": hits}
    if created_at is not None:
        usage["createdAt"] = format_datetime(created_at)
    if last_used is not None:
        usage["lastUsage"] = format_datetime(last_used)
    return usage


def _moment(posix_s: float | None) -> datetime | None:
    return None if posix_s is None else datetime.fromtimestamp(posix_s, UTC)


@router.get(
    "/jsonldContexts/{context_id:path}",
    openapi_extra=operation(
        "Serve @context (clause 6.30.3.1)",
        link=False,
        errors=(ResourceNotFound,),
        answers=answer(200, "The @context document (application/ld+json)"),
    ),
)
async def serve_context(context_id: str, request: Request) -> Response:
    deps = deps_of(request)
    if is_core_context_url(context_id):
        return json_response(core_context_document(), media_type="application/ld+json")
    if "://" in context_id:
        document = deps.resolver.cached_document(context_id, tenant_of(request))
        if document is None:
            raise ResourceNotFound(f"no @context {context_id} is cached here")
        return json_response(document, media_type="application/ld+json")
    hosted = deps.contexts.get(context_id, tenant_of(request))
    return json_response(hosted.document, media_type="application/ld+json")


@router.delete(
    "/jsonldContexts/{context_id:path}",
    openapi_extra=operation(
        "Delete or reload @context (clause 6.30.3.2)",
        query=("reload",),
        link=False,
        errors=(ResourceNotFound, ContextReloadFailed),
        answers=answer(204),
    ),
)
async def delete_context(context_id: str, request: Request) -> Response:
    deps = deps_of(request)
    tenant = tenant_of(request)
    if is_core_context_url(context_id):
        raise BadRequestData("the core @context can be neither deleted nor reloaded")
    if "://" not in context_id:
        if bool_param(request, "reload"):
            raise BadRequestData("only a Cached @context (named by its URL) can be reloaded")
        await deps.contexts.delete(context_id, tenant, deps.resolver)
    elif bool_param(request, "reload"):
        await _reload(deps.resolver, context_id, tenant)
    elif not deps.resolver.evict(context_id, tenant):
        raise ResourceNotFound(f"no @context {context_id} is cached here")
    return Response(status_code=204)


async def _reload(resolver: ContextResolver, url: str, tenant: str | None) -> None:
    try:
        reloaded = await resolver.reload(url, tenant)
    except LdContextNotAvailable as exc:
        raise ContextReloadFailed(exc.detail) from None
    if not reloaded:
        raise ResourceNotFound(f"no @context {url} is cached here")
