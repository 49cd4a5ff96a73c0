"""Version negotiation (clause 6.3.21 of V1.9): a request with `Prefer: ngsi-ld=<version>`
is answered with `Preference-Applied: ngsi-ld=1.8`, the version this broker's answers follow,
so a client asking for another version learns which one it got."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SPEC_VERSION = "1.8"
_PREFERENCE = b"ngsi-ld="
_APPLIED = (b"preference-applied", _PREFERENCE + SPEC_VERSION.encode())


class VersionPreference:
    """Adds Preference-Applied to the answers of requests that state an ngsi-ld preference."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _prefers_a_version(scope["headers"]):
            await self.app(scope, receive, send)
            return

        async def send_applied(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), _APPLIED]}
            await send(message)

        await self.app(scope, receive, send_applied)


def _prefers_a_version(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    return any(name == b"prefer" and _PREFERENCE in value.lower() for name, value in headers)
