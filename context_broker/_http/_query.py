"""Query Entities over HTTP: GET /entities (clause 6.4.3.2) and POST /entityOperations/query
(clause 6.23), which share one reading of the selection and one answer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from fastapi import APIRouter, Request, Response

from context_broker._datasets import select_datasets
from context_broker._entities import as_feature, render_entity
from context_broker._errors import (
    BadRequestData,
    OperationNotSupported,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from context_broker._http._deps import deps_of
from context_broker._http._join import (
    join_of,
    joined,
    linked_projection_of,
    with_linked_targets,
)
from context_broker._http._negotiation import (
    GEO_JSON,
    Call,
    body_context,
    get_call,
    read_json,
    response_media_type,
    tenant_of,
)
from context_broker._http._openapi import (
    GEO_MEDIA_TYPES,
    QUERY_ANSWER,
    QUERY_BODY,
    QUERY_ERRORS,
    answer,
    operation,
)
from context_broker._http._ordering import body_ordering, url_ordering
from context_broker._http._params import (
    Projection,
    bool_param,
    dataset_ids_of,
    entity_ids,
    options_of,
    page_params,
    parse_type_selection,
    projection_of,
    render_options,
)
from context_broker._http._responses import representation
from context_broker._jsonld import TermMap
from context_broker._linked import LinkedProjection, LinkedRetrieval
from context_broker._linked_q import LinkedTerm, cut_linked_terms
from context_broker._names import check_name
from context_broker._query import parse_q, parse_scope_q
from context_broker._query._geo import GeoQuery, parse_geo_query
from context_broker._query._q import attribute_names, with_expanded_values
from context_broker._service import EntityQuery

router = APIRouter(tags=["Query"])

# Members of a Query (clause 5.2.23) this broker reads; others are refused, not ignored.
_QUERY_MEMBERS = frozenset(
    {"type", "entities", "attrs", "pick", "omit", "q", "geoQ", "scopeQ", "lang", "csf"}
    | {"temporalQ", "local", "@context", "join", "joinLevel", "expandValues", "ordering"}
)
_SELECTOR_MEMBERS = frozenset({"id", "idPattern", "type"})


@dataclass(slots=True, frozen=True)
class Selection:
    """What a query asks for, from URL parameters or a Query body, not yet paged."""

    query: EntityQuery
    projection: Projection
    lang: str | None = None
    join: LinkedRetrieval | None = None
    # pick/omit into linked entities (`managedBy{name}`), by expanded Relationship name.
    linked: Mapping[str, LinkedProjection] = field(default_factory=dict)
    # q terms through Relationships (`managedBy{name}=="Acme"`), resolved before the query.
    linked_q: tuple[LinkedTerm, ...] = ()
    # A Query's `ordering` member (clause 5.2.43) as sent; None: the URL's ordering.
    ordering: object = None


async def query_entities_get(request: Request) -> Response:
    """GET /entities: every selection member is a URL parameter."""
    call = await get_call(request, deps_of(request).resolver, geo=True)
    params = request.query_params
    expand = call.terms.expand
    selection = query_selection(
        call.terms,
        ids=params.get("id"),
        id_pattern=params.get("idPattern"),
        types=params.get("type"),
        attrs=params.get("attrs"),
        pick=params.get("pick"),
        omit=params.get("omit"),
        q=params.get("q"),
        scope_q=params.get("scopeQ"),
        geo=_geo_query(
            params.get("georel"),
            params.get("geometry"),
            params.get("coordinates"),
            params.get("geoproperty"),
            expand,
        ),
        local=bool_param(request, "local"),
        csf=params.get("csf"),
        expand_values=params.get("expandValues"),
    )
    return await _answer(request, call, replace(selection, join=join_of(request)))


@router.post(
    "/entityOperations/query",
    openapi_extra=operation(
        "Query Entities with a Query body (clause 6.23.3.1)",
        query=("local", *QUERY_ANSWER),
        body=QUERY_BODY,
        errors=(*QUERY_ERRORS, UnsupportedMediaType, PayloadTooLarge, OperationNotSupported),
        answers=answer(200),
        representations=GEO_MEDIA_TYPES,
    ),
)
async def query_entities_post(request: Request) -> Response:
    """POST /entityOperations/query (clause 6.23.3.1): the selection is a Query body; paging,
    count and representation stay URL parameters."""
    deps = deps_of(request)
    media_type = response_media_type(request, geo=True)
    payload, is_json_ld = await read_json(request, deps.settings.max_body_bytes)
    if not isinstance(payload, dict):
        raise BadRequestData("the body must be a Query object (clause 5.2.23)")
    terms = await body_context(request, payload, is_json_ld, deps.resolver)
    call = Call(tenant_of(request), terms, media_type)
    if payload.get("type") != "Query":
        raise BadRequestData(f'a Query body has "type": "Query"; got {payload.get("type")!r}')
    unknown = set(payload) - _QUERY_MEMBERS
    if unknown:
        raise BadRequestData(f"unknown members of the Query: {', '.join(sorted(unknown))}")
    if "temporalQ" in payload:
        raise OperationNotSupported(
            "temporalQ selects temporal evolution (clause 5.7.4), which this broker does not keep"
        )
    ids, id_patterns, types = _entity_selectors(payload.get("entities"))
    geo_q = payload.get("geoQ")
    if geo_q is not None and not isinstance(geo_q, dict):
        raise BadRequestData("geoQ must be an object with geometry, coordinates and georel")
    geo_members = geo_q or {}
    selection = query_selection(
        terms,
        ids=ids,
        id_pattern=id_patterns,
        types=types,
        attrs=_text_or_list(payload, "attrs"),
        pick=_text_or_list(payload, "pick"),
        omit=_text_or_list(payload, "omit"),
        q=_text(payload, "q"),
        scope_q=_text(payload, "scopeQ"),
        geo=_geo_query(
            _text(geo_members, "georel"),
            _text(geo_members, "geometry"),
            geo_members.get("coordinates"),
            _text(geo_members, "geoproperty"),
            terms.expand,
        )
        if geo_q is not None
        else None,
        local=payload.get("local") is True or bool_param(request, "local"),
        lang=_text(payload, "lang"),
        csf=_text(payload, "csf"),
        expand_values=_text_or_list(payload, "expandValues"),
    )
    join = join_of(request, _text(payload, "join"), _join_level(payload))
    selection = replace(selection, join=join, ordering=payload.get("ordering"))
    return await _answer(request, call, selection)


def query_selection(
    terms: TermMap,
    *,
    ids: str | None,
    id_pattern: str | None,
    types: str | None,
    attrs: str | None,
    pick: str | None,
    omit: str | None,
    q: str | None,
    scope_q: str | None,
    geo: GeoQuery | None,
    local: bool,
    lang: str | None = None,
    csf: str | None = None,
    expand_values: str | None = None,
) -> Selection:
    """Parse the selection members; a query needs at least one, where attrs and q count
    only with a name that is not a system attribute (clause 5.7.2.4). An id takes
    precedence over idPattern (clause 5.2.33); `type=*` is every type."""
    q_text, linked_q = cut_linked_terms(q) if q is not None and "{" in q else (q, [])
    parsed_q = parse_q(q_text) if q_text is not None else None
    selects_attribute = (
        _names_attribute(attrs)
        or bool(linked_q)
        or (parsed_q is not None and bool(attribute_names(parsed_q) - _SYSTEM_ATTRIBUTES))
    )
    if not (ids or id_pattern or types or selects_attribute or scope_q or geo is not None or local):
        raise BadRequestData(
            "Query Entities needs at least one of id, idPattern, type, attrs, q, geoQ or scopeQ "
            "(or local=true); attrs and q count when they name an attribute other than "
            f"{', '.join(sorted(_SYSTEM_ATTRIBUTES))}"
        )
    if expand_values is not None:
        # Clause 4.9: the values compared to these attributes are IRIs, given as terms.
        expanded = frozenset(_expand_values_names(expand_values))
        if parsed_q is not None:
            parsed_q = with_expanded_values(parsed_q, expanded, terms.expand)
    pick, omit, linked = linked_projection_of(pick, omit, terms)
    projection = projection_of(attrs, pick, omit, terms)
    if csf is not None:
        # Context source filters select registrations (clause 4.9); with no registrations
        # here, only their syntax is checked.
        parse_q(csf)
    query = EntityQuery(
        ids=entity_ids(ids) if ids is not None else (),
        id_pattern=None if ids else id_pattern,
        types=parse_type_selection(types, terms.expand) if types not in (None, "*") else (),
        attrs=tuple(projection.attributes or ()) if attrs is not None else (),
        q=parsed_q,
        scope_q=parse_scope_q(scope_q) if scope_q is not None else None,
        geo=geo,
        expand=terms.expand,
    )
    return Selection(query, projection, lang, linked=linked, linked_q=tuple(linked_q))


# System-generated members (clause 4.8): a query over these alone selects no attribute.
_SYSTEM_ATTRIBUTES = frozenset({"createdAt", "modifiedAt", "deletedAt"})


def _names_attribute(attrs: str | None) -> bool:
    """Whether attrs names an attribute other than the system ones."""
    names = (name.strip() for name in (attrs or "").replace("|", ",").split(","))
    return any(name and name not in _SYSTEM_ATTRIBUTES for name in names)


def _expand_values_names(raw: str) -> list[str]:
    """expandValues (clause 4.9): the attribute names, as q names them (short names)."""
    names = [name.strip() for name in raw.split(",") if name.strip()]
    if not names:
        raise BadRequestData("expandValues must list at least one attribute name")
    return [check_name(name, "expandValues") for name in names]


def _geo_query(
    georel: str | None,
    geometry: str | None,
    coordinates: object,
    geoproperty: str | None,
    expand: Callable[[str], str],
) -> GeoQuery | None:
    """The geo-query (clause 4.10) of the request, or None."""
    return parse_geo_query(georel, geometry, coordinates, geoproperty, expand)


async def _answer(request: Request, call: Call, selection: Selection) -> Response:
    """Run the query and answer one page with its count and paging links."""
    deps = deps_of(request)
    params = request.query_params
    render = render_options(request, options_of(request), selection.lang)
    limit, offset, count = page_params(request, deps.settings)
    projection = selection.projection
    geo_property = geometry_property(request, call)
    ordering = body_ordering(selection.ordering, url_ordering(params))
    query = replace(
        selection.query,
        names=projection.fetch(geo_property if call.media_type == GEO_JSON else None),
        order=ordering.keys(call.terms.expand),
        collation=ordering.collation_tag(),
        limit=limit,
        offset=offset,
        count=count,
    )
    if query.geo is not None and query.order:
        raise BadRequestData("orderBy cannot be combined with a geo-query, which orders itself")
    if selection.linked_q:
        query = await with_linked_targets(request, call, query, selection.linked_q)
    page = await deps.broker.query_entities(call.tenant, query)
    headers = {"NGSILD-Results-Count": str(page.total)} if page.total is not None else {}
    datasets = dataset_ids_of(request)
    docs = page.docs if datasets is None else [select_datasets(d, datasets) for d in page.docs]
    if call.media_type == GEO_JSON:
        features = await _rendered(
            docs,
            lambda doc: feature(
                doc, call.terms, render, projection.shown(doc), geo_property, projection
            ),
        )
        features = await joined(
            request, call, selection.join, docs, features, render, selection.linked, geo_property
        )
        body: Any = {"type": "FeatureCollection", "features": features}
    else:
        body = await _rendered(
            docs,
            lambda doc: projection.apply(
                render_entity(doc, call.terms, render, projection.shown(doc))
            ),
        )
        body = await joined(
            request, call, selection.join, page.docs, body, render, selection.linked
        )
    response = representation(call, body, headers=headers)
    for link in page_links(request, page.more, limit, offset):
        response.headers.append("Link", link)
    return response


_RENDER_CHUNK = 25
"""Entities rendered between two turns of the event loop, so that rendering a long page
never holds up other tenants' requests for long."""


