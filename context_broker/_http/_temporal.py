"""Routes of clauses 6.18-6.19: the temporal representation of entities (history).

Entities are selected as Query Entities selects them (the same parsing and plan); the
instances of their attributes are then read attribute by attribute, each bounded by lastN
and the server's CONTESTO_TEMPORAL_MAX_INSTANCES (206 with Content-Range when cut)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request, Response

from context_broker._errors import ResourceNotFound
from context_broker._http._deps import deps_of
from context_broker._http._negotiation import Call, get_call
from context_broker._http._openapi import FIND, QUERY_ERRORS, REMOVE, answer, operation
from context_broker._http._params import name_list, options_of, page_params, render_options
from context_broker._http._query import page_links, query_selection
from context_broker._http._responses import no_content, representation
from context_broker._names import check_uri
from context_broker._query._geo import parse_geo_query
from context_broker._temporal import TemporalQuery, TemporalStore, parse_temporal_query
from context_broker._temporal._aggregation import (
    Aggregation,
    aggregated_attribute,
    parse_aggregation,
)
from context_broker._temporal._representation import aggregated_entity, temporal_entity

router = APIRouter(tags=["Temporal"])
Document = dict[str, Any]

_SELECTION = (
    *("id", "idPattern", "type", "attrs", "q", "scopeQ", "limit", "offset", "count"),
    *("georel", "geometry", "coordinates", "geoproperty"),
)
TEMPORAL_QUERY = (
    *("timerel", "timeAt", "endTimeAt", "timeproperty", "lastN", "format", "lang"),
    *("aggrMethods", "aggrPeriodDuration"),
)
_TEMPORAL_OPTIONS = ("temporalValues", "aggregatedValues")
_SIMPLIFIED = frozenset({"temporalValues", "keyValues", "simplified"})


@router.get(
    "/temporal/entities/{entity_id:entity_id}",
    openapi_extra=operation(
        "Retrieve Temporal Evolution of an Entity (clause 6.19.3.1)",
        query=("attrs", *TEMPORAL_QUERY),
        options=_TEMPORAL_OPTIONS,
        errors=FIND,
        answers=answer(200) | answer(206, "Partial Content: see Content-Range"),
    ),
)
async def retrieve_temporal(entity_id: str, request: Request) -> Response:
    deps = deps_of(request)
    call = await get_call(request, deps.resolver)
    check_uri(entity_id, "entity id")
    temporal = _temporal_query(request)
    history = _history(request)
    attrs = name_list(request, "attrs", call.terms)
    summaries = await history.summaries(call.tenant, entity_id, attrs)
    try:
        types = (await deps.broker.retrieve_entity(call.tenant, entity_id, []))["type"]
    except ResourceNotFound:  # deleted: its types as its history recorded them
        if not summaries:
            raise
        types = summaries[-1]["types"]
    answered = await _answer_entity(request, call, entity_id, types, summaries, temporal)
    status, headers = _partial([answered])
    return representation(call, answered.body, status=status, headers=headers)


@router.delete(
    "/temporal/entities/{entity_id:entity_id}",
    openapi_extra=operation(
        "Delete Temporal Representation of an Entity (clause 6.19.3.2)",
        errors=REMOVE,
        answers=answer(204),
    ),
)
async def delete_temporal(entity_id: str, request: Request) -> Response:
    """The entity's whole history goes; the entity itself, if it exists, stays."""
    deps = deps_of(request)
    call = await get_call(request, deps.resolver)
    check_uri(entity_id, "entity id")
    if not await _history(request).delete_entity(call.tenant, entity_id):
        raise ResourceNotFound(f"entity {entity_id} has no temporal representation")
    return no_content(call)


