"""Notifications over TLS (ETSI GS CIM 009 clause 5.8: the endpoint's URI scheme says how
to deliver; https and mqtts are HTTP and MQTT over TLS): delivered to an endpoint whose
certificate the broker trusts, refused by one it does not trust. The trusted authorities
are the system's, or those of the file in SSL_CERT_FILE (docs/broker.md, Notifications)."""

from __future__ import annotations

import asyncio
import getpass
import json
import secrets
import ssl
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import pytest
from _servers import ThreadedServer, wait_for_port
from paho.mqtt.enums import CallbackAPIVersion

from contesto._embedded import free_port
from contesto._mqtt_broker import find_mosquitto
from context_broker import BrokerSettings, create_app

from ._receiver import Receiver

WAIT_S = 10.0
_NEW_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


@dataclass(slots=True, frozen=True)
class Certificates:
    authority: Path
    certificate: Path
    key: Path


def _openssl(*arguments: str | Path) -> None:
    subprocess.run(["openssl", *map(str, arguments)], check=True, capture_output=True)


def _issue(directory: Path, name: str) -> Certificates:
    """A certificate authority of its own and a certificate it signed for 127.0.0.1."""
    authority, authority_key = directory / f"{name}-ca.pem", directory / f"{name}-ca.key"
    certificate, key = directory / f"{name}.pem", directory / f"{name}.key"
    request, extensions = directory / f"{name}.csr", directory / f"{name}.ext"
    _openssl(
        "req", "-x509", *_NEW_KEY, "-days", "2", "-subj", f"/CN={name} test authority",
        "-keyout", authority_key, "-out", authority,
    )  # fmt: skip
    _openssl(
        "req", *_NEW_KEY, "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", request,
    )  # fmt: skip
    extensions.write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl(
        "x509", "-req", "-in", request, "-CA", authority, "-CAkey", authority_key,
        "-CAcreateserial", "-days", "2", "-extfile", extensions, "-out", certificate,
    )  # fmt: skip
    return Certificates(authority, certificate, key)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Certificates, Certificates]:
    """The endpoints' certificates: one from an authority the broker trusts, one not."""
    directory = tmp_path_factory.mktemp("tls")
    return _issue(directory, "trusted"), _issue(directory, "unknown")


