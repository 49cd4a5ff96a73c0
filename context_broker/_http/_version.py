"""Version negotiation: a request with `Prefer: ngsi-ld=<major.minor>` (RFC 7240) is answered
with `Preference-Applied: ngsi-ld=<version>`, the version the answer conforms to. An entity
answer for an earlier version is amended by the fallbacks of clause 4.3.6.8 (V1.9); a later
version than the broker's gets the broker's; a malformed preference is ignored."""

from __future__ import annotations

import json
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from context_broker._version_fallbacks import (
    NATIVE,
    Version,
    amend_payload,
    applied_version,
    preferred_version,
)

SPEC_VERSION = "{}.{}".format(*NATIVE)
"""The NGSI-LD version the broker's answers conform to."""
# Answers that carry entities, the payloads the fallback tables are about.
_ENTITY_PATHS = ("/ngsi-ld/v1/entities", "/ngsi-ld/v1/entityOperations/query")
_JSON_TYPES = (b"application/json", b"application/ld+json", b"application/geo+json")


class VersionPreference:
    """Honours the `ngsi-ld` preference of a request: the Preference-Applied header on the
    answer and, for an earlier version, the entity payload amended to conform to it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        preferred = preferred_version(_prefer_headers(scope["headers"]))
        if preferred is None:
            await self.app(scope, receive, send)
            return
        version = applied_version(preferred)
        applied = (b"preference-applied", f"ngsi-ld={version[0]}.{version[1]}".encode())
        if (
            version == NATIVE
            or scope["method"] not in ("GET", "POST")
            or not scope["path"].startswith(_ENTITY_PATHS)
        ):
            await self.app(scope, receive, _with_header(send, applied))
            return
        await self.app(scope, receive, _Amending(send, applied, version).send)


def _prefer_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[str]:
    return [value.decode("latin-1") for name, value in headers if name == b"prefer"]


def _with_header(send: Send, header: tuple[bytes, bytes]) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), header]}
        await send(message)

    return sending


class _Amending:
    """Holds back a successful JSON answer until its body is complete, then sends it amended
    (the answers concerned are pages of entities, bounded by the query limit)."""

    def __init__(self, send: Send, applied: tuple[bytes, bytes], version: Version) -> None:
        self._send = send
        self._applied = applied
        self._version = version
        self._start: Message | None = None
        self._body: list[bytes] = []

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), self._applied]}
            if message["status"] == 200 and _is_json(message["headers"]):
                self._start = message
                return
        elif message["type"] == "http.response.body" and self._start is not None:
            self._body.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            await self._send_amended()
            return
        await self._send(message)

    async def _send_amended(self) -> None:
        assert self._start is not None
        body = b"".join(self._body)
        try:
            payload = json.loads(body)
        except ValueError:
            amended = body
        else:
            amend_payload(payload, self._version)
            amended = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = [
            (name, str(len(amended)).encode() if name == b"content-length" else value)
            for name, value in self._start["headers"]
        ]
        await self._send({**self._start, "headers": headers})
        await self._send({"type": "http.response.body", "body": amended})


def _is_json(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    return any(
        name == b"content-type" and value.split(b";")[0].strip() in _JSON_TYPES
        for name, value in headers
    )
