"""Routes of clause 6.29-6.30: the @context management API (/jsonldContexts).

Everything here is the request's tenant's (`NGSILD-Tenant`): its hosted contexts (see
`_hosted_contexts.py`) and the cached remote contexts its own requests used (`_jsonld.py`).
"""

from __future__ import annotations

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
from context_broker._jsonld import ContextResolver
from context_broker._time import format_datetime

router = APIRouter(tags=["@context"])
_KINDS = ("Hosted", "Cached")


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
    url = _hosted_url(request, hosted.local_id)
    return Response(status_code=201, headers={"Location": url})


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
    entries: list[dict[str, Any]] = []
    if kind in (None, "Hosted"):
        for hosted in deps.contexts.all(tenant_of(request)):
            entries.append(
                {
                    "URL": _hosted_url(request, hosted.local_id),
                    "localId": hosted.local_id,
                    "kind": "Hosted",
                    "createdAt": format_datetime(hosted.created_at),
                    "numberOfHits": hosted.hits,
                }
            )
    if kind in (None, "Cached"):
        for url in deps.resolver.cached_urls(tenant_of(request)):
            entries.append({"URL": url, "localId": url, "kind": "Cached"})
    if bool_param(request, "details"):
        return json_response(entries)
    return json_response([entry["URL"] for entry in entries])


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
