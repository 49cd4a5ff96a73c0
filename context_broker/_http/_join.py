"""`join` and `joinLevel` (Linked Entity Retrieval, clause 4.5.23) of Retrieve Entity and
Query Entities: the linked entities fetched for an answer and added to its bodies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

from fastapi import Request

from context_broker._attributes import RenderOptions
from context_broker._entities import as_feature
from context_broker._http._deps import deps_of
from context_broker._http._negotiation import Call
from context_broker._jsonld import TermMap
from context_broker._linked import (
    JoinedRendering,
    LinkedProjection,
    LinkedRetrieval,
    linked_projections,
    parse_join,
    split_projection,
)
from context_broker._linked_q import LinkedQuery, LinkedTerm, parse_linked_q
from context_broker._service import EntityQuery

Document = dict[str, Any]


def join_of(
    request: Request, join: str | None = None, join_level: str | None = None
) -> LinkedRetrieval | None:
    """The request's join (URL parameters, or the members of a Query body when given)."""
    params = request.query_params
    return parse_join(
        join if join is not None else params.get("join"),
        join_level if join_level is not None else params.get("joinLevel"),
        deps_of(request).settings.join_max_level,
        params.get("containedBy"),
    )


def linked_projection_of(
    pick: str | None, omit: str | None, terms: TermMap
) -> tuple[str | None, str | None, dict[str, LinkedProjection]]:
    """`pick` and `omit` without their projections into linked entities (`rel{a,b}`,
    clause 4.21), and those projections by Relationship, for `joined`."""
    pick_names, pick_linked = split_projection(pick, "pick")
    omit_names, omit_linked = split_projection(omit, "omit")
    projections = linked_projections(pick_linked, True, terms.expand, "pick")
    projections |= linked_projections(omit_linked, False, terms.expand, "omit")
    return pick_names, omit_names, projections


async def with_linked_targets(
    request: Request, call: Call, query: EntityQuery, terms: Sequence[LinkedTerm]
) -> EntityQuery:
    """`query` with its linked q terms (`managedBy{name}=="Acme"`) turned into comparisons
    of each Relationship's object with the ids of the entities its condition selects."""
    if query.q is None:
        return query
    deps = deps_of(request)
    linked = LinkedQuery(
        query.q,
        tuple(term.relationship for term in terms),
        tuple(parse_linked_q(term.condition) for term in terms),
    )
    levels = deps.settings.join_max_level
    q = await deps.broker.resolve_linked_q(call.tenant, linked, call.terms.expand, levels)
    return replace(query, q=q)


async def joined(
    request: Request,
    call: Call,
    retrieval: LinkedRetrieval | None,
    docs: Sequence[Document],
    bodies: list[dict[str, Any]],
    render: RenderOptions,
    projections: Mapping[str, LinkedProjection] | None = None,
    geo_property: str | None = None,
) -> list[dict[str, Any]]:
    """The bodies of `docs` with their linked entities inline, or followed by them (flat).
    With `geo_property` the bodies are GeoJSON Features and so is each linked entity:
    inline inside the Relationship in `properties`, flat as more Features."""
    if retrieval is None:
        return bodies
    deps = deps_of(request)
    linked = await deps.broker.linked_entities(
        call.tenant,
        docs,
        retrieval.level,
        deps.settings.join_max_entities,
        retrieval.contained_by,
    )
    rendering = JoinedRendering(retrieval, linked, call.terms, render, projections or {})
    if geo_property is not None:
        rendering = replace(rendering, shape=partial(as_feature, geo_property=geo_property))
    if retrieval.join == "flat":
        return [*bodies, *rendering.flat(docs)]
    for doc, body in zip(docs, bodies, strict=True):
        rendering.inline(doc, body["properties"] if geo_property is not None else body)
    return bodies
