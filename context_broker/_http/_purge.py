"""The URL parameters of Purge Entities (DELETE /entities, clause 6.4.3.3): the selection,
as Query Entities reads it, and `drop` or `keep`."""

from __future__ import annotations

from fastapi import Request

from context_broker._errors import BadRequestData
from context_broker._http._params import entity_ids, name_list, parse_type_selection
from context_broker._jsonld import TermMap
from context_broker._purge import Purge
from context_broker._query import parse_q, parse_scope_q
from context_broker._service import EntityQuery

PURGE_PARAMETERS = ("id", "idPattern", "type", "q", "scopeQ", "drop", "keep")
_SELECTORS = ("id", "idPattern", "type", "q", "scopeQ")


def purge_of(request: Request, terms: TermMap) -> tuple[EntityQuery, Purge]:
    """The entities a purge selects and what it does to them; a purge needs a selector."""
    params = request.query_params
    if not any(params.get(name) for name in _SELECTORS):
        raise BadRequestData(
            "Purge Entities needs at least one of type, id, idPattern, q or scopeQ"
        )
    ids, types, q, scope_q = (params.get(n) for n in ("id", "type", "q", "scopeQ"))
    query = EntityQuery(
        ids=entity_ids(ids) if ids is not None else (),
        id_pattern=params.get("idPattern"),
        types=parse_type_selection(types, terms.expand) if types is not None else (),
        q=parse_q(q) if q is not None else None,
        scope_q=parse_scope_q(scope_q) if scope_q is not None else None,
        expand=terms.expand,
    )
    drop = name_list(request, "drop", terms)
    keep = name_list(request, "keep", terms)
    return query, Purge(
        drop=frozenset(drop) if drop is not None else None,
        keep=frozenset(keep) if keep is not None else None,
    )