@router.get(
    "/temporal/entities",
    openapi_extra=operation(
        "Query Temporal Evolution of Entities (clause 6.18.3.1)",
        query=(*_SELECTION, *TEMPORAL_QUERY),
        options=_TEMPORAL_OPTIONS,
        errors=QUERY_ERRORS,
        answers=answer(200) | answer(206, "Partial Content: see Content-Range"),
    ),
)
async def query_temporal(request: Request) -> Response:
    deps = deps_of(request)
    call = await get_call(request, deps.resolver)
    params = request.query_params
    temporal = _temporal_query(request)
    selection = query_selection(
        call.terms,
        ids=params.get("id"),
        id_pattern=params.get("idPattern"),
        types=params.get("type"),
        attrs=params.get("attrs"),
        pick=None,
        omit=None,
        q=params.get("q"),
        scope_q=params.get("scopeQ"),
        geo=parse_geo_query(
            params.get("georel"),
            params.get("geometry"),
            params.get("coordinates"),
            params.get("geoproperty"),
            call.terms.expand,
        ),
        local=False,
    )
    limit, offset, count = page_params(request, deps.settings)
    query = replace(selection.query, names=(), limit=limit, offset=offset, count=count)
    page = await deps.broker.query_entities(call.tenant, query)
    attrs = list(selection.query.attrs) or None
    history = _history(request)
    answers = [
        await _answer_entity(
            request,
            call,
            doc["_id"],
            doc["type"],
            await history.summaries(call.tenant, doc["_id"], attrs),
            temporal,
        )
        for doc in page.docs
    ]
    status, headers = _partial(answers)
    if page.total is not None:
        headers["NGSILD-Results-Count"] = str(page.total)
    response = representation(
        call, [answered.body for answered in answers], status=status, headers=headers
    )
    for link in page_links(request, page.more, limit, offset):
        response.headers.append("Link", link)
    return response


class _Answered:
    """An entity's temporal representation and the instance lists the server's cap cut."""

    def __init__(self, body: Document, cut: list[list[Document]], query: TemporalQuery) -> None:
        self.body = body
        self.cut = cut
        self.query = query


async def _answer_entity(
    request: Request,
    call: Call,
    entity_id: str,
    types: list[str],
    summaries: list[Document],
    temporal: TemporalQuery,
) -> _Answered:
    """The entity's temporal representation from its attributes' `summaries`."""
    history = _history(request)
    cap = deps_of(request).settings.temporal_max_instances
    options = options_of(request, _TEMPORAL_OPTIONS)
    params = request.query_params
    aggregation = parse_aggregation(
        "aggregatedValues" in options, params.get("aggrMethods"), params.get("aggrPeriodDuration")
    )
    if aggregation is not None:
        return await _aggregated(request, call, entity_id, types, summaries, temporal, aggregation)
    records: list[Document] = []
    cut: list[list[Document]] = []
    for summary in summaries:
        limit = temporal.read_limit(cap)
        found = await history.instances(call.tenant, summary, temporal, limit)
        kept, was_cut = temporal.kept(found, cap)
        records.extend(kept)
        if was_cut:
            cut.append(kept)
    render = render_options(request, options - {"temporalValues"})
    # Clause 4.5.9: the simplified representation of history is its temporalValues.
    simplified = bool(options & _SIMPLIFIED) or render.format == "keyValues"
    body = temporal_entity(
        entity_id,
        types,
        records,
        call.terms,
        replace(render, format="normalized") if render.format == "keyValues" else render,
        temporal_values=simplified,
        timeproperty=temporal.timeproperty,
    )
    return _Answered(body, cut, temporal)


async def _aggregated(
    request: Request,
    call: Call,
    entity_id: str,
    types: list[str],
    summaries: list[Document],
    temporal: TemporalQuery,
    aggregation: Aggregation,
) -> _Answered:
    """Clause 4.5.19: each attribute's periods, computed by the store; at most the server's
    cap of them (the latest ones with lastN)."""
    history = _history(request)
    cap = deps_of(request).settings.temporal_max_instances
    attributes: dict[str, Document] = {}
    cut: list[list[Document]] = []
    for summary in summaries:
        limit = temporal.read_limit(cap)
        found, start = await history.aggregate(call.tenant, summary, temporal, aggregation, limit)
        groups, was_cut = temporal.kept(found, cap)
        if not groups:
            continue
        attributes[summary["attr"]] = aggregated_attribute(groups, aggregation, start, temporal)
        if was_cut:
            field = temporal.time_field
            cut.append([{field: groups[0]["first"]}, {field: groups[-1]["last"]}])
    body = aggregated_entity(entity_id, types, attributes, call.terms)
    return _Answered(body, cut, temporal)


def _partial(answers: list[_Answered]) -> tuple[int, dict[str, str]]:
    """200, or 206 with the Content-Range of the instances answered when the cap cut any."""
    cut = [instances for answered in answers for instances in answered.cut]
    if not cut:
        return 200, {}
    return 206, {"Content-Range": answers[0].query.content_range(cut)}


def _temporal_query(request: Request) -> TemporalQuery:
    params = request.query_params
    return parse_temporal_query(
        params.get("timerel"),
        params.get("timeAt"),
        params.get("endTimeAt"),
        params.get("timeproperty"),
        params.get("lastN"),
    )


def _history(request: Request) -> TemporalStore:
    """The recorded history (read even when CONTESTO_TEMPORAL=off stops recording)."""
    history: TemporalStore = request.app.state.temporal
    return history
