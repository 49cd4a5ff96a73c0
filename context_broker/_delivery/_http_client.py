"""A small HTTP/1.1 client for notification POSTs, on asyncio streams (TLS for https).

Connections are kept alive per origin and reused, one request at a time on each; no
redirect is followed, no proxy used. It does what a notification needs and no more, for
under a tenth of the CPU that httpx spends per request (docs/architecture.md,
"Notifications")."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote, urlsplit

Origin = tuple[str, str, int]
"""scheme, host, port"""

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FORBIDDEN_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# Headers that frame the message on the connection: the client's to write, never a sender's.
_FRAMING = frozenset({b"content-length", b"transfer-encoding", b"connection", b"keep-alive", b"te"})
_HEAD_LIMIT = 64 * 1024
_DRAINED_BODY_LIMIT = 1024 * 1024
"""A longer answer body is not read: its connection is closed instead."""


class InvalidRequest(ValueError):
    """The URL or a header cannot make a valid request: sending it again will not help."""


class ProtocolError(ConnectionError):
    """The endpoint's answer is not HTTP/1.x."""


@dataclass(slots=True, frozen=True)
class Target:
    """Where a URL's requests go: its origin, the Host header and the request target."""

    origin: Origin
    host: bytes
    path: bytes
    authorization: bytes | None

    @classmethod
    def of(cls, url: str) -> Target:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as error:
            raise InvalidRequest(f"invalid endpoint: {error}") from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise InvalidRequest(f"invalid endpoint: {url!r}")
        default_port = 443 if scheme == "https" else 80
        port = default_port if port is None else port
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        host_header = host if port == default_port else f"{host}:{port}"
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        authorization = None
        if parts.username is not None:
            user_pass = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            authorization = b"Basic " + base64.b64encode(user_pass.encode())
        try:
            return cls(
                (scheme, parts.hostname, port),
                host_header.encode("idna" if not host.isascii() else "ascii"),
                path.encode("ascii"),
                authorization,
            )
        except UnicodeError:
            raise InvalidRequest(f"invalid endpoint: {url!r} is not ASCII") from None


@lru_cache(maxsize=4096)
def _target_of(url: str) -> Target:
    """`Target.of`, parsed once per endpoint (a fan-out posts to one URL again and again)."""
    return Target.of(url)


def request_bytes(target: Target, headers: Mapping[str, str], body: bytes) -> bytes:
    """The whole POST request; the caller's headers may replace Host and Authorization."""
    given: dict[bytes, tuple[bytes, bytes]] = {}
    for name, value in headers.items():
        raw_name, raw_value = name.encode("latin-1", "replace"), value.encode()
        if not _TOKEN.fullmatch(raw_name) or _FORBIDDEN_VALUE.search(raw_value):
            raise InvalidRequest(f"invalid header {name!r}")
        lowered = raw_name.lower()
        if lowered not in _FRAMING:
            given[lowered] = (raw_name, raw_value)
    lines = [b"POST " + target.path + b" HTTP/1.1"]
    if b"host" not in given:
        lines.append(b"Host: " + target.host)
    if target.authorization is not None and b"authorization" not in given:
        lines.append(b"Authorization: " + target.authorization)
    lines += [name + b": " + value for name, value in given.values()]
    lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@dataclass(slots=True, eq=False)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0

    def usable(self, now: float, keepalive_s: float) -> bool:
        """Whether an idle connection may take a request: open on both sides, not too old."""
        return (
            now - self.idle_since < keepalive_s
            and not self.writer.is_closing()
            and not self.reader.at_eof()
        )

    def close(self) -> None:
        self.writer.close()


class _Stale(Exception):
    """A reused connection the endpoint had closed while it was idle: nothing was answered."""


