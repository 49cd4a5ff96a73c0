"""Fetching remote JSON-LD @context documents over HTTP(S): the broker's only such client.

A request names the URL (a Link header, an "@context" in a body), so the broker must not
become a way into the network it runs in: every hop (redirects are followed by hand) is
resolved first, refused unless each address is public or on the allow-list
(`CONTESTO_CONTEXT_FETCH_ALLOW`), and then connected to that very address, so a second DNS
answer cannot point elsewhere. Every failure gives the client the same detail, whatever
happened (refused, closed port, HTTP error, too big, too slow); the cause is logged. A server
that answers with something other than a JSON-LD @context is the client's mistake: 400.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from context_broker._errors import BadRequestData, LdContextNotAvailable

__all__ = ["FetchAllowList", "HttpContextFetcher"]

log = logging.getLogger("context_broker.context_fetch")

_ACCEPT = "application/ld+json, application/json;q=0.9"
_MAX_REDIRECTS = 5
_DEFAULT_PORTS = {"http": 80, "https": 443}

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class FetchAllowList:
    """Hosts and networks the broker may fetch from although they are not public."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IpNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str | Iterable[str]) -> FetchAllowList:
        """From "ctx.internal, 10.1.0.0/16, 127.0.0.1" (host names, addresses or CIDRs)."""
        items = text.split(",") if isinstance(text, str) else text
        hosts: set[str] = set()
        networks: list[IpNetwork] = []
        for raw in items:
            item = raw.strip().lower()
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                hosts.add(item)
        return cls(frozenset(hosts), tuple(networks))

    def admits(self, address: IpAddress) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.networks):
            return True
        return address.is_global and not address.is_multicast


class _Unusable(Exception):
    """Why a fetch failed: logged for the operator, never shown to the client."""


class _NotAContext(Exception):
    """The server answered, but not with a JSON object holding @context: the client's error."""


class HttpContextFetcher:
    """`await fetcher(url)` -> the parsed @context document; bounded in time and size."""

    def __init__(
        self, timeout_s: float, max_bytes: int, allow: FetchAllowList | None = None
    ) -> None:
        self._timeout_s = timeout_s
        self._max_bytes = max_bytes
        self._allow = allow or FetchAllowList()
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(timeout_s),
            headers={"Accept": _ACCEPT},
            trust_env=False,
            # A pooled connection is keyed by address: never let one TLS name serve another.
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> HttpContextFetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def __call__(self, url: str) -> object:
        _check_syntax(url)
        try:
            async with asyncio.timeout(self._timeout_s):
                return _context_document(await self._get(url))
        except httpx.InvalidURL:
            raise BadRequestData(f"the @context URL is malformed: {url!r}") from None
        except _NotAContext as exc:
            log.info("@context %s is not one: %s", url, exc)
            raise BadRequestData(
                f"the document at {url} is not a JSON-LD @context: {exc}"
            ) from None
        except TimeoutError:
            cause = f"no complete answer within {self._timeout_s:g} s"
        except httpx.HTTPError as exc:
            cause = str(exc) or type(exc).__name__
        except _Unusable as exc:
            cause = str(exc)
        log.info("@context %s not fetched: %s", url, cause)
        raise LdContextNotAvailable(
            f"@context {url} could not be retrieved: it must be a JSON-LD @context document "
            f"of at most {self._max_bytes} bytes, served within {self._timeout_s:g} s from a "
            "public address"
        )

    async def _get(self, url: str) -> bytes:
        for _ in range(_MAX_REDIRECTS + 1):
            target, extensions, host = await self._pinned(url)
            async with self._client.stream(
                "GET", target, headers={"Host": host}, extensions=extensions
            ) as response:
                if response.is_redirect:
                    location = response.headers.get("location")
                    if not location:
                        raise _Unusable(f"HTTP {response.status_code} without a Location")
                    url = urljoin(url, location)
                    continue
                if not response.is_success:
                    raise _Unusable(f"the server answered HTTP {response.status_code}")
                return await self._body(response)
        raise _Unusable(f"more than {_MAX_REDIRECTS} redirects")

    async def _pinned(self, url: str) -> tuple[str, dict[str, Any], str]:
        """The URL on a checked address, the TLS name to verify, and the Host header."""
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
        except ValueError:
            raise _Unusable(f"a redirect to the malformed URL {url!r}") from None
        if parts.scheme not in _DEFAULT_PORTS or not host:
            raise _Unusable(f"a redirect to {url!r}, which is not http(s)")
        try:
            port = parts.port or _DEFAULT_PORTS[parts.scheme]
        except ValueError:
            raise _Unusable(f"{url!r} has no valid port") from None
        host_header = parts.netloc.rpartition("@")[2]
        if host in self._allow.hosts:
            return url, {}, host_header
        address = await self._checked_address(host, port)
        shown = f"[{address}]" if address.version == 6 else str(address)
        target = urlunsplit((parts.scheme, f"{shown}:{port}", parts.path, parts.query, ""))
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        return target, extensions, host_header

    async def _checked_address(self, host: str, port: int) -> IpAddress:
        try:
            addresses = [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            try:
                found = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
            except OSError as exc:
                raise _Unusable(f"{host} does not resolve: {exc}") from None
            addresses = [ipaddress.ip_address(info[4][0]) for info in found]
        refused = [str(a) for a in addresses if not self._allow.admits(a)]
        if refused or not addresses:
            raise _Unusable(
                f"{host} resolves to {', '.join(refused) or 'nothing'}, not a public address "
                "(name it in CONTESTO_CONTEXT_FETCH_ALLOW to allow it)"
            )
        return addresses[0]

    async def _body(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise _Unusable(f"the document is larger than {self._max_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self._max_bytes:
                raise _Unusable(f"the document is larger than {self._max_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


def _check_syntax(url: str) -> None:
    """BadRequestData unless url is a well-formed http(s) URL (host, port, no blanks)."""
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        if parts.scheme in ("http", "https") and hostname:
            parts.port  # noqa: B018 - raises ValueError when out of range
            if not _is_ip_literal(hostname):
                hostname.encode("idna")
    except (ValueError, UnicodeError):
        raise BadRequestData(f"the @context URL is malformed: {url!r}") from None
    if parts.scheme not in ("http", "https") or not hostname:
        raise BadRequestData(f"the @context URL must be http(s): {url!r}")
    if any(char.isspace() or not char.isprintable() for char in url):
        raise BadRequestData(f"the @context URL is malformed: {url!r}")


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _context_document(body: bytes) -> object:
    try:
        document = json.loads(body)
    except ValueError:
        raise _NotAContext("the answer is not valid JSON") from None
    if not isinstance(document, dict) or "@context" not in document:
        raise _NotAContext("the answer is not a JSON object with an @context member")
    return document
