"""The README's "Be told of changes": a subscription with q=no2>40 in a comune's tenant, a
reading published over MQTT, and the notification printed by `contesto notifications
listen` and received on an MQTT topic, through the real Mosquitto, store, ingest and broker."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Ingest

from contesto._demo import DEMO_DEVICES, DEMO_GROUPS
from contesto._embedded import free_port

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[3] / "README.md"
SUBSCRIPTIONS = "/ngsi-ld/v1/subscriptions"


def readme_section() -> str:
    text = README.read_text(encoding="utf-8")
    return text.split("## Be told of changes", 1)[1].split("\n## ")[0]


def shell_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", readme_section(), flags=re.DOTALL)


def subscription_bodies() -> list[dict[str, Any]]:
    return [json.loads(body) for body in re.findall(r"-d '(.*?)'", readme_section(), re.DOTALL)]


def published(message: str) -> dict[str, Any]:
    found = re.search(r"-m '(.*?)'", message, re.DOTALL)
    assert found is not None
    payload: dict[str, Any] = json.loads(found[1])
    return payload


def expected_data() -> list[dict[str, Any]]:
    """The `data` of the notifications the README shows."""
    text = re.findall(r"```text\n(.*?)```", readme_section(), flags=re.DOTALL)[0]
    return [json.loads(found) for found in re.findall(r'"data":(\[\{.*?\}\])', text)]


async def states(ingest: Ingest) -> str:
    async with httpx.AsyncClient(timeout=30) as http:
        found = await http.get(
            ingest.broker_url + SUBSCRIPTIONS, headers={"NGSILD-Tenant": ingest.tenant}
        )
        entity = await ingest.entity("urn:ngsi-ld:AirQualityObserved:aq-fi-signoria")
    return f"{found.text}; the entity: {entity.text}"


def test_the_readme_shows_both_endpoints_and_the_reading() -> None:
    bodies = subscription_bodies()
    assert [body["q"] for body in bodies] == ["no2>40", "no2>40"]
    uris = [body["notification"]["endpoint"]["uri"] for body in bodies]
    assert uris == ["http://127.0.0.1:8080/notify", "mqtt://127.0.0.1:1883/firenze/alerts/no2"]
    assert "contesto notifications listen --port 8080" in shell_blocks()[0]
    assert published(shell_blocks()[2])["no2"] > 40


async def test_the_readme_notification_walkthrough(ingest: Ingest, mqtt_port: int) -> None:
    for group in DEMO_GROUPS:
        await ingest.runtime.registry.put_group(replace(group, tenant=ingest.tenant))
    for device in DEMO_DEVICES:
        await ingest.runtime.registry.put_device(replace(device, tenant=ingest.tenant))
    port = free_port()
    topic = f"{ingest.tenant}/alerts/no2"
    listener = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "contesto", "notifications", "listen", "--port", str(port),
        "--count", "1", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    watcher = await asyncio.create_subprocess_exec(
        "mosquitto_sub", "-h", "127.0.0.1", "-p", str(mqtt_port), "-t", topic, "-C", "1",
        "-W", "30", stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert listener.stderr is not None
        assert b"listening on" in await asyncio.wait_for(listener.stderr.readline(), 20)
        http_body, mqtt_body = subscription_bodies()
        http_body["notification"]["endpoint"]["uri"] = f"http://127.0.0.1:{port}/notify"
        mqtt_body["notification"]["endpoint"]["uri"] = f"mqtt://127.0.0.1:{mqtt_port}/{topic}"
        async with httpx.AsyncClient(timeout=30) as http:
            for body in (http_body, mqtt_body):
                created = await http.post(
                    ingest.broker_url + SUBSCRIPTIONS,
                    json=body,
                    headers={"NGSILD-Tenant": ingest.tenant},
                )
                assert created.status_code == 201, created.text
        await asyncio.sleep(0.5)  # mosquitto_sub has subscribed
        below = (
            shell_blocks()[2]
            .replace("47.5", "31.8")
            .replace("09:15", "09:10")
            .replace("-p 1883", f"-p {mqtt_port}")
        )
        above = shell_blocks()[2].replace("-p 1883", f"-p {mqtt_port}")
        for command in (below, above):  # the first tells no one
            sent = subprocess.run(
                ["bash", "-c", command], check=False, capture_output=True, timeout=30
            )
            assert sent.returncode == 0, sent.stderr
        try:
            printed, _ = await asyncio.wait_for(listener.communicate(), 30)
            received, _ = await asyncio.wait_for(watcher.communicate(), 35)
        except TimeoutError:
            pytest.fail(f"not notified; the subscriptions say: {await states(ingest)}")
    finally:
        for process in (listener, watcher):
            if process.returncode is None:
                process.kill()
                await process.wait()
    notification = json.loads(printed)
    assert notification["type"] == "Notification"
    mqtt_message = json.loads(received)
    assert mqtt_message["metadata"]["Content-Type"] == "application/json"
    assert [notification["data"], mqtt_message["body"]["data"]] == expected_data()
