"""Unknown query parameters are refused with 400 InvalidRequest on every NGSI-LD route.

A route's known parameters are the ones it declares (its OpenAPI description, which
tests/integration/broker/test_openapi.py holds equal to the ones its handler reads), so a
misspelt `optoins=keyValues` is an error instead of a silently different answer. The check
runs once routing has chosen the route, from `deps_of`, which every NGSI-LD handler calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute

from context_broker._errors import InvalidRequest

# The scope key where the hot path, which bypasses routing, puts the operation's names.
KNOWN_QUERY_NAMES = "contesto.known_query_names"
_known_by_route: dict[int, frozenset[str]] = {}


def declared_query_names(route: APIRoute) -> frozenset[str]:
    """The query parameters a route declares, in its description or its signature."""
    parameters: list[dict[str, Any]] = (route.openapi_extra or {}).get("parameters", [])
    described = {p["name"] for p in parameters if p.get("in") == "query"}
    return frozenset(described | {p.name for p in route.dependant.query_params})


def check_query_names(request: Request) -> None:
    """Raise InvalidRequest when the query names a parameter the request's route does not take."""
    if not request.scope.get("query_string"):
        return
    known: frozenset[str] | None = request.scope.get(KNOWN_QUERY_NAMES)
    if known is None:
        route = request.scope.get("route")
        if not isinstance(route, APIRoute):
            return
        known = _known_by_route.get(id(route))
        if known is None:
            known = _known_by_route[id(route)] = declared_query_names(route)
    names = request.query_params.keys()
    if not known.issuperset(names):
        raise _unknown_names(names, known)


def _unknown_names(names: Iterable[str], known: frozenset[str]) -> InvalidRequest:
    unknown = sorted(set(names) - known)
    allowed = ", ".join(sorted(known)) or "none"
    return InvalidRequest(
        f"unknown query parameter(s) {', '.join(unknown)}; this operation takes: {allowed}"
    )