async def _rendered(
    docs: list[dict[str, Any]], render_one: Callable[[dict[str, Any]], Any]
) -> list[Any]:
    rendered: list[Any] = []
    for start in range(0, len(docs), _RENDER_CHUNK):
        if start:
            await asyncio.sleep(0)
        rendered.extend(render_one(doc) for doc in docs[start : start + _RENDER_CHUNK])
    return rendered


def page_links(request: Request, more: bool, limit: int, offset: int) -> list[str]:
    """Link headers to the previous and next pages (clause 6.3.10), other parameters kept."""
    if limit == 0:
        return []
    links = []
    if offset > 0:
        links.append(_page_link(request, limit, max(0, offset - limit), "prev"))
    if more:
        links.append(_page_link(request, limit, offset + limit, "next"))
    return links


def _page_link(request: Request, limit: int, offset: int, rel: str) -> str:
    """The request's own URL with its parameters in their order, percent-encoded, and the
    page's limit and offset in their places (appended when the request had none)."""
    paging = {"limit": str(limit), "offset": str(offset)}
    items = [(k, paging.pop(k, v)) for k, v in request.query_params.multi_items()]
    query = urlencode([*items, *paging.items()], quote_via=quote)
    return f'<{request.url.path}?{query}>; rel="{rel}"'


