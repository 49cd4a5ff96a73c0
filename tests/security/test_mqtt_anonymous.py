"""MQTT is closed to strangers in the regional profile: the stack's Mosquitto refuses
anonymous clients, each device group publishes with its own login, and ingest keeps the
logins in step with the registry."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from conftest_mqtt import (
    air_group,
    get_entity,
    publishing_to,
    running_ingest,
    suffix,
    wait_for_entity,
)

from contesto._embedded import free_port
from contesto._mqtt_access import MqttAccessFiles
from contesto._settings import StackSettings
from contesto._stack_mqtt import local_mqtt
from context_broker import BrokerSettings
from sensor_ingest import IngestSettings, ServiceGroup
from sensor_ingest._mqtt import MqttError, MqttFeed, MqttOptions, MqttPublisher
from sensor_ingest._mqtt_acl import group_user, mosquitto_access

pytestmark = pytest.mark.integration


async def _login_of(access: Path, group: ServiceGroup, port: int) -> MqttOptions:
    """The group's login, once ingest wrote it and Mosquitto reloaded its files."""
    user = group_user(group)
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        password = MqttAccessFiles(access).passwords().get(user)
        if password is not None:
            options = MqttOptions(port=port, username=user, password=password)
            try:
                with MqttPublisher(options):
                    return options
            except MqttError:
                pass
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no working MQTT login for {user} after 20 s")
        await asyncio.sleep(0.2)


async def _anonymous_spy(port: int) -> tuple[MqttFeed | None, str]:
    """An anonymous subscription to `#`: the feed, or why the broker refused it."""
    spy = MqttFeed(
        MqttOptions(
            port=port,
            client_id=f"spy-{suffix()}",
            shared_group=None,
            persistent=False,
            session_expiry_s=0,
        ),
        ("#",),
    )
    try:
        await spy.start(timeout_s=5)
    except MqttError as exc:
        return None, str(exc)
    return spy, ""


async def test_an_anonymous_client_neither_writes_into_prato_nor_reads_everything(
    store_url: str, broker_url: str, broker_settings: BrokerSettings, tmp_path: Path
) -> None:
    stack = StackSettings(auth_required=True, data_dir=tmp_path, mqtt_port=free_port("127.0.0.1"))
    local = local_mqtt(stack)
    assert local.credentials is not None and local.access is not None
    access, pid_file = local.access
    assert (access / "credentials").stat().st_mode & 0o777 == 0o600
    database = f"anon_{suffix()}"
    with local.broker:
        port = local.broker.port
        username, password = local.credentials
        ingest = IngestSettings(
            mongo_url=store_url,
            pipeline_database=database,
            mqtt_port=port,
            mqtt_username=username,
            mqtt_password=password,
            mqtt_client_id=f"anon-{suffix()}",
            mqtt_shared_group=f"g{suffix()}",
            mqtt_access_dir=access,
            mqtt_broker_pid_file=pid_file,
        )
        ingest = publishing_to(ingest, broker_url, broker_settings.database_prefix)
        async with running_ingest(ingest) as runtime:
            prato = air_group("prato", f"po-{suffix()}")
            await runtime.registry.put_group(prato)
            await runtime.registry.put_group(replace(prato, format="ttn-v3", group="po-lora"))
            login = await _login_of(access, prato, port)
            topic = f"/json/{prato.group}/{{}}/attrs"
            device = f"station-{suffix()}"
            with MqttPublisher(login) as sensor:
                sensor.publish(topic.format(device), orjson.dumps({"t": 1}))
            await wait_for_entity(broker_url, "prato", f"urn:ngsi-ld:Thermometer:{device}")

            spy, spy_refused = await _anonymous_spy(port)
            intruder = f"intruder-{suffix()}"
            try:
                with MqttPublisher(MqttOptions(port=port)) as anonymous:
                    anonymous.publish(topic.format(intruder), orjson.dumps({"t": 666}))
                    anonymous.publish(topic.format(device), orjson.dumps({"t": 666}))
                publish_refused = ""
            except MqttError as exc:
                publish_refused = str(exc)
            # A later message of Prato's sensor arrives: what came before it was handled.
            with MqttPublisher(login) as sensor:
                sensor.publish(topic.format(device), orjson.dumps({"t": 2}))
            deadline = asyncio.get_running_loop().time() + 20
            while True:
                entity = await wait_for_entity(
                    broker_url, "prato", f"urn:ngsi-ld:Thermometer:{device}"
                )
                if entity["temperature"]["value"] != 1:
                    break
                assert asyncio.get_running_loop().time() < deadline, "the sensor's 2 never came"
                await asyncio.sleep(0.1)
            spied = []
            if spy is not None:
                spied = await spy.next_batch(max_wait_s=0.1, idle_timeout_s=0.5)
                await spy.stop()
            dead = await runtime.dead_letters.recent()
            forged = await get_entity(broker_url, "prato", f"urn:ngsi-ld:Thermometer:{intruder}")
    assert entity["temperature"]["value"] == 2
    assert "Error" not in local.broker.log_path.read_text(), "Mosquitto took every ACL line"
    assert forged.status_code == 404
    assert dead == []
    assert "Not authorized" in publish_refused
    assert spied == [], f"an anonymous client read {[d.message.topic for d in spied]}"
    assert "Not authorized" in spy_refused


def test_the_access_files_keep_given_passwords_and_change_only_with_the_groups(
    tmp_path: Path,
) -> None:
    files = MqttAccessFiles(tmp_path / "access")
    ingest_user, ingest_password = files.ingest_credentials()
    prato = air_group("prato", "po-key")
    assert files.write([prato])
    given = files.passwords()
    assert not files.write([prato]), "same groups: nothing to reload"
    assert files.write([prato, air_group("livorno", "li-key")])
    now = files.passwords()
    assert now[group_user(prato)] == given[group_user(prato)]
    assert now[ingest_user] == ingest_password
    assert "livorno.iotagent-json.li-key" in now
    assert files.write([air_group("livorno", "li-key")])
    assert group_user(prato) not in files.passwords(), "a deleted group loses its login"
    for name in ("credentials", "passwd", "acl"):
        assert (files.directory / name).stat().st_mode & 0o777 == 0o600


def test_a_group_key_that_is_no_topic_level_gets_no_login() -> None:
    access = mosquitto_access(
        [air_group("prato", "po-key"), air_group("pisa", "#"), air_group("lucca", "a/+")],
        "contesto-ingest",
    )
    assert list(access.users) == ["prato.iotagent-json.po-key"]
    assert "topic write /#" not in access.acl
    assert "topic write /a/+" not in access.acl