@contextmanager
def https_receiver(found: Receiver, certificates: Certificates) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), found.handler())
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates.certificate, certificates.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, name="tls-site", daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def tls_mosquitto(directory: Path, certificates: Certificates) -> Iterator[int]:
    executable = find_mosquitto()
    if executable is None:
        pytest.fail("Mosquitto is not installed (make venv installs it)", pytrace=False)
    port = free_port()
    config = directory / "mosquitto-tls.conf"
    config.write_text(
        f"user {getpass.getuser()}\n"  # who can read the key file
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        f"certfile {certificates.certificate}\n"
        f"keyfile {certificates.key}\n"
    )
    process = subprocess.Popen(
        [str(executable), "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port("127.0.0.1", port, 20.0)
        yield port
    finally:
        process.terminate()
        process.wait(10)


class TlsListener:
    """A paho subscriber over TLS: the bodies of the notifications published to a topic."""

    def __init__(self, port: int, topic: str, authority: Path) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        subscribed = threading.Event()
        client = paho.Client(CallbackAPIVersion.VERSION2)
        client.tls_set(ca_certs=str(authority))
        client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        client.on_subscribe = lambda *_: subscribed.set()
        client.on_message = self._received
        client.connect("127.0.0.1", port)
        client.loop_start()
        self.client = client
        if not subscribed.wait(10):
            self.close()
            pytest.fail("the test's MQTT subscriber did not subscribe over TLS")

    def _received(self, _c: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        with self.lock:
            self.bodies.append(json.loads(message.payload)["body"])

    async def wait_for(self, count: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + WAIT_S
        while len(self.bodies) < count:
            if time.monotonic() > deadline:
                pytest.fail(f"{len(self.bodies)} notifications over mqtts, expected {count}")
            await asyncio.sleep(0.02)
        with self.lock:
            return list(self.bodies)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@asynccontextmanager
async def trusting_broker(
    settings: BrokerSettings, authority: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    """A broker of its own that trusts `authority` (SSL_CERT_FILE), and a client on it;
    it gives a notification up after two attempts."""
    monkeypatch.setenv("SSL_CERT_FILE", str(authority))
    changed = settings.model_copy(
        update={
            "database_prefix": f"s{secrets.token_hex(4)}",
            "notification_max_attempts": 2,
            "notification_retry_base_s": 0.2,
        }
    )
    with ThreadedServer(create_app(changed)) as server:
        async with httpx.AsyncClient(
            base_url=server.url + "/ngsi-ld/v1", headers={"NGSILD-Tenant": "tls"}, timeout=30.0
        ) as http:
            yield http


async def subscribe(api: httpx.AsyncClient, uri: str) -> str:
    answer = await api.post(
        "/subscriptions",
        json={
            "type": "Subscription",
            "entities": [{"type": "Valve"}],
            "notification": {"endpoint": {"uri": uri}},
        },
    )
    assert answer.status_code == 201, answer.text
    return str(answer.headers["Location"].rsplit("/", 1)[1])


async def create_valve(api: httpx.AsyncClient, number: int) -> None:
    answer = await api.post(
        "/entities",
        json={
            "id": f"urn:ngsi-ld:Valve:{number}",
            "type": "Valve",
            "pressure": {"type": "Property", "value": 3.5},
        },
    )
    assert answer.status_code == 201, answer.text


async def status_when(api: httpx.AsyncClient, subscription_id: str, key: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while True:
        found = (await api.get(f"/subscriptions/{subscription_id}")).json()
        if found["notification"].get(key):
            return dict(found["notification"])
        if time.monotonic() > deadline:
            pytest.fail(f"{subscription_id} has no {key}: {found}")
        await asyncio.sleep(0.05)


async def test_https_endpoint_with_a_trusted_certificate_gets_the_notification(
    broker_settings: BrokerSettings,
    certificates: tuple[Certificates, Certificates],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trusted, _ = certificates
    found = Receiver()
    with https_receiver(found, trusted) as url:
        async with trusting_broker(broker_settings, trusted.authority, monkeypatch) as api:
            subscription_id = await subscribe(api, f"{url}/valves")
            await create_valve(api, 1)
            (arrival,) = await found.wait_for("/valves", 1)
            assert arrival.body["subscriptionId"] == subscription_id
            assert arrival.body["data"][0]["id"] == "urn:ngsi-ld:Valve:1"
            status = await status_when(api, subscription_id, "lastSuccess")
            assert status["timesSent"] == 1


async def test_https_endpoint_with_an_untrusted_certificate_is_a_failure(
    broker_settings: BrokerSettings,
    certificates: tuple[Certificates, Certificates],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trusted, unknown = certificates
    found = Receiver()
    with https_receiver(found, unknown) as url:
        async with trusting_broker(broker_settings, trusted.authority, monkeypatch) as api:
            subscription_id = await subscribe(api, f"{url}/valves")
            await create_valve(api, 2)
            status = await status_when(api, subscription_id, "lastFailure")
            assert status["status"] == "failed"
            assert found.at("/valves") == []


async def test_mqtts_endpoint_gets_the_notification(
    broker_settings: BrokerSettings,
    certificates: tuple[Certificates, Certificates],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    trusted, _ = certificates
    with tls_mosquitto(tmp_path, trusted) as port:
        listener = TlsListener(port, "valves/#", trusted.authority)
        try:
            async with trusting_broker(broker_settings, trusted.authority, monkeypatch) as api:
                subscription_id = await subscribe(api, f"mqtts://127.0.0.1:{port}/valves/all")
                await create_valve(api, 3)
                (body,) = await listener.wait_for(1)
                assert body["subscriptionId"] == subscription_id
                assert body["data"][0]["pressure"]["value"] == 3.5
        finally:
            listener.close()
