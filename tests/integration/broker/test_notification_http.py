"""The HTTP notification sender against real loopback endpoints (clause 5.11, HTTP binding):
each notification is one POST of its body with its headers and the endpoint's receiverInfo
(clause 5.2.15); 2xx is delivered, a 4xx other than 408/429 is refused, anything else
(other statuses, no answer in time, no connection, no valid answer) is retried later;
redirects are not followed; connections are kept alive and an endpoint that closed one
while it was idle loses no notification."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from bson import ObjectId

from context_broker._delivery import HttpSender, Queued

pytestmark = pytest.mark.integration

Answer = Callable[[int], bytes | None]
"""The raw answer to the n-th request (from 0); None: close the connection unanswered."""


@dataclass(slots=True)
class Endpoint:
    """A loopback HTTP/1.1 endpoint: the requests it read, the connections it accepted."""

    answer: Answer
    requests: list[tuple[bytes, dict[str, str], bytes]] = field(default_factory=list)
    connections: int = 0
    close_after_answer: bool = False
    url: str = ""

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *lines = head[:-4].split(b"\r\n")
                headers = {}
                for line in lines:
                    name, _, value = line.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                answer = self.answer(len(self.requests))
                self.requests.append((request_line, headers, body))
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if self.close_after_answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


@asynccontextmanager
async def endpoint(answer: Answer, path: str = "/notify") -> AsyncIterator[Endpoint]:
    found = Endpoint(answer)
    server = await asyncio.start_server(found.serve, "127.0.0.1", 0)
    found.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}{path}"
    try:
        yield found
    finally:
        server.close()
        await server.wait_closed()


def status(code: int, extra: bytes = b"", body: bytes = b"") -> Answer:
    answer = b"HTTP/1.1 %d X\r\n%sContent-Length: %d\r\n\r\n%s" % (code, extra, len(body), body)
    return lambda _: answer


def notification(url: str, **headers: str) -> Queued:
    return Queued(
        id=ObjectId(),
        tenant=None,
        subscription_id="urn:ngsi-ld:Subscription:1",
        endpoint=url,
        headers={"Content-Type": "application/json", **headers},
        body=b'{"id":"urn:ngsi-ld:Notification:1","type":"Notification","data":[]}',
        notifier_info={},
        attempts=0,
        queued_at=datetime.now(UTC),
        claim="c",
    )


@asynccontextmanager
async def sender(timeout_s: float = 2.0) -> AsyncIterator[HttpSender]:
    found = HttpSender(timeout_s)
    try:
        yield found
    finally:
        await found.aclose()


async def test_each_notification_is_one_post_of_its_body_and_headers_on_one_connection() -> None:
    """Clause 5.11 and 5.2.15: the body and the receiverInfo headers reach the endpoint."""
    async with endpoint(status(204)) as site, sender() as http:
        for _ in range(5):
            outcome = await http.send(notification(site.url + "?a=1", **{"X-Auth": "k 1"}))
            assert outcome.verdict == "delivered"
        assert len(site.requests) == 5
        request_line, headers, body = site.requests[0]
        assert request_line == b"POST /notify?a=1 HTTP/1.1"
        assert headers["host"] == site.url.split("/")[2]
        assert headers["content-type"] == "application/json"
        assert headers["x-auth"] == "k 1"
        assert body == notification(site.url).body
        assert site.connections == 1  # kept alive


@pytest.mark.parametrize(
    ("code", "verdict"),
    [
        (200, "delivered"),
        (201, "delivered"),
        (204, "delivered"),
        (400, "refused"),
        (404, "refused"),
        (408, "retry"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
    ],
)
async def test_status_decides_delivered_refused_or_retried(code: int, verdict: str) -> None:
    async with endpoint(status(code, body=b'{"detail":"x"}')) as site, sender() as http:
        outcome = await http.send(notification(site.url))
        assert outcome.verdict == verdict
        if verdict != "delivered":
            assert outcome.why == f"HTTP {code}"


async def test_redirects_are_not_followed() -> None:
    async with endpoint(status(204), "/elsewhere") as target:
        moved = status(307, b"Location: " + target.url.encode() + b"\r\n")
        async with endpoint(moved) as site, sender() as http:
            outcome = await http.send(notification(site.url))
        assert outcome.verdict == "retry" and outcome.why == "HTTP 307"
        assert target.requests == []


async def test_chunked_interim_and_http_1_0_answers_are_read() -> None:
    chunked = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nTrailer: 1\r\n\r\n"
    )
    async with endpoint(lambda _: chunked) as site, sender() as http:
        for _ in range(3):
            assert (await http.send(notification(site.url))).verdict == "delivered"
        assert site.connections == 1
    old = b"HTTP/1.0 200 OK\r\n\r\nthe body runs to the end of the connection"
    async with endpoint(lambda _: old) as site, sender() as http:
        site.close_after_answer = True
        for _ in range(3):
            assert (await http.send(notification(site.url))).verdict == "delivered"
        assert site.connections == 3


async def test_an_endpoint_that_closed_an_idle_connection_loses_nothing() -> None:
    """The endpoint closes the connection after each answer (seen while idle), and once
    closes it on the next request unanswered (the close crossed the request): every
    notification is still delivered at its first attempt."""
    async with endpoint(status(204)) as site, sender() as http:
        site.close_after_answer = True
        for _ in range(3):
            assert (await http.send(notification(site.url))).verdict == "delivered"
            await asyncio.sleep(0.05)
    async with endpoint(lambda n: None if n == 1 else status(204)(n)) as site, sender() as http:
        for _ in range(3):
            assert (await http.send(notification(site.url))).verdict == "delivered"
        assert len(site.requests) == 4  # the unanswered one went again on a new connection


async def test_no_answer_in_time_no_connection_and_no_http_are_retried() -> None:
    async with endpoint(lambda _: b"") as site, sender(timeout_s=0.3) as http:
        outcome = await http.send(notification(site.url))
        assert (outcome.verdict, outcome.why) == ("retry", "no answer in time")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/notify"
    async with sender() as http:
        outcome = await http.send(notification(closed))
        assert outcome.verdict == "retry" and "ConnectionRefused" in outcome.why
    async with endpoint(lambda _: b"SSH-2.0-OpenSSH\r\n\r\n") as site, sender() as http:
        assert (await http.send(notification(site.url))).verdict == "retry"
    async with endpoint(status(204)) as site, sender() as http:  # no TLS there
        https = site.url.replace("http://", "https://")
        assert (await http.send(notification(https))).verdict == "retry"
        assert site.requests == []


async def test_an_invalid_endpoint_or_header_is_refused_without_a_request() -> None:
    async with endpoint(status(204)) as site, sender() as http:
        bad_header = await http.send(notification(site.url, **{"Bad Name": "v"}))
        bad_port = await http.send(notification("http://127.0.0.1:99999/notify"))
        assert bad_header.verdict == "refused" and bad_port.verdict == "refused"
        assert site.requests == []
