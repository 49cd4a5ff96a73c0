"""The notification receiver of the broker suite: a minimal HTTP/1.1 server the broker posts to.

It records every request it is sent (method, path, headers, body) and answers 204, so the
subscription checks can wait, bounded in time, for the notification a clause says must come.
Standard library only (asyncio streams): the suite runs wherever the CLI runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json as jsonlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

__all__ = ["NotificationReceiver", "ReceivedRequest"]

_MAX_HEAD_BYTES = 64 * 1024
_ANSWER = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_TOO_LARGE = b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class _Unreadable(Exception):
    """A request the receiver cannot read: it answers `answer` and closes the connection."""

    def __init__(self, answer: bytes) -> None:
        super().__init__(answer.split(b"\r\n", 1)[0].decode())
        self.answer = answer


@dataclass(slots=True, frozen=True)
class ReceivedRequest:
    """One request the broker sent to the receiver; header names are lower-case."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def json(self) -> Any:
        """The body as JSON; None when it is empty or no JSON."""
        try:
            return jsonlib.loads(self.body) if self.body else None
        except ValueError:
            return None

    def describe(self) -> str:
        """`POST /notify/1 (application/json) {...}`: the request in one line."""
        text = self.body.decode("utf-8", "replace")
        text = text if len(text) <= 300 else text[:300] + "..."
        kind = f" ({self.media_type})" if self.media_type else ""
        return f"{self.method} {self.path}{kind} {text}".rstrip()


class NotificationReceiver:
    """Listens on `host:port` (port 0: any free one) while open; `url` is where it listens.

    `async with NotificationReceiver("192.0.2.10") as receiver: ...` ; requests over
    `max_body_bytes` are answered 413 and not recorded.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_body_bytes: int = 4 * 1024 * 1024,
        read_timeout_s: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.max_body_bytes = max_body_bytes
        self.read_timeout_s = read_timeout_s
        self._server: asyncio.Server | None = None
        self._received: list[ReceivedRequest] = []
        self._arrived = asyncio.Condition()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        """`http://host:port`, the address a broker posts to (IPv6 hosts in brackets)."""
        host = self.host
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(host).version == 6:
                host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def received(self) -> list[ReceivedRequest]:
        return list(self._received)

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, limit=_MAX_HEAD_BYTES
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._writers):  # idle keep-alive connections of the broker
            writer.close()
        await server.wait_closed()

    async def wait_for(
        self, wanted: Callable[[ReceivedRequest], bool], timeout_s: float, *, start: int = 0
    ) -> ReceivedRequest | None:
        """The first request from index `start` on that is `wanted`, waiting up to `timeout_s`
        for it; None when none came in time."""
        deadline = time.monotonic() + timeout_s
        async with self._arrived:
            seen = start
            while True:
                for request in self._received[seen:]:
                    if wanted(request):
                        return request
                seen = max(seen, len(self._received))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await self._arrived.wait()

    async def _record(self, request: ReceivedRequest) -> None:
        async with self._arrived:
            self._received.append(request)
            self._arrived.notify_all()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    async with asyncio.timeout(self.read_timeout_s):
                        request = await self._read_request(reader)
                except _Unreadable as exc:
                    writer.write(exc.answer)
                    await writer.drain()
                    return
                if request is None:
                    return
                await self._record(request)
                writer.write(_ANSWER)
                await writer.drain()
                if request.headers.get("connection", "").lower() == "close":
                    return
        except (
            TimeoutError,
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ):
            return  # an idle or broken connection: nothing to record
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _read_request(self, reader: asyncio.StreamReader) -> ReceivedRequest | None:
        """One request, or None at the end of the connection."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                raise _Unreadable(_BAD_REQUEST) from None
            return None
        except asyncio.LimitOverrunError:
            raise _Unreadable(_TOO_LARGE) from None
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _Unreadable(_BAD_REQUEST)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            name, colon, value = line.partition(":")
            if not colon or not name.strip():
                raise _Unreadable(_BAD_REQUEST)
            key = name.strip().lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await self._read_chunked(reader)
        else:
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                raise _Unreadable(_BAD_REQUEST) from None
            if length < 0:
                raise _Unreadable(_BAD_REQUEST)
            if length > self.max_body_bytes:
                raise _Unreadable(_TOO_LARGE)
            body = await reader.readexactly(length)
        return ReceivedRequest(parts[0], parts[1], headers, body)

    async def _read_chunked(self, reader: asyncio.StreamReader) -> bytes:
        body = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _Unreadable(_BAD_REQUEST) from None
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return bytes(body)
            if len(body) + size > self.max_body_bytes:
                raise _Unreadable(_TOO_LARGE)
            body += await reader.readexactly(size)
            await reader.readexactly(2)
