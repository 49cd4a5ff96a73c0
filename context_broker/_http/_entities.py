"""Routes of clause 6.4-6.7: entities and their attributes."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from starlette.convertors import PathConvertor, register_url_convertor

from context_broker._datasets import select_datasets
from context_broker._entities import AttributeOutcome, render_entity
from context_broker._errors import NonexistentTenant, ResourceNotFound
from context_broker._http._deps import deps_of
from context_broker._http._join import join_of, joined, linked_projection_of
from context_broker._http._negotiation import GEO_JSON, Call, get_call, write_call
from context_broker._http._openapi import (
    ATTRIBUTE,
    ATTRIBUTE_PATCH,
    CREATE,
    CREATED,
    ENTITY,
    FIND,
    FRAGMENT,
    GEO_MEDIA_TYPES,
    MERGE,
    QUERY_ENTITIES,
    QUERY_ERRORS,
    REMOVE,
    RETRIEVE_ENTITY,
    WRITE_ONE,
    answer,
    operation,
    partly,
)
from context_broker._http._params import (
    ALL_MEMBERS,
    CORE_MEMBERS,
    bool_param,
    dataset_ids_of,
    options_of,
    projection_of,
    render_options,
)
from context_broker._http._purge import PURGE_PARAMETERS, purge_of
from context_broker._http._query import feature, geometry_property, query_entities_get
from context_broker._http._responses import json_response, no_content, representation
from context_broker._linked import LinkedProjection
from context_broker._names import check_name


class _EntityIdConvertor(PathConvertor):
    """An entity id in a path: like `path` (ids may hold '/'), but never empty, so that
    `/entities/` still redirects to `/entities` as the framework does for other routes."""

    regex = ".+"


register_url_convertor("entity_id", _EntityIdConvertor())
router = APIRouter(tags=["Entities"])


@router.post(
    "/entities",
    openapi_extra=operation(
        "Create Entity (clause 6.4.3.1)", body=ENTITY, errors=CREATE, answers=CREATED
    ),
)
async def create_entity(request: Request) -> Response:
    deps = deps_of(request)
    call, payload = await write_call(request, deps.resolver, deps.settings.max_body_bytes)
    entity_id = await deps.broker.create_entity(call.tenant, payload, call.terms)
    headers = {"Location": f"/ngsi-ld/v1/entities/{quote(entity_id, safe=':')}"}
    if call.tenant is not None:
        headers["NGSILD-Tenant"] = call.tenant
    return Response(status_code=201, headers=headers)


@router.get(
    "/entities",
    openapi_extra=operation(
        "Query Entities (clause 6.4.3.2)",
        query=QUERY_ENTITIES,
        errors=QUERY_ERRORS,
        answers=answer(200),
        representations=GEO_MEDIA_TYPES,
    ),
)
async def query_entities(request: Request) -> Response:
    return await query_entities_get(request)


@router.delete(
    "/entities",
    openapi_extra=operation(
        "Purge Entities (clause 6.4.3.3)",
        query=PURGE_PARAMETERS,
        errors=(*QUERY_ERRORS, NonexistentTenant),
        answers=answer(204),
    ),
)
async def purge_entities(request: Request) -> Response:
    deps = deps_of(request)
    call = await get_call(request, deps.resolver)
    query, purge = purge_of(request, call.terms)
    await deps.broker.purge_entities(call.tenant, query, purge, batch=deps.settings.purge_batch)
    return no_content(call)


@router.post(
    "/entities/{entity_id:entity_id}/attrs",
    openapi_extra=operation(
        "Append Entity Attributes (clause 6.6.3.1)",
        query=("type",),
        options=("noOverwrite",),
        body=FRAGMENT,
        errors=WRITE_ONE,
        answers=partly(204),
    ),
)
async def append_attributes(entity_id: str, request: Request) -> Response:
    deps = deps_of(request)
    options = options_of(request, allowed=("noOverwrite",))
    call, payload = await write_call(request, deps.resolver, deps.settings.max_body_bytes)
    outcome = await deps.broker.append_attributes(
        call.tenant,
        entity_id,
        payload,
        call.terms,
        no_overwrite="noOverwrite" in options,
        entity_type=_entity_type(request, call),
    )
    return _update_result(call, outcome)


@router.patch(
    "/entities/{entity_id:entity_id}/attrs",
    openapi_extra=operation(
        "Update Entity Attributes (clause 6.6.3.2)",
        query=("type",),
        body=FRAGMENT,
        errors=WRITE_ONE,
        answers=partly(204),
    ),
)
async def update_attributes(entity_id: str, request: Request) -> Response:
    deps = deps_of(request)
    call, payload = await write_call(request, deps.resolver, deps.settings.max_body_bytes)
    outcome = await deps.broker.update_attributes(
        call.tenant, entity_id, payload, call.terms, entity_type=_entity_type(request, call)
    )
    return _update_result(call, outcome)


@router.patch(
    "/entities/{entity_id:entity_id}/attrs/{attr}",
    openapi_extra=operation(
        "Partial Attribute Update (clause 6.7.3.1)",
        query=("type",),
        body=ATTRIBUTE_PATCH,
        errors=WRITE_ONE,
        answers=answer(204),
    ),
)
async def partial_update_attribute(entity_id: str, attr: str, request: Request) -> Response:
    deps = deps_of(request)
    call, payload = await write_call(
        request, deps.resolver, deps.settings.max_body_bytes, merge_patch=True
    )
    await deps.broker.partial_update_attribute(
        call.tenant, entity_id, attr, payload, call.terms, entity_type=_entity_type(request, call)
    )
    return no_content(call)


@router.put(
    "/entities/{entity_id:entity_id}/attrs/{attr}",
    openapi_extra=operation(
        "Replace Attribute (clause 6.7.3.3)",
        query=("type",),
        body=ATTRIBUTE,
        errors=WRITE_ONE,
        answers=answer(204),
    ),
)
async def replace_attribute(entity_id: str, attr: str, request: Request) -> Response:
    deps = deps_of(request)
    call, payload = await write_call(request, deps.resolver, deps.settings.max_body_bytes)
    await deps.broker.replace_attribute(
        call.tenant, entity_id, attr, payload, call.terms, entity_type=_entity_type(request, call)
    )
    return no_content(call)


@router.delete(
    "/entities/{entity_id:entity_id}/attrs/{attr}",
    openapi_extra=operation(
        "Delete Attribute (clause 6.7.3.2)",
        query=("datasetId", "deleteAll", "type"),
        errors=REMOVE,
        answers=answer(204),
    ),
)
async def delete_attribute(entity_id: str, attr: str, request: Request) -> Response:
    deps = deps_of(request)
    call = await get_call(request, deps.resolver)
    await deps.broker.delete_attribute(
        call.tenant,
        entity_id,
        attr,
        call.terms,
        dataset_id=request.query_params.get("datasetId"),
        delete_all=bool_param(request, "deleteAll"),
        entity_type=_entity_type(request, call),
    )
    return no_content(call)


@router.delete(
    "/entities/{entity_id:entity_id}/attrs",
    openapi_extra=operation(
        "Delete Entity Attributes (Contesto extension on the resource of clause 6.6)",
        query=("type",),
        errors=REMOVE,
        answers=answer(204),
    ),
)
async def delete_attributes(entity_id: str, request: Request) -> Response:
    deps = deps_of(request)
    call = await get_call(request, deps.resolver)
    await deps.broker.delete_attributes(
        call.tenant, entity_id, entity_type=_entity_type(request, call)
    )
    return no_content(call)


# Single-entity routes come after the attribute routes: an entity id may hold "/" (any URI
# is an id), so "{entity_id:entity_id}" must not swallow ".../attrs/{attr}".
@router.get(
    "/entities/{entity_id:entity_id}",
    openapi_extra=operation(
        "Retrieve Entity (clause 6.5.3.1)",
        query=RETRIEVE_ENTITY,
        errors=FIND,
        answers=answer(200),
        representations=GEO_MEDIA_TYPES,
    ),
)
async def retrieve_entity(entity_id: str, request: Request) -> Response:
    deps = deps_of(request)
    call = await get_call(request, deps.resolver, geo=True)
    params = request.query_params
    render = render_options(request, options_of(request))
    projection = ALL_MEMBERS
    linked: dict[str, LinkedProjection] = {}
    # `in` first: reads by id are hot, and a missing key costs `get` a raised KeyError.
    if "pick" in params or "omit" in params or "attrs" in params:
        pick, omit, linked = linked_projection_of(
            params.get("pick"), params.get("omit"), call.terms
        )
        projection = projection_of(params.get("attrs"), pick, omit, call.terms)
    geo_property = geometry_property(request, call)
    doc = await deps.broker.retrieve_entity(
        call.tenant,
        entity_id,
        projection.fetch(geo_property),
        entity_type=_entity_type(request, call),
    )
    datasets = dataset_ids_of(request)
    if datasets is not None:
        doc = select_datasets(doc, datasets)
    shown = projection.shown(doc)
    if call.media_type == GEO_JSON:
        body = feature(doc, call.terms, render, shown, geo_property, projection)
        members = body["properties"].keys() | ({"id"} & projection.core)
    else:
        body = projection.apply(render_entity(doc, call.terms, render, shown))
        members = body.keys()
    if projection is not ALL_MEMBERS:
        _require_members(entity_id, members, attrs="attrs" in params)
    join = join_of(request)
    if join is None:
        return representation(call, body)
    geo = geo_property if call.media_type == GEO_JSON else None
    bodies = await joined(request, call, join, [doc], [body], render, linked, geo)
    if join.join == "inline":
        return representation(call, bodies[0])
    if geo is not None:
        return representation(call, {"type": "FeatureCollection", "features": bodies})
    return representation(call, bodies)


def _require_members(entity_id: str, members: AbstractSet[str], *, attrs: bool) -> None:
    """Clause 5.7.1.4: an entity left with none of the requested members (with attrs: none
    of the requested attributes) is not found."""
    if not members or (attrs and not members - CORE_MEMBERS):
        raise ResourceNotFound(f"entity {entity_id} has none of the requested members")


@router.delete(
    "/entities/{entity_id:entity_id}",
    openapi_extra=operation(
        "Delete Entity (clause 6.5.3.2)", query=("type",), errors=REMOVE, answers=answer(204)
    ),
)
async def delete_entity(entity_id: str, request: Request) -> Response:
    deps = deps_of(request)
    call = await get_call(request, deps.resolver)
    await deps.broker.delete_entity(call.tenant, entity_id, entity_type=_entity_type(request, call))
    return no_content(call)


@router.put(
    "/entities/{entity_id:entity_id}",
    openapi_extra=operation(
        "Replace Entity (clause 6.5.3.3)", body=ENTITY, errors=WRITE_ONE, answers=answer(204)
    ),
)
async def replace_entity(entity_id: str, request: Request) -> Response:
    deps = deps_of(request)
    call, payload = await write_call(request, deps.resolver, deps.settings.max_body_bytes)
    await deps.broker.replace_entity(call.tenant, entity_id, payload, call.terms)
    return no_content(call)


@router.patch(
    "/entities/{entity_id:entity_id}",
    openapi_extra=operation(
        "Merge Entity (clause 6.5.3.4)", body=MERGE, errors=WRITE_ONE, answers=answer(204)
    ),
)
async def merge_entity(entity_id: str, request: Request) -> Response:
    deps = deps_of(request)
    call, payload = await write_call(
        request, deps.resolver, deps.settings.max_body_bytes, merge_patch=True
    )
    await deps.broker.merge_entity(call.tenant, entity_id, payload, call.terms)
    return no_content(call)


def _entity_type(request: Request, call: Call) -> str | None:
    """The expanded `type` a single-entity operation is restricted to (clause 6.5.3.1)."""
    name = request.query_params.get("type")
    return None if name is None else call.terms.expand(check_name(name, "type"))


def _update_result(call: Call, outcome: AttributeOutcome) -> Response:
    """204 when every attribute was changed, else 207 with an UpdateResult (clause 5.2.18)."""
    if not outcome.not_updated:
        return no_content(call)
    body = {
        "updated": [call.terms.compact(name) for name in outcome.updated],
        "notUpdated": [
            {"attributeName": call.terms.compact(name), "reason": reason}
            for name, reason in outcome.not_updated
        ],
    }
    return json_response(body, status=207)
