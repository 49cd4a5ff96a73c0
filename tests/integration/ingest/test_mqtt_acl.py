"""Mosquitto access lists from the registry: a group publishes only on its own topics."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import pytest
from typer.testing import CliRunner

from contesto._cli import app
from contesto._mqtt_broker import MosquittoBroker
from sensor_ingest import DeviceRegistry, ServiceGroup
from sensor_ingest._mqtt import MqttError, MqttFeed, MqttOptions, MqttPublisher
from store_edge import connect

pytestmark = pytest.mark.integration


async def test_each_group_publishes_only_on_its_own_topics(store_url: str, tmp_path: Path) -> None:
    database = f"acl_{secrets.token_hex(4)}"
    client = connect(store_url)
    try:
        registry = DeviceRegistry(client[database])
        await registry.ensure_indexes()
        for tenant, key in (("firenze", "fi-key"), ("prato", "po-key")):
            await registry.put_group(
                ServiceGroup(tenant=tenant, format="iotagent-json", group=key, entity_type="X")
            )
    finally:
        await client.close()
    access = tmp_path / "access"
    result = await asyncio.to_thread(
        CliRunner().invoke,
        app,
        [
            "devices",
            "mqtt-acl",
            "--out",
            str(access),
            "--mongo-url",
            store_url,
            "--database",
            database,
        ],
    )
    assert result.exit_code == 0, result.output
    credentials = dict(
        line.split(":", 1) for line in (access / "credentials").read_text().splitlines()
    )
    assert set(credentials) == {
        "contesto-ingest",
        "firenze.iotagent-json.fi-key",
        "prato.iotagent-json.po-key",
    }
    assert (access / "credentials").stat().st_mode & 0o777 == 0o600

    broker = MosquittoBroker(tmp_path / "mqtt")
    broker.access = access
    with broker:
        port = broker.port

        def as_user(user: str) -> MqttOptions:
            return MqttOptions(port=port, username=user, password=credentials[user])

        listener = MqttOptions(
            port=port,
            username="contesto-ingest",
            password=credentials["contesto-ingest"],
            client_id=f"acl-{secrets.token_hex(4)}",
            shared_group=None,
            persistent=False,
            session_expiry_s=0,
        )
        async with MqttFeed(listener, ("/+/+/attrs",)) as feed:
            with MqttPublisher(as_user("firenze.iotagent-json.fi-key")) as firenze:
                firenze.publish("/fi-key/dev/attrs", b'{"t": 1}')
                firenze.publish("/po-key/dev/attrs", b'{"t": "forged"}')
            await asyncio.sleep(0.5)
            got = await feed.next_batch(max_wait_s=0.2, idle_timeout_s=2)
            feed.acknowledge(got)
        with pytest.raises(MqttError), MqttPublisher(MqttOptions(port=port)) as anonymous:
            anonymous.publish("/fi-key/dev/attrs", b"{}")
    assert [d.message.topic for d in got] == ["/fi-key/dev/attrs"]
