"""Routes of clause 6.25-6.28: entity types and attributes available in a tenant."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from fastapi import APIRouter, Request, Response

from context_broker._errors import ResourceNotFound
from context_broker._http._deps import deps_of
from context_broker._http._negotiation import get_call
from context_broker._http._openapi import FIND, MEDIA_TYPES, READ, answer, operation
from context_broker._http._params import bool_param
from context_broker._http._responses import representation
from context_broker._names import check_name

router = APIRouter(tags=["Discovery"])
# A type or attribute in a path may be a full IRI, percent-encoded: its decoded form holds "/".


def _list_id(kind: str) -> str:
    return f"urn:ngsi-ld:{kind}:{uuid.uuid4().hex}"


@router.get(
    "/types",
    openapi_extra=operation(
        "Retrieve Available Entity Types (clause 6.25.3.1)",
        query=("details",),
        errors=READ,
        answers=answer(200),
        representations=MEDIA_TYPES,
    ),
)
async def retrieve_types(request: Request) -> Response:
    deps = deps_of(request)
    call = await get_call(request, deps.resolver)
    pairs = await deps.broker.type_attribute_pairs(call.tenant)
    attributes: dict[str, set[str]] = defaultdict(set)
    for type_iri, attr, _ in pairs:
        names = attributes[type_iri]
        if attr is not None:
            names.add(attr)
    compact = call.terms.compact
    body: Any
    if bool_param(request, "details"):
        body = [
            {
                "id": type_iri,
                "type": "EntityType",
                "typeName": compact(type_iri),
                "attributeNames": sorted(compact(a) for a in attrs),
            }
            for type_iri, attrs in sorted(attributes.items())
        ]
    else:
        body = {
            "id": _list_id("EntityTypeList"),
            "type": "EntityTypeList",
            "typeList": sorted(compact(type_iri) for type_iri in attributes),
        }
    return representation(call, body)


@router.get(
    "/types/{type_name:path}",
    openapi_extra=operation(
        "Retrieve Available Entity Type Information (clause 6.26.3.1)",
        errors=FIND,
        answers=answer(200),
        representations=MEDIA_TYPES,
    ),
)
async def retrieve_type(type_name: str, request: Request) -> Response:
    deps = deps_of(request)
    call = await get_call(request, deps.resolver)
    type_iri = call.terms.expand(check_name(type_name, "entity type"))
    pairs = await deps.broker.type_attribute_pairs(call.tenant, [type_iri])
    count = await deps.broker.entity_count(call.tenant, type_iri)
    if count == 0:
        raise ResourceNotFound(f"no entity of type {type_name!r} exists")
    names = sorted({attr for t, attr, _ in pairs if t == type_iri and attr is not None})
    kinds = await deps.broker.attribute_kinds(call.tenant, names, type_iri)
    body = {
        "id": type_iri,
        "type": "EntityTypeInfo",
        "typeName": call.terms.compact(type_iri),
        "entityCount": count,
        "attributeDetails": [
            {
                "id": name,
                "type": "Attribute",
                "attributeName": call.terms.compact(name),
                "attributeTypes": sorted(kinds[name]),
            }
            for name in names
        ],
    }
    return representation(call, body)


@router.get(
    "/attributes",
    openapi_extra=operation(
        "Retrieve Available Attributes (clause 6.27.3.1)",
        query=("details",),
        errors=READ,
        answers=answer(200),
        representations=MEDIA_TYPES,
    ),
)
async def retrieve_attributes(request: Request) -> Response:
    deps = deps_of(request)
    call = await get_call(request, deps.resolver)
    pairs = await deps.broker.type_attribute_pairs(call.tenant)
    types_of: dict[str, set[str]] = defaultdict(set)
    for type_iri, attr, _ in pairs:
        if attr is not None:
            types_of[attr].add(type_iri)
    compact = call.terms.compact
    body: Any
    if bool_param(request, "details"):
        body = [
            {
                "id": attr,
                "type": "Attribute",
                "attributeName": compact(attr),
                "typeNames": sorted(compact(t) for t in types),
            }
            for attr, types in sorted(types_of.items())
        ]
    else:
        body = {
            "id": _list_id("AttributeList"),
            "type": "AttributeList",
            "attributeList": sorted(compact(attr) for attr in types_of),
        }
    return representation(call, body)


@router.get(
    "/attributes/{attr_name:path}",
    openapi_extra=operation(
        "Retrieve Available Attribute Information (clause 6.28.3.1)",
        errors=FIND,
        answers=answer(200),
        representations=MEDIA_TYPES,
    ),
)
async def retrieve_attribute(attr_name: str, request: Request) -> Response:
    deps = deps_of(request)
    call = await get_call(request, deps.resolver)
    attr_iri = call.terms.expand(check_name(attr_name, "attribute name"))
    pairs = await deps.broker.type_attribute_pairs(call.tenant)
    types = sorted({t for t, attr, _ in pairs if attr == attr_iri})
    if not types:
        raise ResourceNotFound(f"no entity has an attribute {attr_name!r}")
    kinds = await deps.broker.attribute_kinds(call.tenant, [attr_iri])
    count = await deps.broker.attribute_count(call.tenant, attr_iri)
    body = {
        "id": attr_iri,
        "type": "Attribute",
        "attributeName": call.terms.compact(attr_iri),
        "attributeCount": count,
        "attributeTypes": sorted(kinds[attr_iri]),
        "typeNames": [call.terms.compact(t) for t in types],
    }
    return representation(call, body)
