"""The `Contesto-Validation-Warning` header: the profile violations a write kept under `warn`."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from context_broker._api_validation import reported_violations

__all__ = ["HEADER", "ValidationReport"]

HEADER = "contesto-validation-warning"
# Enough to read the first violations; the log line and the audit log hold them all.
_MAX_HEADER_CHARS = 4000


class ValidationReport:
    """Collects what the request's writes reported and adds it to the answer's headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "GET":
            await self.app(scope, receive, send)
            return
        found: list[str] = []
        token = reported_violations.set(found)

        async def reporting(message: Message) -> None:
            if message["type"] == "http.response.start" and found:
                text = " | ".join(found)[:_MAX_HEADER_CHARS]
                headers = list(message.get("headers", []))
                headers.append((HEADER.encode(), text.encode("ascii", "replace")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, reporting)
        finally:
            reported_violations.reset(token)
