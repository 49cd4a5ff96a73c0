"""Notifications end to end (clause 5.11): subscriptions made through the API, entities
written through the API, and what a real HTTP receiver on loopback (or a real Mosquitto)
gets: triggers, formats, headers, status, retries, isolation of endpoints, throttling,
periodic subscriptions, pause, expiry and deletion."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import paho.mqtt.client as paho
import pytest
from _servers import ThreadedServer
from paho.mqtt.enums import CallbackAPIVersion

from context_broker import BrokerSettings, create_app

from ._receiver import Receiver

pytestmark = pytest.mark.integration

API = "/ngsi-ld/v1"
WAIT_S = 10.0


def subscription(uri: str, **members: Any) -> dict[str, Any]:
    notification = {"endpoint": {"uri": uri}} | members.pop("notification", {})
    body: dict[str, Any] = {
        "type": "Subscription",
        "entities": [{"type": "Room"}],
        "notification": notification,
    }
    return body | members


async def subscribe(api: httpx.AsyncClient, body: dict[str, Any]) -> str:
    answer = await api.post("/subscriptions", json=body)
    assert answer.status_code == 201, answer.text
    return str(answer.headers["Location"].rsplit("/", 1)[1])


def room(number: int, temperature: float = 20.0) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Room:{number}",
        "type": "Room",
        "temperature": {"type": "Property", "value": temperature},
    }


async def create(api: httpx.AsyncClient, entity: dict[str, Any]) -> None:
    answer = await api.post("/entities", json=entity)
    assert answer.status_code == 201, answer.text


async def set_temperature(api: httpx.AsyncClient, number: int, value: float) -> None:
    answer = await api.patch(
        f"/entities/urn:ngsi-ld:Room:{number}/attrs",
        json={"temperature": {"type": "Property", "value": value}},
    )
    assert answer.status_code == 204, answer.text


async def status_of(api: httpx.AsyncClient, subscription_id: str) -> dict[str, Any]:
    answer = await api.get(f"/subscriptions/{subscription_id}")
    assert answer.status_code == 200, answer.text
    notification: dict[str, Any] = answer.json()["notification"]
    return notification


async def wait_status(
    api: httpx.AsyncClient, subscription_id: str, holds: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while True:
        found = await status_of(api, subscription_id)
        if holds(found):
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"status of {subscription_id} never held: {found}")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def own_broker(
    settings: BrokerSettings, tenant: str, **changes: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A broker of its own settings (and databases), and a client on it."""
    changed = settings.model_copy(update={"database_prefix": f"n{secrets.token_hex(4)}", **changes})
    with ThreadedServer(create_app(changed)) as server:
        async with httpx.AsyncClient(
            base_url=server.url + API, headers={"NGSILD-Tenant": tenant}, timeout=30.0
        ) as http:
            yield http


# --- triggers, formats, headers ------------------------------------------------------------


