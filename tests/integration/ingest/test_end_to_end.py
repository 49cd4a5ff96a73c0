"""MQTT message -> entity queried over HTTP, through real Mosquitto, store and broker API."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from conftest import Ingest

from contesto._demo import DEMO_DEVICES, DEMO_GROUPS
from sensor_ingest import AttributeMapping, Device, ServiceGroup, StaticAttribute

pytestmark = pytest.mark.integration

SAMPLES = Path(__file__).parents[2] / "unit" / "data" / "payload-samples"
FIRENZE = {"type": "Point", "coordinates": [11.2556, 43.7696]}

AIR = (
    AttributeMapping("t", "temperature", unit_code="CEL"),
    AttributeMapping("h", "relativeHumidity", scale=0.01),
    AttributeMapping("pm10", "pm10", unit_code="GQ"),
    AttributeMapping("pm25", "pm25", unit_code="GQ"),
    AttributeMapping("no2", "no2", unit_code="GQ"),
)
CODEC_AIR = (
    AttributeMapping("temperature", "temperature", unit_code="CEL"),
    AttributeMapping("humidity", "relativeHumidity", scale=0.01),
    AttributeMapping("pm10", "pm10", unit_code="GQ"),
    AttributeMapping("pm25", "pm25", unit_code="GQ"),
    AttributeMapping("no2", "no2", unit_code="GQ"),
)


def _sample(name: str) -> dict[str, object]:
    found: dict[str, object] = json.loads((SAMPLES / name).read_text())
    return found


async def _air_group(ingest: Ingest, key: str, *, fmt: str = "iotagent-json") -> None:
    await ingest.runtime.registry.put_group(
        ServiceGroup(
            tenant=ingest.tenant,
            format=fmt,  # type: ignore[arg-type]
            group=key,
            entity_type="AirQualityObserved",
            profile="toscana/AirQualityObserved",
            attributes=AIR if fmt == "iotagent-json" else CODEC_AIR,
            static_attributes=(StaticAttribute("location", "GeoProperty", FIRENZE),),
            explicit_attributes=True,
        )
    )


async def test_an_iot_agent_json_message_becomes_an_entity_in_its_tenant(ingest: Ingest) -> None:
    await _air_group(ingest, f"key-{ingest.tenant}")
    payload = {
        "t": 21.37,
        "h": 58.5,
        "pm10": 23.4,
        "pm25": 14.2,
        "no2": 31.8,
        "TimeInstant": "2026-11-23T08:15:00Z",
    }
    with ingest.publisher() as mqtt:
        mqtt.publish(f"/json/key-{ingest.tenant}/aq-1/attrs", orjson.dumps(payload))

    entity = await ingest.wait_for_entity("urn:ngsi-ld:AirQualityObserved:aq-1")

    assert entity["type"] == "AirQualityObserved"
    assert entity["temperature"] == {
        "type": "Property",
        "value": 21.37,
        "unitCode": "CEL",
        "observedAt": "2026-11-23T08:15:00.000Z",
    }
    assert entity["relativeHumidity"]["value"] == pytest.approx(0.585)
    assert entity["location"]["value"] == FIRENZE
    assert entity["dateObserved"]["value"] == {
        "@type": "DateTime",
        "@value": "2026-11-23T08:15:00.000Z",
    }
    other = await ingest.entity("urn:ngsi-ld:AirQualityObserved:aq-1", tenant="elsewhere")
    assert other.status_code == 404


async def test_a_things_stack_uplink_becomes_an_entity(ingest: Ingest) -> None:
    sample = _sample("tts-v3-uplink.json")
    app = f"app-{ingest.tenant}"
    message = sample["message"]
    assert isinstance(message, dict)
    message["end_device_ids"]["application_ids"]["application_id"] = app
    await _air_group(ingest, app, fmt="ttn-v3")
    with ingest.publisher() as mqtt:
        mqtt.publish(f"v3/{app}@ttn/devices/aq-fi-0001/up", orjson.dumps(message))

    entity = await ingest.wait_for_entity("urn:ngsi-ld:AirQualityObserved:aq-fi-0001")

    assert entity["pm10"]["value"] == 23.4
    assert entity["no2"]["unitCode"] == "GQ"
    assert entity["pm10"]["observedAt"].startswith("2026-11-23T08:15:02.512")


async def test_a_chirpstack_event_becomes_an_entity(ingest: Ingest) -> None:
    sample = _sample("chirpstack-v4-up.json")
    app = f"app-{ingest.tenant}"
    message = sample["message"]
    assert isinstance(message, dict)
    message["deviceInfo"]["applicationId"] = app
    await _air_group(ingest, app, fmt="chirpstack-v4")
    with ingest.publisher() as mqtt:
        mqtt.publish(f"application/{app}/device/a84041000181c2f1/event/up", orjson.dumps(message))

    entity = await ingest.wait_for_entity("urn:ngsi-ld:AirQualityObserved:a84041000181c2f1")

    assert entity["pm25"]["value"] == 14.2


async def test_bad_messages_go_to_dead_letter_with_the_reason_and_good_ones_go_on(
    ingest: Ingest,
) -> None:
    key = f"key-{ingest.tenant}"
    await _air_group(ingest, key)
    good = {"t": 20.0, "h": 50, "pm10": 10, "pm25": 5, "no2": 20}
    with ingest.publisher() as mqtt:
        mqtt.publish(f"/json/{key}/bad-json/attrs", b"{not json")
        mqtt.publish(f"/json/{key}/bad-value/attrs", orjson.dumps({**good, "pm10": -5}))
        mqtt.publish("/json/no-such-key/dev/attrs", orjson.dumps(good))
        mqtt.publish(f"/json/{key}/good/attrs", orjson.dumps(good))

    await ingest.wait_for_entity("urn:ngsi-ld:AirQualityObserved:good")
    letters = await ingest.wait_for_dead_letters(3)

    by_topic = {letter.message.topic: letter for letter in letters}
    assert by_topic[f"/json/{key}/bad-json/attrs"].rejection.reason == "undecodable"
    assert by_topic[f"/json/{key}/bad-json/attrs"].message.payload == b"{not json"
    invalid = by_topic[f"/json/{key}/bad-value/attrs"]
    assert invalid.rejection.reason == "invalid-entity"
    assert "pm10" in invalid.rejection.path
    assert invalid.tenant == ingest.tenant
    assert by_topic["/json/no-such-key/dev/attrs"].rejection.reason == "unknown-device"
    assert (await ingest.entity("urn:ngsi-ld:AirQualityObserved:bad-value")).status_code == 404


async def test_a_device_record_overrides_its_group(ingest: Ingest) -> None:
    key = f"key-{ingest.tenant}"
    await _air_group(ingest, key)
    await ingest.runtime.registry.put_device(
        Device(
            tenant=ingest.tenant,
            format="iotagent-json",
            group=key,
            device_id="station-7",
            entity_id="urn:ngsi-ld:AirQualityObserved:firenze-gramsci",
            attributes=(AttributeMapping("t", "temperature", unit_code="CEL", offset=-0.5),),
        )
    )
    with ingest.publisher() as mqtt:
        mqtt.publish(
            f"/{key}/station-7/attrs",
            orjson.dumps({"t": 20.0, "h": 50, "pm10": 10, "pm25": 5, "no2": 20}),
        )

    entity = await ingest.wait_for_entity("urn:ngsi-ld:AirQualityObserved:firenze-gramsci")

    assert entity["temperature"]["value"] == 19.5


async def test_redelivered_messages_leave_the_same_state(ingest: Ingest) -> None:
    key = f"key-{ingest.tenant}"
    await _air_group(ingest, key)
    first = {
        "t": 20.0,
        "h": 50,
        "pm10": 10,
        "pm25": 5,
        "no2": 20,
        "TimeInstant": "2026-11-23T08:00:00Z",
    }
    later = {**first, "t": 22.0, "TimeInstant": "2026-11-23T08:15:00Z"}
    topic = f"/json/{key}/twice/attrs"
    with ingest.publisher() as mqtt:
        for payload in (first, later, first, later):
            mqtt.publish(topic, orjson.dumps(payload))
    await ingest.wait_for_entity("urn:ngsi-ld:AirQualityObserved:twice")
    await ingest.wait_for_dead_letters(0)
    entity = await ingest.wait_for_entity("urn:ngsi-ld:AirQualityObserved:twice")

    assert entity["temperature"]["value"] == 22.0
    assert entity["temperature"]["observedAt"] == "2026-11-23T08:15:00.000Z"


README = Path(__file__).parents[3] / "README.md"


def _readme_sensor_steps() -> tuple[str, str, dict[str, object]]:
    """The README's mosquitto_pub command, its curl command and the answer it shows."""
    section = README.read_text().split("## From a sensor to an entity", 1)[1].split("\n## ")[0]
    publish, query = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    lines = query.splitlines()
    command = "\n".join(line for line in lines if not line.startswith("# "))
    answer = " ".join(line[2:] for line in lines if line.startswith("# "))
    return publish.strip(), command.strip(), json.loads(answer)


async def test_the_readme_sensor_walkthrough(ingest: Ingest, mqtt_port: int) -> None:
    for group in DEMO_GROUPS:
        await ingest.runtime.registry.put_group(replace(group, tenant=ingest.tenant))
    for device in DEMO_DEVICES:
        await ingest.runtime.registry.put_device(replace(device, tenant=ingest.tenant))
    publish, query, answer = _readme_sensor_steps()
    publish = publish.replace("-p 1883", f"-p {mqtt_port}")
    query = query.replace("http://127.0.0.1:1026", ingest.broker_url).replace(
        "NGSILD-Tenant: firenze", f"NGSILD-Tenant: {ingest.tenant}"
    )
    sent = subprocess.run(
        ["bash", "-c", publish], check=False, capture_output=True, text=True, timeout=30
    )
    assert sent.returncode == 0, sent.stderr
    for _ in range(100):
        got = subprocess.run(
            ["bash", "-c", query], check=False, capture_output=True, text=True, timeout=30
        )
        if got.stdout.startswith("{") and '"id"' in got.stdout:
            break
        await asyncio.sleep(0.2)
    assert json.loads(got.stdout) == answer