class HttpClient:
    """POSTs bodies and returns the answer's status; at most `connections` open at once."""

    def __init__(
        self,
        timeout_s: float,
        connections: int = 256,
        idle_per_origin: int = 64,
        keepalive_s: float = 4.0,
    ) -> None:
        self.timeout_s = timeout_s
        self.idle_per_origin = idle_per_origin
        self.keepalive_s = keepalive_s  # below the usual server's idle timeout (5 s)
        self._slots = asyncio.Semaphore(connections)
        self._idle: dict[Origin, list[_Connection]] = {}
        self._tls: ssl.SSLContext | None = None
        self._closed = False
        self._swept = time.monotonic()

    async def post(self, url: str, headers: Mapping[str, str], body: bytes) -> int:
        """The status the endpoint answered; InvalidRequest, TimeoutError, OSError (the
        connection failed, ProtocolError among them)."""
        target = _target_of(url)
        request = request_bytes(target, headers, body)
        if self._closed:
            raise ConnectionError("the client is closed")
        async with asyncio.timeout(self.timeout_s), self._slots:
            reused = self._reusable(target.origin)
            if reused is not None:
                try:
                    return await self._exchange(target.origin, reused, request, reused=True)
                except _Stale:
                    pass  # the endpoint closed it meanwhile: the request goes on a new one
            opened = await self._open(target.origin)
            return await self._exchange(target.origin, opened, request, reused=False)

    async def aclose(self) -> None:
        self._closed = True
        idle = [connection for stack in self._idle.values() for connection in stack]
        self._idle.clear()
        for connection in idle:
            connection.close()
        for connection in idle:
            with contextlib.suppress(Exception):
                await connection.writer.wait_closed()

    def _reusable(self, origin: Origin) -> _Connection | None:
        stack = self._idle.get(origin)
        now = time.monotonic()
        while stack:
            connection = stack.pop()  # the most recently used first
            if connection.usable(now, self.keepalive_s):
                return connection
            connection.close()
        return None

    async def _open(self, origin: Origin) -> _Connection:
        scheme, host, port = origin
        tls = self._tls_context() if scheme == "https" else None
        reader, writer = await asyncio.open_connection(
            host, port, ssl=tls, server_hostname=host if tls else None, limit=_HEAD_LIMIT
        )
        return _Connection(reader, writer)

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    async def _exchange(
        self, origin: Origin, connection: _Connection, request: bytes, *, reused: bool
    ) -> int:
        """Send the request and read the whole answer; the connection goes back to the idle
        ones when the endpoint keeps it open, else it is closed."""
        try:
            connection.writer.write(request)
            await connection.writer.drain()
            status, keep_alive = await _read_answer(connection.reader, reused=reused)
        except BaseException:
            connection.close()
            raise
        if keep_alive:
            self._park(origin, connection)
        else:
            connection.close()
        return status

    def _park(self, origin: Origin, connection: _Connection) -> None:
        stack = self._idle.setdefault(origin, [])
        if self._closed or len(stack) >= self.idle_per_origin:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        stack.append(connection)
        if connection.idle_since - self._swept > self.keepalive_s:
            self._sweep(connection.idle_since)

    def _sweep(self, now: float) -> None:
        """Close the idle connections too old or closed by their endpoint (of endpoints
        that are not sent to again)."""
        self._swept = now
        for origin, stack in list(self._idle.items()):
            kept = [each for each in stack if each.usable(now, self.keepalive_s)]
            for each in stack:
                if each not in kept:
                    each.close()
            if kept:
                self._idle[origin] = kept
            else:
                del self._idle[origin]


async def _read_answer(reader: asyncio.StreamReader, *, reused: bool) -> tuple[int, bool]:
    """The final status and whether the connection may carry another request; the body is
    read and dropped."""
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as error:
            if reused and not error.partial:
                raise _Stale from None
            raise ProtocolError("the connection closed before an answer") from None
        except asyncio.LimitOverrunError:
            raise ProtocolError("the answer's head is too long") from None
        version, status, fields = _parse_head(head)
        if 100 <= status < 200 and status != 101:
            continue  # 100 Continue and other interim answers: the final one follows
        break
    connection = fields.get(b"connection", b"").lower()
    keep_alive = b"close" not in connection and (
        version == b"HTTP/1.1" or b"keep-alive" in connection
    )
    if status in (101, 204, 304):
        return status, keep_alive and status != 101
    if b"chunked" in fields.get(b"transfer-encoding", b"").lower():
        await _drain_chunked(reader)
        return status, keep_alive
    length_field = fields.get(b"content-length")
    if length_field is None:
        return status, False  # the body runs to the end of the connection: not read
    try:
        length = int(length_field)
    except ValueError:
        raise ProtocolError("invalid Content-Length") from None
    if length > _DRAINED_BODY_LIMIT:
        return status, False
    await _read_exactly(reader, length)
    return status, keep_alive


def _parse_head(head: bytes) -> tuple[bytes, int, dict[bytes, bytes]]:
    status_line, *lines = head[:-4].split(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"not an HTTP/1.x answer: {status_line[:40]!r}")
    fields: dict[bytes, bytes] = {}
    for line in lines:
        name, colon, value = line.partition(b":")
        if colon:
            fields[name.strip().lower()] = value.strip()
    return parts[0], int(parts[1]), fields


async def _drain_chunked(reader: asyncio.StreamReader) -> None:
    total = 0
    while True:
        size_line = await _read_line(reader)
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ProtocolError("invalid chunk size") from None
        total += size
        if total > _DRAINED_BODY_LIMIT:
            raise ProtocolError("the answer's body is too long")
        if size == 0:
            while await _read_line(reader):  # trailer fields, up to the empty line
                pass
            return
        await _read_exactly(reader, size + 2)


async def _read_line(reader: asyncio.StreamReader) -> bytes:
    try:
        return (await reader.readuntil(b"\r\n"))[:-2]
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        raise ProtocolError("the answer's body ended early") from None


async def _read_exactly(reader: asyncio.StreamReader, length: int) -> None:
    try:
        await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise ProtocolError("the answer's body ended early") from None
