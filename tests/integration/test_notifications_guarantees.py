"""What subscribers rely on when the broker runs as several processes and dies: every
acknowledged change is notified, once, whatever process took the write, even when the
process that took it is killed right after answering (ETSI GS CIM 009 clause 5.11;
docs/architecture.md, "Notifications").

Each API runs in a process of its own on the real store; the receiver is a real HTTP
server on loopback.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _servers import ApiProcess, QuietHandler, serving

pytestmark = pytest.mark.integration

API = "/ngsi-ld/v1"
ENTITIES = 100
ROUNDS = 5
LEASE_S = 5


class Received:
    """What the receiver got: each notification's body, in arrival order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bodies: list[dict[str, Any]] = []
        self.delay_s = 0.0

    def add(self, body: dict[str, Any]) -> None:
        with self.lock:
            self.bodies.append(body)

    def entities(self) -> list[dict[str, Any]]:
        with self.lock:
            return [entity for body in self.bodies for entity in body["data"]]

    def wait_for(self, count: int, timeout_s: float) -> list[dict[str, Any]]:
        """The entities notified, once at least `count` arrived (or the time is up)."""
        deadline = time.monotonic() + timeout_s
        while len(self.entities()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.entities()


@pytest.fixture
def received() -> Received:
    return Received()


@pytest.fixture
def receiver(received: Received) -> Iterator[str]:
    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if received.delay_s:
                time.sleep(received.delay_s)
            received.add(json.loads(body))
            self.send_body(204, b"")

    with serving(Handler) as url:
        yield url + "/notify"


def api_env(store_url: str, prefix: str, **extra: str) -> dict[str, str]:
    return {"CONTESTO_MONGO_URL": store_url, "CONTESTO_DATABASE_PREFIX": prefix, **extra}


def subscription(receiver: str, **members: Any) -> dict[str, Any]:
    return {
        "type": "Subscription",
        "entities": [{"type": "Sensor"}],
        "notificationTrigger": ["entityCreated", "attributeUpdated"],
        "notification": {"endpoint": {"uri": receiver}, "format": "keyValues"},
        **members,
    }


def sensor(number: int) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Sensor:{number:03d}",
        "type": "Sensor",
        "temperature": {"type": "Property", "value": 0},
    }


async def update_rounds(workers: list[httpx.AsyncClient]) -> None:
    """ROUNDS updates of every entity, one second apart, each through one of the workers."""
    for round_number in range(1, ROUNDS + 1):
        started = time.monotonic()
        answers = await asyncio.gather(
            *(
                workers[number % len(workers)].patch(
                    f"{API}/entities/urn:ngsi-ld:Sensor:{number:03d}/attrs/temperature",
                    json={"type": "Property", "value": round_number},
                )
                for number in range(ENTITIES)
            )
        )
        assert {answer.status_code for answer in answers} == {204}
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))


async def sent_once(http: httpx.AsyncClient, location: str, timeout_s: float = 10) -> None:
    """Wait until the subscription's status shows the one notification sent."""
    deadline = time.monotonic() + timeout_s
    while (await http.get(location)).json()["notification"].get("timesSent") != 1:
        assert time.monotonic() < deadline, "the delivery was never recorded"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("case", ["throttling 0", "slow receiver"])
async def test_two_workers_notify_every_update_exactly_once(
    case: str, store_url: str, tmp_path: Path, receiver: str, received: Received
) -> None:
    """100 entities, one subscription, 5 updates of each at 1 s intervals through 2 API
    processes: the receiver counts each creation and each update exactly once."""
    received.delay_s = 0.02 if case == "slow receiver" else 0.0
    members = {"throttling": 0} if case == "throttling 0" else {}
    env = api_env(store_url, f"n{secrets.token_hex(4)}")
    with (
        ApiProcess(env, str(tmp_path / "one.log")) as one,
        ApiProcess(env, str(tmp_path / "two.log")) as two,
    ):
        async with (
            httpx.AsyncClient(base_url=one.url, timeout=30) as first,
            httpx.AsyncClient(base_url=two.url, timeout=30) as second,
        ):
            created = await first.post(
                f"{API}/subscriptions", json=subscription(receiver, **members)
            )
            assert created.status_code == 201, created.text
            location = created.headers["Location"]
            batch = await second.post(
                f"{API}/entityOperations/create", json=[sensor(n) for n in range(ENTITIES)]
            )
            assert batch.status_code == 201, batch.text
            await update_rounds([first, second])

            expected = ENTITIES * (ROUNDS + 1)
            notified = received.wait_for(expected, timeout_s=60)
            await asyncio.sleep(1.0)  # anything sent twice arrives by now
            counts = Counter(
                (entity["id"], entity["temperature"]) for entity in received.entities()
            )
            assert len(notified) >= expected
            assert set(counts.values()) == {1}, [key for key, n in counts.items() if n > 1][:5]
            assert len(counts) == expected

            # Deleted through one worker, the subscription is gone for the other at once.
            assert (await second.delete(location)).status_code == 204
            after = await first.patch(
                f"{API}/entities/urn:ngsi-ld:Sensor:000/attrs/temperature",
                json={"type": "Property", "value": 99},
            )
            assert after.status_code == 204
            await asyncio.sleep(1.0)
            assert len(received.entities()) == expected


async def test_a_write_acknowledged_before_kill_9_is_notified_once(
    store_url: str, tmp_path: Path, receiver: str, received: Received
) -> None:
    """The API process that acknowledged a write is killed before it could notify; the
    next process delivers the notification, once, and a later restart sends nothing again.
    The subscription, its receiverInfo and its status survive the restarts."""
    env = api_env(
        store_url,
        f"n{secrets.token_hex(4)}",
        CONTESTO_NOTIFICATION_LEASE_S=str(LEASE_S),
        CONTESTO_NOTIFICATION_TIMEOUT_S="2",
    )
    members = {
        "notification": {
            "endpoint": {
                "uri": receiver,
                "receiverInfo": [{"key": "X-Room", "value": "firenze"}],
            },
            "format": "keyValues",
        }
    }
    silent = ApiProcess(env | {"CONTESTO_NOTIFIER_ENABLED": "false"}, str(tmp_path / "a.log"))
    with silent:
        async with httpx.AsyncClient(base_url=silent.url, timeout=30) as http:
            created = await http.post(
                f"{API}/subscriptions", json=subscription(receiver, **members)
            )
            assert created.status_code == 201, created.text
            location = created.headers["Location"]
            written = await http.post(f"{API}/entities", json=sensor(7))
            assert written.status_code == 201, written.text
        silent.kill()
        assert received.entities() == []

    with ApiProcess(env, str(tmp_path / "b.log")) as restarted:
        notified = received.wait_for(1, timeout_s=20)
        assert [entity["id"] for entity in notified] == ["urn:ngsi-ld:Sensor:007"]
        async with httpx.AsyncClient(base_url=restarted.url, timeout=30) as http:
            await sent_once(http, location)  # the delivery is confirmed
        restarted.kill()

    with ApiProcess(env, str(tmp_path / "c.log")) as again:
        await asyncio.sleep(LEASE_S + 1.5)  # a claim left by the killed process has ended
        assert len(received.entities()) == 1
        async with httpx.AsyncClient(base_url=again.url, timeout=30) as http:
            stored = (await http.get(location)).json()
    endpoint = stored["notification"]["endpoint"]
    assert endpoint["receiverInfo"] == [{"key": "X-Room", "value": "firenze"}]
    assert stored["notification"]["timesSent"] == 1
    assert stored["notification"]["status"] == "ok"
