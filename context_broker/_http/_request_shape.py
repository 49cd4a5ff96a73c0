"""Checks on a request's shape that come before routing, authentication and tenant lookup.

- A collection route answers the same with a trailing slash as without, in place rather than
  through a redirect, which would cost clients a second request (the FIWARE IoT Agent posts
  to `/entityOperations/upsert/`).
- `PUT` or `PATCH` on `/entities/` names no entity: 400, not 405.
- A write without a body length (neither `Content-Length` nor chunked) is 411 Length
  Required (RFC 9110 15.5.12), before any tenant is looked up.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from context_broker._errors import BadRequestData, LengthRequired
from context_broker._http._responses import problem_response

API_PREFIX = "/ngsi-ld/v1/"
_COLLECTIONS = re.compile(
    r"(entities|types|attributes|subscriptions|jsonldContexts|csourceRegistrations"
    r"|csourceSubscriptions|temporal/entities|entityOperations/[A-Za-z]+"
    r"|temporal/entityOperations/[A-Za-z]+)/"
)
_ATTRIBUTES_COLLECTION = b"/attrs/"
_WRITES = frozenset({"POST", "PUT", "PATCH"})
_ENTITY_ITEM_METHODS = frozenset({"PUT", "PATCH"})


class RequestShape:
    """Normalises trailing slashes and refuses requests no route can serve as sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A read without a trailing slash (most requests) costs two comparisons.
        if scope["type"] == "http" and (scope["method"] in _WRITES or scope["path"][-1:] == "/"):
            path: str = scope["path"]
            if path.startswith(API_PREFIX):
                problem = _refusal(scope, path)
                if problem is not None:
                    await problem_response(problem)(scope, receive, send)
                    return
                if path.endswith("/") and _is_collection(scope, path[len(API_PREFIX) :]):
                    scope = _without_trailing_slash(scope)
        await self.app(scope, receive, send)


def _refusal(scope: Scope, path: str) -> BadRequestData | LengthRequired | None:
    method: str = scope["method"]
    if method in _WRITES and not _has_length(scope):
        return LengthRequired(
            "the request has neither Content-Length nor Transfer-Encoding: chunked"
        )
    if method in _ENTITY_ITEM_METHODS and path == API_PREFIX + "entities/":
        return BadRequestData(f"{method} /entities/ needs an entity id after the slash")
    return None


def _has_length(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return True
        if name == b"transfer-encoding" and b"chunked" in value.lower():
            return True
    return False


def _is_collection(scope: Scope, relative: str) -> bool:
    """`entities/`, `types/`, ... or `entities/{id}/attrs/` with a literal (not %2F) slash."""
    if _COLLECTIONS.fullmatch(relative):
        return True
    raw_path = scope.get("raw_path")
    literal_end = raw_path.endswith(_ATTRIBUTES_COLLECTION) if raw_path else True
    return (
        relative.startswith("entities/")
        and relative.endswith(_ATTRIBUTES_COLLECTION.decode())
        and len(relative) > len("entities//attrs/")
        and literal_end
    )


def _without_trailing_slash(scope: Scope) -> Scope:
    # In place: the middlewares outside read the route the router records in the scope.
    scope["path"] = scope["path"][:-1]
    raw_path = scope.get("raw_path")
    if raw_path and raw_path.endswith(b"/"):
        scope["raw_path"] = raw_path[:-1]
    return scope
