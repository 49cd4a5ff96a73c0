"""Routes of clause 6.14-6.17 and 6.31: batch entity operations."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from context_broker._errors import BadRequestData, LdContextNotAvailable, NgsiLdError
from context_broker._http._deps import deps_of
from context_broker._http._negotiation import body_context, read_json, tenant_of
from context_broker._http._openapi import (
    ENTITIES,
    ENTITY_IDS,
    WRITE,
    answer,
    operation,
    partly,
)
from context_broker._http._params import options_of
from context_broker._http._responses import json_response
from context_broker._jsonld import TermMap
from context_broker._service import BatchKind, BatchResult

router = APIRouter(tags=["Batch operations"])


async def _run(request: Request, kind: BatchKind, option: str | None = None) -> BatchResult:
    """Read the array body, resolve each entity's @context, run the batch operation."""
    deps = deps_of(request)
    tenant = tenant_of(request)
    payload, is_json_ld = await read_json(request, deps.settings.max_body_bytes)
    if not isinstance(payload, list) or not payload:
        raise BadRequestData("a batch operation needs a non-empty JSON array")
    items: list[tuple[object, TermMap]] = []
    unresolved: list[tuple[str, NgsiLdError]] = []
    for item in payload:
        if kind == "delete":
            items.append((item, await deps.resolver.resolve(None)))
            continue
        if not isinstance(item, dict):
            raise BadRequestData("every item of a batch must be a JSON object (an entity)")
        try:
            items.append((item, await body_context(request, item, is_json_ld, deps.resolver)))
        except (BadRequestData, LdContextNotAvailable) as error:
            # An entity's own @context (or its lack under application/ld+json) fails that
            # entity only; a Link header fails them all.
            if not is_json_ld and "@context" not in item:
                raise
            unresolved.append((str(item.get("id", "")), error))
    result = await deps.broker.batch(tenant, kind, items, option=option) if items else BatchResult()
    result.errors[:0] = unresolved
    return result


def _answer(request: Request, result: BatchResult, success: Any = None) -> Response:
    """207 with a BatchOperationResult on any error; else 201 with `success` or 204."""
    tenant = tenant_of(request)
    headers = {} if tenant is None else {"NGSILD-Tenant": tenant}
    if result.errors:
        body = {
            "success": result.success,
            "errors": [
                {"entityId": entity_id, "error": error.problem_details()}
                for entity_id, error in result.errors
            ],
        }
        return json_response(body, status=207, headers=headers)
    if success is not None:
        return json_response(success, status=201, headers=headers)
    return Response(status_code=204, headers=headers)


@router.post(
    "/entityOperations/create",
    openapi_extra=operation(
        "Batch Entity Create (clause 6.14.3.1)",
        body=ENTITIES,
        errors=WRITE,
        answers=partly(201),
    ),
)
async def batch_create(request: Request) -> Response:
    result = await _run(request, "create")
    return _answer(request, result, success=result.success)


@router.post(
    "/entityOperations/upsert",
    openapi_extra=operation(
        "Batch Entity Upsert (clause 6.15.3.1)",
        options=("update", "replace"),
        body=ENTITIES,
        errors=WRITE,
        answers=answer(201, "Created: the ids of the new entities") | partly(204),
    ),
)
async def batch_upsert(request: Request) -> Response:
    options = options_of(request, allowed=("update", "replace"))
    if {"update", "replace"} <= options:
        raise BadRequestData("options update and replace exclude each other")
    result = await _run(request, "upsert", "update" if "update" in options else "replace")
    created = [entity_id for entity_id in result.success if entity_id in result.created]
    return _answer(request, result, success=created or None)


@router.post(
    "/entityOperations/update",
    openapi_extra=operation(
        "Batch Entity Update (clause 6.16.3.1)",
        options=("noOverwrite",),
        body=ENTITIES,
        errors=WRITE,
        answers=partly(204),
    ),
)
async def batch_update(request: Request) -> Response:
    options = options_of(request, allowed=("noOverwrite",))
    option = "noOverwrite" if "noOverwrite" in options else None
    return _answer(request, await _run(request, "update", option))


@router.post(
    "/entityOperations/merge",
    openapi_extra=operation(
        "Batch Entity Merge (clause 6.31.3.1)",
        body=ENTITIES,
        errors=WRITE,
        answers=partly(204),
    ),
)
async def batch_merge(request: Request) -> Response:
    return _answer(request, await _run(request, "merge"))


@router.post(
    "/entityOperations/delete",
    openapi_extra=operation(
        "Batch Entity Delete (clause 6.17.3.1)",
        link=False,
        body=ENTITY_IDS,
        errors=WRITE,
        answers=partly(204),
    ),
)
async def batch_delete(request: Request) -> Response:
    return _answer(request, await _run(request, "delete"))
