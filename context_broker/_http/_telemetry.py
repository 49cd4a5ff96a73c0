"""Request ids and request metrics, outermost around every request.

The request id comes from an `X-Request-Id` header when it is a plausible id (1-128
characters of letters, digits and `._:-`), else it is made here (16 hex digits); the logs
of the request carry it and every answer echoes it, errors included. Each request counts
once by method, route template (never the raw path, so ids do not multiply the series),
status and tenant: the tenant's name when the store has it open (a tenant that exists),
`default` without the header, `unknown` otherwise, so the series stay as many as the
tenants.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from context_broker._errors import InternalError
from context_broker._http._responses import problem_response
from context_broker._logs import REQUEST_ID
from context_broker._metrics import BrokerMetrics

__all__ = ["REQUEST_ID_HEADER", "RequestTelemetry"]

REQUEST_ID_HEADER = b"x-request-id"
_VALID_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
_UNMATCHED = "unmatched"
_API_PREFIX = "/ngsi-ld/v1"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_DEFAULT_TENANT = "default"
_UNKNOWN_TENANT = "unknown"

log = logging.getLogger("context_broker")


class RequestTelemetry:
    """Gives each request an id and counts and times it."""

    def __init__(self, app: ASGIApp, metrics: BrokerMetrics) -> None:
        self.app = app
        self._metrics = metrics
        self._counted: dict[tuple[str, str, int, str], Any] = {}
        self._timed: dict[tuple[str, str], Any] = {}
        self._templates: dict[int, str] = {}  # by id(route): routes live as long as the app
        # Made ids: a random prefix per process and a counter, unique without a system call.
        self._id_prefix = os.urandom(4).hex()
        self._made = itertools.count()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id: bytes | None = None
        tenant: bytes | None = None
        for name, value in scope["headers"]:
            if name == REQUEST_ID_HEADER:
                request_id = value
            elif name == b"ngsild-tenant":
                tenant = value
        if request_id is None or _VALID_ID.fullmatch(request_id) is None:
            request_id = f"{self._id_prefix}{next(self._made) & 0xFFFFFFFF:08x}".encode()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, request_id)]
            await send(message)

        token = REQUEST_ID.set(request_id.decode("ascii"))
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if status:
                raise
            # The framework's last-resort handler answers outside this middleware, without
            # the request id: the error is answered here instead.
            log.exception("unexpected error on %s %s", scope["method"], scope["path"])
            answer = problem_response(InternalError("the broker failed unexpectedly; see its log"))
            await answer(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
            self._observe(scope, status or 500, tenant, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, tenant: bytes | None, seconds: float) -> None:
        route = scope.get("route")
        template = _UNMATCHED if route is None else self._templates.get(id(route))
        if template is None:
            template = self._templates[id(route)] = _template_of(route, scope["path"])
        method: str = scope["method"] if scope["method"] in _METHODS else "other"
        key = (method, template, status, self._tenant_label(tenant))
        counter = self._counted.get(key)
        if counter is None:
            counter = self._counted[key] = self._metrics.requests.labels(
                method, template, str(status), key[3]
            )
        counter.inc()
        timed = self._timed.get((method, template))
        if timed is None:
            timed = self._timed[method, template] = self._metrics.request_seconds.labels(
                method, template
            )
        timed.observe(seconds)

    def _tenant_label(self, header: bytes | None) -> str:
        if not header:
            return _DEFAULT_TENANT
        name = header.decode("latin-1").casefold()
        return name if self._metrics.tenant_known(name) else _UNKNOWN_TENANT


def _template_of(route: object, path: str) -> str:
    """The full path template of a route: the scope holds the route as its router declared
    it, without the API prefix it was included under."""
    declared: str = getattr(route, "path_format", _UNMATCHED)
    if path.startswith(_API_PREFIX) and not declared.startswith(_API_PREFIX):
        return _API_PREFIX + declared
    return declared
