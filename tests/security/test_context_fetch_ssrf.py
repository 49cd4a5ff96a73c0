"""Remote @context fetching cannot reach into the broker's own network.

A Link header or an "@context" URL makes the broker fetch it: loopback, private, link-local
addresses are refused (after resolution, on every redirect hop) unless allow-listed, and
the client cannot tell a closed port from an open one by the answer.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from typing import ClassVar

import httpx
import pytest
from _servers import QuietHandler, ThreadedServer, serving

from context_broker import BrokerSettings, create_app
from context_broker._context_fetch import FetchAllowList, HttpContextFetcher
from context_broker._errors import LdContextNotAvailable

pytestmark = pytest.mark.integration

GOOD = {"@context": {"speed": "http://example.org/speed"}}


class _Internal(QuietHandler):
    """An internal service: answers 400 to anything but /good, /to-internal redirects."""

    hits: ClassVar[list[str]] = []
    redirect_to: ClassVar[str] = ""

    def do_GET(self) -> None:
        self.hits.append(self.path)
        if self.path == "/good":
            body = json.dumps(GOOD).encode()
            self.send_response(200)
        elif self.path == "/to-internal":
            body = b""
            self.send_response(302)
            self.send_header("Location", self.redirect_to)
        else:
            body = b'{"error": "bad request"}'
            self.send_response(400)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def internal() -> Iterator[int]:
    with serving(_Internal) as url:
        yield int(url.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def broker(store_url: str) -> Iterator[str]:
    """A broker with the default settings: no allow-list."""
    settings = BrokerSettings(mongo_url=store_url, database_prefix=f"s{secrets.token_hex(4)}")
    with ThreadedServer(create_app(settings)) as server:
        yield server.url + "/ngsi-ld/v1"


@pytest.fixture
async def fetcher() -> AsyncIterator[HttpContextFetcher]:
    async with HttpContextFetcher(2.0, 65536, FetchAllowList.parse("localhost")) as fetcher:
        yield fetcher


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _link(url: str) -> dict[str, str]:
    return {
        "Link": f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
    }


async def test_an_internal_port_is_neither_reached_nor_revealed(broker: str, internal: int) -> None:
    _Internal.hits.clear()
    open_url = f"http://127.0.0.1:{internal}/admin"
    closed_url = f"http://127.0.0.1:{_closed_port()}/admin"
    async with httpx.AsyncClient(base_url=broker, timeout=30) as http:
        to_open = await http.get("/types", headers=_link(open_url))
        to_closed = await http.get("/types", headers=_link(closed_url))
        in_body = await http.post(
            "/entities",
            json={"id": "urn:ngsi-ld:X:1", "type": "X", "@context": open_url},
            headers={"Content-Type": "application/ld+json"},
        )
    assert _Internal.hits == []
    for answer in (to_open, to_closed, in_body):
        assert answer.status_code == 504, answer.text
        assert answer.json()["type"].endswith("LdContextNotAvailable")
    shape = to_open.json()["detail"].replace(open_url, "URL")
    assert shape == to_closed.json()["detail"].replace(closed_url, "URL")
    assert "400" not in shape and "connection" not in shape.lower()


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "10.0.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "[fd00::1]",
    ],
)
async def test_non_public_addresses_are_refused_before_any_connection(host: str) -> None:
    async with HttpContextFetcher(2.0, 65536) as fetcher:
        with pytest.raises(LdContextNotAvailable):
            await fetcher(f"http://{host}:9/context.jsonld")


async def test_every_redirect_hop_is_checked(fetcher: HttpContextFetcher, internal: int) -> None:
    _Internal.hits.clear()
    _Internal.redirect_to = f"http://127.0.0.1:{internal}/good"
    assert await fetcher(f"http://localhost:{internal}/good") == GOOD
    with pytest.raises(LdContextNotAvailable):
        await fetcher(f"http://localhost:{internal}/to-internal")
    assert _Internal.hits == ["/good", "/to-internal"]


async def test_the_allow_list_names_networks() -> None:
    allow = FetchAllowList.parse("10.1.0.0/16, ctx.internal")
    assert allow.hosts == frozenset({"ctx.internal"})
    assert allow.admits(ipaddress.ip_address("10.1.2.3"))
    assert not allow.admits(ipaddress.ip_address("10.2.0.1"))
    assert allow.admits(ipaddress.ip_address("93.184.216.34"))
