"""The two busiest operations, Retrieve Entity and Partial Attribute Update, taken straight
from ASGI to their route handlers.

Sensors patch one attribute and dashboards read entities by id far more often than anything
else; for those two requests the walk through the route table and the framework's per-request
parameter solving cost more CPU than the broker's own work. This middleware recognises them by
method and path and calls the same handlers the routes declare, so answers, errors and the
OpenAPI description (the routes stay declared) are unchanged. Anything it does not recognise
goes on to the framework: ids holding "/" and a non-empty root path among them.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from context_broker._errors import NgsiLdError
from context_broker._http._entities import (
    partial_update_attribute,
    retrieve_entity,
    router,
)
from context_broker._http._query_names import KNOWN_QUERY_NAMES, declared_query_names
from context_broker._http._responses import problem_response

ENTITIES_PATH = "/ngsi-ld/v1/entities/"
_ATTRIBUTE_PATH = re.compile(re.escape(ENTITIES_PATH) + r"([^/]+)/attrs/([^/]+)")


def _route_of(endpoint: Callable[..., Awaitable[Response]]) -> APIRoute:
    for route in router.routes:
        if isinstance(route, APIRoute) and route.endpoint is endpoint:
            return route
    raise LookupError(f"no route runs {endpoint.__name__}")


class HotPath:
    """Runs GET /entities/{id} and PATCH /entities/{id}/attrs/{attr} without the router."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # The routes as the router would record them in the scope (for the request metrics),
        # and the query names each takes: the handler checks the query against them.
        self._retrieve = _route_of(retrieve_entity)
        self._update = _route_of(partial_update_attribute)
        self._retrieve_names = declared_query_names(self._retrieve)
        self._update_names = declared_query_names(self._update)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            path: str = scope["path"]
            method: str = scope["method"]
            if method == "GET" and path.startswith(ENTITIES_PATH):
                entity_id = path[len(ENTITIES_PATH) :]
                if entity_id and "/" not in entity_id:
                    scope[KNOWN_QUERY_NAMES] = self._retrieve_names
                    scope["route"] = self._retrieve
                    handled = retrieve_entity(entity_id, Request(scope, receive))
                    await _answer(handled, scope, receive, send)
                    return
            elif method == "PATCH" and path.startswith(ENTITIES_PATH):
                match = _ATTRIBUTE_PATH.fullmatch(path)
                if match is not None:
                    scope[KNOWN_QUERY_NAMES] = self._update_names
                    scope["route"] = self._update
                    handled = partial_update_attribute(match[1], match[2], Request(scope, receive))
                    await _answer(handled, scope, receive, send)
                    return
        await self.app(scope, receive, send)


async def _answer(handled: Awaitable[Response], scope: Scope, receive: Receive, send: Send) -> None:
    """The handler's response, or the ProblemDetails of the NGSI-LD error it raised (as the
    application's error handler answers it); other errors reach the application's handler."""
    try:
        response = await handled
    except NgsiLdError as error:
        response = problem_response(error)
    await response(scope, receive, send)
