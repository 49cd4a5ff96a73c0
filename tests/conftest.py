"""Session fixtures of the integration tests: a store, the real broker on it, an HTTP client.

The store is the embedded one (SecantusDB in a child process), or the MongoDB server named
by CONTESTO_TEST_MONGO_URL. A server that cannot start fails the tests that need it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from _servers import ThreadedServer

from contesto import EmbeddedStore, EmbeddedStoreError
from contesto._mqtt_broker import MosquittoBroker, MqttBrokerError
from context_broker import BrokerSettings, create_app

NGSI_LD_PATH = "/ngsi-ld/v1"


@pytest.fixture(scope="session", autouse=True)
def no_local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Operator commands look for a running `contesto up` in CONTESTO_DATA_DIR (./var): the
    tests point it at an empty directory, so a `make run` beside them is never found."""
    previous = os.environ.get("CONTESTO_DATA_DIR")
    os.environ["CONTESTO_DATA_DIR"] = str(tmp_path_factory.mktemp("no-stack"))
    yield
    if previous is None:
        os.environ.pop("CONTESTO_DATA_DIR", None)
    else:
        os.environ["CONTESTO_DATA_DIR"] = previous


@pytest.fixture(scope="session")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A MongoDB connection string: CONTESTO_TEST_MONGO_URL, else an embedded store."""
    configured = os.environ.get("CONTESTO_TEST_MONGO_URL")
    if configured:
        yield configured
        return
    data_dir = tmp_path_factory.mktemp("store")
    store = EmbeddedStore(data_dir / "db", log_path=data_dir / "secantus.log")
    try:
        store.start()
    except EmbeddedStoreError as exc:
        pytest.fail(f"the embedded store did not start: {exc}", pytrace=False)
    try:
        yield store.url
    finally:
        store.stop()


@pytest.fixture(scope="session")
def mqtt_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The port of a real Mosquitto on loopback, with the stack's own configuration."""
    broker = MosquittoBroker(tmp_path_factory.mktemp("mqtt"))
    try:
        broker.start()
    except MqttBrokerError as exc:
        pytest.fail(f"Mosquitto did not start: {exc}", pytrace=False)
    try:
        yield broker.port
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def broker_settings(store_url: str) -> BrokerSettings:
    """Broker settings on the test store, with databases of this session only; @contexts
    may be fetched from the tests' own loopback servers."""
    return BrokerSettings(
        mongo_url=store_url,
        database_prefix=f"t{secrets.token_hex(4)}",
        context_fetch_allow="127.0.0.1",
    )


@pytest.fixture(scope="session")
def broker_url(broker_settings: BrokerSettings) -> Iterator[str]:
    """The real broker served by uvicorn on a free loopback port: `http://127.0.0.1:PORT`."""
    with ThreadedServer(create_app(broker_settings)) as server:
        yield server.url


@pytest.fixture
async def client(broker_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the broker's NGSI-LD API (`base_url` ends in /ngsi-ld/v1)."""
    async with httpx.AsyncClient(base_url=broker_url + NGSI_LD_PATH, timeout=30.0) as http:
        yield http