def _entity_selectors(raw: object) -> tuple[str | None, str | None, str | None]:
    """ids, idPattern and type of the Query's EntitySelectors (clause 5.2.33).

    Each selector names a type; its id (a URI or an array of them) takes precedence over its
    idPattern. Several selectors are OR-ed only when they differ in one member: ids, or
    types, with the same other members; other combinations are refused.
    """
    if raw is None:
        return None, None, None
    if not isinstance(raw, list) or not raw:
        raise BadRequestData("entities must be a non-empty array of EntitySelectors")
    selectors = [_entity_selector(selector) for selector in raw]
    with_ids = [selector for selector in selectors if selector.ids]
    if with_ids:
        if len(with_ids) != len(selectors):
            raise BadRequestData("either every EntitySelector names an id or none does")
        if len({selector.type for selector in selectors}) > 1:
            raise BadRequestData("EntitySelectors with ids must all name the same type")
        ids = ",".join(entity_id for selector in selectors for entity_id in selector.ids)
        return ids, None, selectors[0].type
    patterns = {selector.id_pattern for selector in selectors}
    if len(patterns) > 1:
        raise BadRequestData("EntitySelectors with different idPatterns are not supported")
    if any(selector.type == "*" for selector in selectors):
        return None, patterns.pop(), "*"
    types = ",".join(f"({selector.type})" for selector in selectors)
    return None, patterns.pop(), types


