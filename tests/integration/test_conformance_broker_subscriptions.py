"""The subscription and notification checks of the broker suite: the receiver they listen
with, our broker passing them, and a broker that never notifies failing them, clearly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import typer
from _servers import ThreadedServer
from fastapi import FastAPI, Request, Response
from typer.testing import CliRunner

from conformance_tests._broker_checks_subscriptions import NOTIFICATION_CHECKS, SUBSCRIPTION_CHECKS
from conformance_tests._broker_framework import Outcome
from conformance_tests._broker_receiver import NotificationReceiver
from conformance_tests._broker_runner import SuiteResult, run_suite
from contesto._cli_conformance_broker import broker

pytestmark = pytest.mark.integration


def _failures(result: SuiteResult) -> dict[str, str]:
    return {r.id: r.reason for r in result.results if r.outcome is not Outcome.PASS}


@pytest.fixture
async def receiver() -> AsyncIterator[NotificationReceiver]:
    async with NotificationReceiver() as listening:
        yield listening


async def test_the_receiver_records_a_posted_notification(
    receiver: NotificationReceiver,
) -> None:
    link = '<https://example.org/ctx.jsonld>; rel="http://www.w3.org/ns/json-ld#context"'
    async with httpx.AsyncClient(base_url=receiver.url) as http:
        first = await http.post(
            "/notify/run/1",
            content=b'{"type": "Notification", "data": []}',
            headers={"Content-Type": "application/json", "Link": link},
        )
        second = await http.post("/notify/run/2", json={"n": 2})  # the same connection

    assert (first.status_code, second.status_code) == (204, 204)
    got = await receiver.wait_for(lambda r: r.path == "/notify/run/1", timeout_s=1)
    assert got is not None
    assert got.method == "POST"
    assert got.media_type == "application/json"
    assert got.headers["link"] == link
    assert got.body == b'{"type": "Notification", "data": []}'
    assert got.json == {"type": "Notification", "data": []}
    assert [r.path for r in receiver.received] == ["/notify/run/1", "/notify/run/2"]


async def test_the_receiver_reads_a_chunked_body(receiver: NotificationReceiver) -> None:
    async def parts() -> AsyncIterator[bytes]:
        for part in (b'{"type": ', b'"Notification"}'):
            yield part

    async with httpx.AsyncClient(base_url=receiver.url) as http:
        reply = await http.post(
            "/n", content=parts(), headers={"Content-Type": "application/ld+json"}
        )

    assert reply.status_code == 204
    [got] = receiver.received
    assert got.headers["transfer-encoding"] == "chunked"
    assert got.json == {"type": "Notification"}
    assert got.media_type == "application/ld+json"


async def test_the_receiver_refuses_a_body_over_its_bound() -> None:
    async with (
        NotificationReceiver(max_body_bytes=10) as small,
        httpx.AsyncClient(base_url=small.url) as http,
    ):
        reply = await http.post("/n", content=b"x" * 11)

    assert reply.status_code == 413
    assert small.received == []


async def test_waiting_for_what_never_comes_is_bounded(receiver: NotificationReceiver) -> None:
    start = time.monotonic()

    assert await receiver.wait_for(lambda r: True, timeout_s=0.3) is None
    assert 0.25 <= time.monotonic() - start < 2


async def test_a_waiter_wakes_when_the_request_arrives(receiver: NotificationReceiver) -> None:
    waiting = asyncio.create_task(receiver.wait_for(lambda r: r.path == "/late", timeout_s=5))
    async with httpx.AsyncClient(base_url=receiver.url) as http:
        await http.post("/early", content=b"{}")
        await http.post("/late", content=b"{}")

    got = await asyncio.wait_for(waiting, 2)
    assert got is not None and got.path == "/late"


async def test_our_broker_passes_the_subscription_checks(broker_url: str) -> None:
    result = await run_suite(broker_url, groups=["subscription"])

    assert [r.id for r in result.results] == [c.id for c in SUBSCRIPTION_CHECKS]
    assert _failures(result) == {}
    assert result.cleanup_problems == ()
    async with httpx.AsyncClient(base_url=broker_url + "/ngsi-ld/v1") as http:
        left = await http.get("subscriptions", headers={"NGSILD-Tenant": result.tenant or ""})
    assert left.status_code == 200
    assert left.json() == []


async def test_our_broker_passes_the_notification_checks(broker_url: str) -> None:
    """Needs the broker's notification delivery (context_broker/_delivery)."""
    result = await run_suite(broker_url, groups=["notification"], notify_wait_s=10)

    assert [r.id for r in result.results] == [c.id for c in NOTIFICATION_CHECKS]
    failures = _failures(result)
    assert failures == {}, "\n".join(f"{k}: {v}" for k, v in failures.items())
    assert result.cleanup_problems == ()


def _never_notifies() -> FastAPI:
    """A broker that accepts every write and sends no notification."""
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST", "PATCH", "DELETE"])
    async def anything(path: str, request: Request) -> Response:
        status = {"POST": 201, "PATCH": 204, "DELETE": 204}.get(request.method, 404)
        return Response(status_code=status, headers={"Location": "/" + path})

    return app


@pytest.fixture(scope="module")
def silent_url() -> Iterator[str]:
    with ThreadedServer(_never_notifies()) as server:
        yield server.url


async def test_a_silent_broker_fails_the_notification_checks_in_bounded_time(
    silent_url: str,
) -> None:
    start = time.monotonic()
    result = await run_suite(silent_url, groups=["notification"], notify_wait_s=0.3)

    assert time.monotonic() - start < 10
    assert result.counts().failed == len(NOTIFICATION_CHECKS)
    created = {r.id: r for r in result.results}["notification-entity-created"]
    assert created.clause == "5.8.1; 5.11; 5.3.1"
    assert created.reason.startswith("expected a POST to http://127.0.0.1:")
    assert "--notify-host" in created.reason
    assert created.reason.endswith("got nothing within 0.3 s")


async def test_a_receiver_that_cannot_listen_fails_the_notification_checks(
    silent_url: str,
) -> None:
    # 192.0.2.1 (TEST-NET-1) is no address of this machine.
    result = await run_suite(silent_url, groups=["notification"], notify_host="192.0.2.1")

    assert result.counts().failed == len(NOTIFICATION_CHECKS)
    reason = result.results[0].reason
    assert "notification receiver listening" in reason
    assert "cannot listen on 192.0.2.1:0" in reason


def test_the_command_takes_the_notify_options(silent_url: str) -> None:
    app = typer.Typer()
    app.command()(broker)

    outcome = CliRunner().invoke(
        app,
        [silent_url, "--group", "notification", "--notify-host", "127.0.0.1",
         "--notify-port", "0", "--notify-wait-s", "0.2"],
    )  # fmt: skip

    assert outcome.exit_code == 1, outcome.output
    assert "notification-entity-created" in outcome.output
    assert "got nothing within 0.2 s" in outcome.output
