"""Routes of clause 6.4-6.7: entities and their attributes."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response

from context_broker._entities import AttributeOutcome, geometry_of, render_entity
from context_broker._errors import BadRequestData
from context_broker._http._deps import deps_of
from context_broker._http._negotiation import GEO_JSON, Call, get_call, write_call
from context_broker._http._params import (
    bool_param,
    int_param,
    name_list,
    options_of,
    render_options,
)
from context_broker._http._responses import json_response, no_content, representation
from context_broker._jsonld import TermMap
from context_broker._names import check_uri
from context_broker._service import EntityQuery

router = APIRouter()


@router.post("/entities")
async def create_entity(request: Request) -> Response:
    deps = deps_of(request)
    call, payload = await write_call(request, deps.resolver, deps.settings.max_body_bytes)
    entity_id = await deps.broker.create_entity(call.tenant, payload, call.terms)
    headers = {"Location": f"/ngsi-ld/v1/entities/{quote(entity_id, safe=':')}"}
    if call.tenant is not None:
        headers["NGSILD-Tenant"] = call.tenant
    return Response(status_code=201, headers=headers)


@router.get("/entities")
async def query_entities(request: Request) -> Response:
    deps = deps_of(request)
    call = await get_call(request, deps.resolver, geo=True)
    options = options_of(request)
    render = render_options(request, options)
    settings = deps.settings
    ids = request.query_params.get("id")
    types = name_list(request, "type", call.terms)
    attrs = name_list(request, "attrs", call.terms)
    id_pattern = request.query_params.get("idPattern")
    limit = int_param(
        request, "limit", settings.query_default_limit, minimum=0, maximum=settings.query_max_limit
    )
    count = bool_param(request, "count")
    if limit == 0 and not count:
        raise BadRequestData("limit=0 is only allowed together with count=true")
    if not (ids or types or attrs or id_pattern or bool_param(request, "local")):
        for unsupported in ("q", "geoQ", "georel"):
            if unsupported in request.query_params:
                break
        else:
            raise BadRequestData(
                "Query Entities needs at least one of type, id, idPattern, attrs, q or geoQ "
                "(or local=true)"
            )
    query = EntityQuery(
        ids=tuple(check_uri(i.strip(), "id") for i in ids.split(",")) if ids else (),
        id_pattern=id_pattern,
        types=tuple(types or ()),
        attrs=tuple(attrs or ()),
        limit=limit,
        offset=int_param(request, "offset", 0, minimum=0, maximum=10**9),
        count=count,
    )
    docs, total = await deps.broker.query_entities(call.tenant, query)
    shown = frozenset(attrs) if attrs else None
    headers = {"NGSILD-Results-Count": str(total)} if total is not None else {}
    if call.media_type == GEO_JSON:
        geo_property = _geometry_property(request, call.terms)
        features = [_feature(doc, call.terms, render, shown, geo_property) for doc in docs]
        body: Any = {"type": "FeatureCollection", "features": features}
        return representation(call, body, headers=headers)
    body = [render_entity(doc, call.terms, render, shown) for doc in docs]
    return representation(call, body, headers=headers)


@router.post("/entities/{entity_id:path}/attrs")
async def append_attributes(entity_id: str, request: Request) -> Response:
    deps = deps_of(request)
    options = options_of(request, allowed=("noOverwrite",))
    call, payload = await write_call(request, deps.resolver, deps.settings.max_body_bytes)
    outcome = await deps.broker.append_attributes(
        call.tenant, entity_id, payload, call.terms, no_overwrite="noOverwrite" in options
    )
    return _update_result(call, outcome)


@router.patch("/entities/{entity_id:path}/attrs")
async def update_attributes(entity_id: str, request: Request) -> Response:
    deps = deps_of(request)
    call, payload = await write_call(request, deps.resolver, deps.settings.max_body_bytes)
    outcome = await deps.broker.update_attributes(call.tenant, entity_id, payload, call.terms)
    return _update_result(call, outcome)


@router.patch("/entities/{entity_id:path}/attrs/{attr}")
async def partial_update_attribute(entity_id: str, attr: str, request: Request) -> Response:
    deps = deps_of(request)
    call, payload = await write_call(request, deps.resolver, deps.settings.max_body_bytes)
    await deps.broker.partial_update_attribute(call.tenant, entity_id, attr, payload, call.terms)
    return no_content(call)


@router.put("/entities/{entity_id:path}/attrs/{attr}")
async def replace_attribute(entity_id: str, attr: str, request: Request) -> Response:
    deps = deps_of(request)
    call, payload = await write_call(request, deps.resolver, deps.settings.max_body_bytes)
    await deps.broker.replace_attribute(call.tenant, entity_id, attr, payload, call.terms)
    return no_content(call)


@router.delete("/entities/{entity_id:path}/attrs/{attr}")
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
    )
    return no_content(call)


# Single-entity routes come after the attribute routes: an entity id may hold "/" (any URI
# is an id), so "{entity_id:path}" must not swallow ".../attrs/{attr}".
@router.get("/entities/{entity_id:path}")
async def retrieve_entity(entity_id: str, request: Request) -> Response:
    deps = deps_of(request)
    call = await get_call(request, deps.resolver, geo=True)
    render = render_options(request, options_of(request))
    attrs = name_list(request, "attrs", call.terms)
    geo_property = _geometry_property(request, call.terms)
    fetch = None if attrs is None else [*attrs, geo_property]
    doc = await deps.broker.retrieve_entity(call.tenant, entity_id, fetch)
    shown = frozenset(attrs) if attrs is not None else None
    if call.media_type == GEO_JSON:
        return representation(call, _feature(doc, call.terms, render, shown, geo_property))
    return representation(call, render_entity(doc, call.terms, render, shown))


@router.delete("/entities/{entity_id:path}")
async def delete_entity(entity_id: str, request: Request) -> Response:
    deps = deps_of(request)
    call = await get_call(request, deps.resolver)
    await deps.broker.delete_entity(call.tenant, entity_id)
    return no_content(call)


@router.put("/entities/{entity_id:path}")
async def replace_entity(entity_id: str, request: Request) -> Response:
    deps = deps_of(request)
    call, payload = await write_call(request, deps.resolver, deps.settings.max_body_bytes)
    await deps.broker.replace_entity(call.tenant, entity_id, payload, call.terms)
    return no_content(call)


@router.patch("/entities/{entity_id:path}")
async def merge_entity(entity_id: str, request: Request) -> Response:
    deps = deps_of(request)
    call, payload = await write_call(
        request, deps.resolver, deps.settings.max_body_bytes, merge_patch=True
    )
    await deps.broker.merge_entity(call.tenant, entity_id, payload, call.terms)
    return no_content(call)


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


def _geometry_property(request: Request, terms: TermMap) -> str:
    return terms.expand(request.query_params.get("geometryProperty", "location"))


def _feature(
    doc: dict[str, Any],
    terms: TermMap,
    render: Any,
    shown: frozenset[str] | None,
    geo_property: str,
) -> dict[str, Any]:
    """The GeoJSON Feature of an entity (clause 4.5.16)."""
    properties = render_entity(doc, terms, render, shown)
    entity_id = properties.pop("id")
    return {
        "id": entity_id,
        "type": "Feature",
        "geometry": geometry_of(doc, geo_property),
        "properties": properties,
    }