@dataclass(slots=True, frozen=True)
class _EntitySelector:
    type: str
    ids: tuple[str, ...] = ()
    id_pattern: str | None = None


def _entity_selector(raw: object) -> _EntitySelector:
    """One EntitySelector (clause 5.2.33): type mandatory; id a URI or an array of URIs."""
    if not isinstance(raw, dict) or not raw:
        raise BadRequestData("each EntitySelector is an object with a type, and id or idPattern")
    unknown = set(raw) - _SELECTOR_MEMBERS
    if unknown:
        raise BadRequestData(f"unknown members of an EntitySelector: {sorted(unknown)}")
    entity_type = raw.get("type")
    if not isinstance(entity_type, str) or not entity_type:
        raise BadRequestData("an EntitySelector must name a type (clause 5.2.33)")
    ids = raw.get("id", [])
    ids = [ids] if isinstance(ids, str) else ids
    if not isinstance(ids, list) or not all(isinstance(item, str) and item for item in ids):
        raise BadRequestData("EntitySelector id must be a URI or a non-empty array of URIs")
    if "id" in raw and not ids:
        raise BadRequestData("EntitySelector id must not be an empty array")
    pattern = raw.get("idPattern")
    if pattern is not None and (not isinstance(pattern, str) or not pattern):
        raise BadRequestData("EntitySelector idPattern must be a non-empty string")
    return _EntitySelector(entity_type, tuple(ids), None if ids else pattern)


def _text(payload: dict[str, Any], key: str) -> str | None:
    value = payload.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequestData(f"{key} must be a string; got {orjson.dumps(value).decode()}")
    return value


def _join_level(payload: dict[str, Any]) -> str | None:
    """A Query's joinLevel (clause 4.5.23): a positive integer, as a string for `join_of`."""
    value = payload.get("joinLevel")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BadRequestData(f"joinLevel must be an integer; got {orjson.dumps(value).decode()}")
    return str(value)


def _text_or_list(payload: dict[str, Any], key: str) -> str | None:
    """A list member of a Query, given as an array of names or a comma-separated string."""
    value = payload.get(key)
    if isinstance(value, list):
        if not value:
            raise BadRequestData(f"{key} must list at least one name")
        return ",".join(check_name(item, key) for item in value)
    return _text(payload, key)


def geometry_property(request: Request, call: Call) -> str:
    """The GeoProperty of a GeoJSON answer (clause 6.3.15); only a GeoJSON answer has one."""
    raw = request.query_params.get("geometryProperty")
    if raw is not None and call.media_type != GEO_JSON:
        raise BadRequestData(
            "geometryProperty applies only to GeoJSON answers (Accept: application/geo+json)"
        )
    return call.terms.expand(raw or "location")


def feature(
    doc: dict[str, Any],
    terms: TermMap,
    render: Any,
    shown: frozenset[str] | None,
    geo_property: str,
    projection: Projection | None = None,
) -> dict[str, Any]:
    """The GeoJSON Feature of an entity (clause 4.5.16)."""
    properties = render_entity(doc, terms, render, shown)
    if projection is not None:
        properties = projection.apply(properties)
    return as_feature(doc, properties, geo_property)