async def test_created_updated_deleted_each_notified_with_status(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    triggers = ["entityCreated", "attributeUpdated", "entityDeleted"]
    sub = await subscribe(api, subscription(receiver.url + "/all", notificationTrigger=triggers))
    await create(api, room(1, 20.0))
    first = (await receiver.wait_for("/all", 1))[0]
    assert first.body["type"] == "Notification"
    assert first.body["subscriptionId"] == sub
    assert first.body["data"][0]["id"] == "urn:ngsi-ld:Room:1"
    assert first.body["data"][0]["temperature"]["value"] == 20.0
    assert first.headers["Content-Type"] == "application/json"
    assert 'rel="http://www.w3.org/ns/json-ld#context"' in first.headers["Link"]
    assert "@context" not in first.body

    await set_temperature(api, 1, 21.5)
    second = (await receiver.wait_for("/all", 2))[1]
    assert second.body["data"][0]["temperature"]["value"] == 21.5

    gone = await api.delete("/entities/urn:ngsi-ld:Room:1")
    assert gone.status_code == 204
    third = (await receiver.wait_for("/all", 3))[2]
    assert third.body["data"][0]["id"] == "urn:ngsi-ld:Room:1"
    assert "temperature" not in third.body["data"][0]

    status = await wait_status(api, sub, lambda s: s["timesSent"] == 3)
    assert status["status"] == "ok"
    assert status["timesFailed"] == 0
    assert "lastSuccess" in status
    assert status["lastNotification"] == status["lastSuccess"]
    assert "lastFailure" not in status


async def test_formats_normalized_key_values_concise(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    for shape in ("normalized", "keyValues", "concise"):
        await subscribe(
            api,
            subscription(
                f"{receiver.url}/{shape}",
                notificationTrigger=["entityCreated"],
                notification={"format": shape},
            ),
        )
    await create(api, room(2, 19.0))
    normalized = (await receiver.wait_for("/normalized", 1))[0].body["data"][0]
    key_values = (await receiver.wait_for("/keyValues", 1))[0].body["data"][0]
    concise = (await receiver.wait_for("/concise", 1))[0].body["data"][0]
    assert normalized["temperature"] == {"type": "Property", "value": 19.0}
    assert key_values["temperature"] == 19.0
    assert concise["temperature"] in (19.0, {"value": 19.0})
    assert concise["type"] == key_values["type"] == normalized["type"] == "Room"


async def test_ld_json_body_receiver_info_and_show_changes(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    await create(api, room(3, 18.0))
    await subscribe(
        api,
        subscription(
            receiver.url + "/ld",
            watchedAttributes=["temperature"],
            notification={
                "showChanges": True,
                "endpoint": {
                    "uri": receiver.url + "/ld",
                    "accept": "application/ld+json",
                    "receiverInfo": [
                        {"key": "X-Auth-Token", "value": "s3cret"},
                        {"key": "Fiware-Service", "value": "prato"},
                    ],
                },
            },
        ),
    )
    await set_temperature(api, 3, 22.0)
    arrival = (await receiver.wait_for("/ld", 1))[0]
    assert arrival.headers["Content-Type"] == "application/ld+json"
    assert "Link" not in arrival.headers
    assert "@context" in arrival.body
    assert arrival.headers["X-Auth-Token"] == "s3cret"
    assert arrival.headers["Fiware-Service"] == "prato"
    temperature = arrival.body["data"][0]["temperature"]
    assert temperature["value"] == 22.0
    assert temperature["previousValue"] == 18.0


# --- failures and retries ------------------------------------------------------------------


async def test_refused_4xx_is_a_failure_and_not_retried(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.statuses["/refuses"] = [400]
    sub = await subscribe(api, subscription(receiver.url + "/refuses"))
    control = await subscribe(api, subscription(receiver.url + "/control"))
    await create(api, room(4))  # attributeCreated
    await set_temperature(api, 4, 25.0)
    status = await wait_status(api, sub, lambda s: s["timesFailed"] == 2)
    assert status["status"] == "failed"
    assert status["timesSent"] == 0
    assert "lastFailure" in status and "lastSuccess" not in status
    # A later notification of another subscription is delivered; the refused ones never again.
    await set_temperature(api, 4, 26.0)
    await receiver.wait_for("/control", 3)
    await wait_status(api, control, lambda s: s["timesSent"] == 3)
    await wait_status(api, sub, lambda s: s["timesFailed"] == 3)
    await asyncio.sleep(0.3)
    assert len(receiver.at("/refuses")) == 3  # each notification once


async def test_server_error_is_retried_until_delivered(
    broker_settings: BrokerSettings, tenant: str, receiver: Receiver
) -> None:
    receiver.statuses["/flaky"] = [500, 503, 204]
    async with own_broker(broker_settings, tenant, notification_retry_base_s=0.05) as api:
        sub = await subscribe(api, subscription(receiver.url + "/flaky"))
        await create(api, room(5))
        arrivals = await receiver.wait_for("/flaky", 3)
        assert len({arrival.body["id"] for arrival in arrivals}) == 1  # one notification
        status = await wait_status(api, sub, lambda s: s["timesSent"] == 1)
        assert status["timesFailed"] == 0
        assert status["status"] == "ok"


async def test_a_retry_resends_only_what_was_not_delivered(
    broker_settings: BrokerSettings, tenant: str, receiver: Receiver
) -> None:
    """One write notifies two subscriptions of one endpoint (queued together, as one record,
    docs/architecture.md "Notifications"); the endpoint fails the first POST: only that
    notification is sent again, the other one arrives once (clause 5.11)."""
    receiver.statuses["/shared"] = [503, 204]
    async with own_broker(broker_settings, tenant, notification_retry_base_s=0.05) as api:
        first = await subscribe(api, subscription(receiver.url + "/shared"))
        second = await subscribe(api, subscription(receiver.url + "/shared"))
        await create(api, room(6))
        arrivals = await receiver.wait_for("/shared", 3)
        for each in (first, second):
            status = await wait_status(api, each, lambda s: s["timesSent"] == 1)
            assert status["timesFailed"] == 0
        await asyncio.sleep(0.5)
        posted = [arrival.body["subscriptionId"] for arrival in receiver.at("/shared")]
        assert sorted(posted.count(each) for each in (first, second)) == [1, 2]
        assert len(posted) == 3
        assert len({arrival.body["id"] for arrival in arrivals}) == 2


async def test_a_stopping_broker_gives_back_only_what_it_did_not_send(
    broker_settings: BrokerSettings, tenant: str, receiver: Receiver
) -> None:
    """A broker stops while one of a write's two notifications to one endpoint is being
    sent and the other waits: the one sent is not sent again by the next broker, the other
    is sent by it (clause 5.11; docs/broker.md, nothing acknowledged is lost)."""
    receiver.delays["/one-at-a-time"] = 1.0
    changed = broker_settings.model_copy(
        update={"database_prefix": f"n{secrets.token_hex(4)}", "notification_endpoint_in_flight": 1}
    )
    with ThreadedServer(create_app(changed)) as server:
        async with httpx.AsyncClient(
            base_url=server.url + API, headers={"NGSILD-Tenant": tenant}, timeout=30.0
        ) as api:
            subscribed = [
                await subscribe(api, subscription(receiver.url + "/one-at-a-time"))
                for _ in range(2)
            ]
            await create(api, room(8))
            await receiver.wait_for("/one-at-a-time", 1)
    assert len(receiver.at("/one-at-a-time")) == 1
    with ThreadedServer(create_app(changed)):
        await receiver.wait_for("/one-at-a-time", 2)
        await asyncio.sleep(1.5)
    posted = [arrival.body["subscriptionId"] for arrival in receiver.at("/one-at-a-time")]
    assert sorted(posted) == sorted(subscribed)


async def test_gives_up_after_max_attempts(
    broker_settings: BrokerSettings, tenant: str, receiver: Receiver
) -> None:
    receiver.statuses["/down"] = [502]
    async with own_broker(
        broker_settings, tenant, notification_retry_base_s=0.02, notification_max_attempts=3
    ) as api:
        sub = await subscribe(api, subscription(receiver.url + "/down"))
        await create(api, room(6))
        status = await wait_status(api, sub, lambda s: s["timesFailed"] == 1)
        assert status["status"] == "failed"
        assert len(receiver.at("/down")) == 3


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_dead_and_slow_endpoints_do_not_delay_a_live_one(
    broker_settings: BrokerSettings, tenant: str, receiver: Receiver
) -> None:
    receiver.delays["/slow"] = 2.0
    async with own_broker(
        broker_settings,
        tenant,
        notification_timeout_s=3.0,
        notification_max_attempts=1,
        notification_endpoint_in_flight=1,
    ) as api:
        await subscribe(api, subscription(f"http://127.0.0.1:{closed_port()}/dead"))
        await subscribe(api, subscription(receiver.url + "/slow"))
        await subscribe(api, subscription(receiver.url + "/live"))
        await create(api, room(7))
        started = time.monotonic()
        for value in range(5):
            await set_temperature(api, 7, float(value))
        await receiver.wait_for("/live", 6, timeout_s=1.5)
        assert time.monotonic() - started < 1.5
        assert len(receiver.at("/slow")) <= 1  # one at a time, each taking 2 s


async def test_two_notifiers_on_one_queue_send_each_notification_once(
    broker_settings: BrokerSettings, tenant: str, receiver: Receiver
) -> None:
    shared = broker_settings.model_copy(update={"database_prefix": f"n{secrets.token_hex(4)}"})
    with ThreadedServer(create_app(shared)) as one, ThreadedServer(create_app(shared)) as two:
        clients = [
            httpx.AsyncClient(base_url=server.url + API, headers={"NGSILD-Tenant": tenant})
            for server in (one, two)
        ]
        try:
            await subscribe(clients[0], subscription(receiver.url + "/once"))
            for number in range(20):
                await create(clients[number % 2], room(100 + number))
            arrivals = await receiver.wait_for("/once", 20)
            await asyncio.sleep(0.5)  # both notifiers polled again: nothing more comes
            arrivals = receiver.at("/once")
            ids = sorted(arrival.body["data"][0]["id"] for arrival in arrivals)
            assert ids == sorted(f"urn:ngsi-ld:Room:{100 + n}" for n in range(20))
        finally:
            for client in clients:
                await client.aclose()


# --- throttling, periodic, pause, expiry, deletion -----------------------------------------


async def test_throttling_drops_notifications_that_come_too_soon(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    sub = await subscribe(api, subscription(receiver.url + "/throttled", throttling=1))
    await subscribe(api, subscription(receiver.url + "/control"))
    await create(api, room(8))
    await receiver.wait_for("/throttled", 1)
    first_seen = time.monotonic()  # after the first was sent, however long that took
    for value in range(3):
        await set_temperature(api, 8, float(value))
    await receiver.wait_for("/control", 4)
    await wait_status(api, sub, lambda s: s["timesSent"] == 1)
    assert len(receiver.at("/throttled")) == 1
    await asyncio.sleep(max(0.0, 1.2 - (time.monotonic() - first_seen)))
    await set_temperature(api, 8, 10.0)
    later = await receiver.wait_for("/throttled", 2)
    assert later[1].body["data"][0]["temperature"]["value"] == 10.0


async def test_time_interval_notifies_periodically(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    await create(api, room(9, 17.0))
    await create(api, room(10, 16.0))
    body = subscription(receiver.url + "/periodic", timeInterval=1)
    body["entities"] = [{"id": "urn:ngsi-ld:Room:9", "type": "Room"}]
    sub = await subscribe(api, body)
    try:
        arrivals = await receiver.wait_for("/periodic", 2, timeout_s=5.0)
        for arrival in arrivals:
            assert [entity["id"] for entity in arrival.body["data"]] == ["urn:ngsi-ld:Room:9"]
        first, second = (
            datetime.fromisoformat(arrival.body["notifiedAt"]) for arrival in arrivals[:2]
        )
        assert second - first >= timedelta(seconds=0.9)
    finally:
        assert (await api.delete(f"/subscriptions/{sub}")).status_code == 204


async def test_pause_stops_and_resume_restarts(api: httpx.AsyncClient, receiver: Receiver) -> None:
    sub = await subscribe(api, subscription(receiver.url + "/paused"))
    await subscribe(api, subscription(receiver.url + "/control"))
    await create(api, room(11))
    await set_temperature(api, 11, 1.0)
    await receiver.wait_for("/paused", 2)  # created (attributeCreated) and updated
    paused = await api.patch(f"/subscriptions/{sub}", json={"isActive": False})
    assert paused.status_code == 204, paused.text
    assert (await status_of(api, sub))["endpoint"]["uri"].endswith("/paused")
    await set_temperature(api, 11, 2.0)
    await receiver.wait_for("/control", 3)
    resumed = await api.patch(f"/subscriptions/{sub}", json={"isActive": True})
    assert resumed.status_code == 204, resumed.text
    await set_temperature(api, 11, 3.0)
    arrivals = await receiver.wait_for("/paused", 3)
    await receiver.wait_for("/control", 4)
    assert len(receiver.at("/paused")) == 3
    assert arrivals[2].body["data"][0]["temperature"]["value"] == 3.0


async def test_expired_and_deleted_subscriptions_are_not_notified(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=1)
    await subscribe(api, subscription(receiver.url + "/expired", expiresAt=expires.isoformat()))
    deleted = await subscribe(api, subscription(receiver.url + "/deleted"))
    await subscribe(api, subscription(receiver.url + "/control"))
    assert (await api.delete(f"/subscriptions/{deleted}")).status_code == 204
    await asyncio.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds() + 0.05))
    await create(api, room(12))
    await set_temperature(api, 12, 5.0)
    await receiver.wait_for("/control", 2)
    await asyncio.sleep(0.2)
    assert receiver.at("/expired") == []
    assert receiver.at("/deleted") == []


# --- MQTT ----------------------------------------------------------------------------------


class MqttListener:
    """A paho subscriber on the test's Mosquitto: the messages of one topic filter."""

    def __init__(self, port: int, topic: str) -> None:
        self.messages: list[tuple[str, int, dict[str, Any]]] = []
        self.lock = threading.Lock()
        subscribed = threading.Event()
        client = paho.Client(CallbackAPIVersion.VERSION2)

        def on_connect(c: paho.Client, *_: Any) -> None:
            c.subscribe(topic, qos=2)

        def on_subscribe(*_: Any) -> None:
            subscribed.set()

        def on_message(_c: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
            with self.lock:
                self.messages.append((message.topic, message.qos, json.loads(message.payload)))

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        client.connect("127.0.0.1", port)
        client.loop_start()
        self.client = client
        if not subscribed.wait(10):
            self.close()
            pytest.fail("the test's MQTT subscriber did not subscribe")

    async def wait_for(self, count: int) -> list[tuple[str, int, dict[str, Any]]]:
        deadline = time.monotonic() + WAIT_S
        while True:
            with self.lock:
                if len(self.messages) >= count:
                    return sorted(self.messages, key=lambda m: m[0])
            if time.monotonic() > deadline:
                pytest.fail(f"{len(self.messages)} MQTT notifications, expected {count}")
            await asyncio.sleep(0.02)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def test_mqtt_endpoints_get_metadata_and_body(
    api: httpx.AsyncClient, mqtt_port: int, tenant: str
) -> None:
    listener = MqttListener(mqtt_port, f"contesto/{tenant}/#")
    try:
        v3 = await subscribe(
            api,
            subscription(
                f"mqtt://127.0.0.1:{mqtt_port}/contesto/{tenant}/a",
                notification={
                    "endpoint": {
                        "uri": f"mqtt://127.0.0.1:{mqtt_port}/contesto/{tenant}/a",
                        "receiverInfo": [{"key": "X-Note", "value": "hello"}],
                    }
                },
            ),
        )
        await subscribe(
            api,
            subscription(
                f"mqtt://127.0.0.1:{mqtt_port}/contesto/{tenant}/b",
                notification={
                    "endpoint": {
                        "uri": f"mqtt://127.0.0.1:{mqtt_port}/contesto/{tenant}/b",
                        "notifierInfo": [
                            {"key": "MQTT-Version", "value": "mqtt5.0"},
                            {"key": "MQTT-QoS", "value": "1"},
                        ],
                    }
                },
            ),
        )
        await create(api, room(13, 12.5))
        (topic_a, qos_a, a), (topic_b, qos_b, b) = await listener.wait_for(2)
        assert (topic_a, qos_a) == (f"contesto/{tenant}/a", 0)
        assert (topic_b, qos_b) == (f"contesto/{tenant}/b", 1)
        assert a["metadata"]["Content-Type"] == "application/json"
        assert "Link" in a["metadata"]
        assert a["metadata"]["X-Note"] == "hello"
        assert a["body"]["type"] == "Notification"
        assert a["body"]["subscriptionId"] == v3
        assert a["body"]["data"][0]["temperature"]["value"] == 12.5
        assert b["body"]["data"][0]["id"] == "urn:ngsi-ld:Room:13"
        await wait_status(api, v3, lambda s: s["timesSent"] == 1)
    finally:
        listener.close()
