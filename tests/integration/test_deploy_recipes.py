"""The production recipe's commands, run as deploy/compose.yaml runs them, over the real
store and Mosquitto: the API and ingest as separate services, Mosquitto with the recipe's
configuration and its access files kept in step with the device registry.

Docker is not needed: each service's command and environment are read from the compose
file and run here, with only the addresses (and, for the demo devices, the dev profile's
tenant auto-creation) changed.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from _servers import wait_for_port

from contesto._demo import DEMO_DEVICES, DEMO_GROUPS
from sensor_ingest import DeviceRegistry, MqttError, MqttOptions
from sensor_ingest._mqtt import MqttPublisher
from sensor_ingest._mqtt_acl import group_user
from store_edge import connect

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
INGEST_PASSWORD = secrets.token_hex(12)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _compose_service(name: str) -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    return dict(services[name])


@contextmanager
def _process(
    command: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A service of the recipe as a child process, stopped by SIGTERM as Docker stops it."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CONTESTO_")}
    # `contesto` of this checkout, and mosquitto / mosquitto_passwd where Debian puts them.
    path = os.pathsep.join([str(Path(sys.executable).parent), base.get("PATH", ""), "/usr/sbin"])
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            env=base | {"PATH": path} | env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _wait(condition: Any, what: str, log: Path, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise AssertionError(f"{what} within {timeout_s} s; {log.name}:\n{tail}")
        time.sleep(0.2)


def _can_log_in(port: int, user: str | None, password: str | None) -> bool:
    options = MqttOptions(port=port, username=user, password=password)
    try:
        with MqttPublisher(options, client_id=f"probe-{secrets.token_hex(4)}"):
            return True
    except MqttError:
        return False


def _healthcheck(*args: str) -> int:
    command = [sys.executable, str(DEPLOY / "healthcheck.py"), *args]
    return subprocess.run(command, check=False, timeout=20).returncode


@pytest.fixture(scope="module")
def recipe(store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Mosquitto, its access service, the API and ingest, each as the compose file runs it."""
    tmp_path = tmp_path_factory.mktemp("recipe")
    pipeline_database = f"ingest_{secrets.token_hex(4)}"
    prefix = f"d{secrets.token_hex(4)}"
    access, data = tmp_path / "access", tmp_path / "data"
    data.mkdir()
    mqtt_port, api_port, provisioning_port = _free_port(), _free_port(), _free_port()

    async def provision() -> None:
        client = connect(store_url)
        try:
            registry = DeviceRegistry(client[pipeline_database])
            await registry.ensure_indexes()
            for group in DEMO_GROUPS:
                await registry.put_group(group)
            for device in DEMO_DEVICES:
                await registry.put_device(device)
        finally:
            await client.close()

    asyncio.run(provision())

    config = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    config = config.replace("listener 1883", f"listener {mqtt_port} 127.0.0.1")
    config = config.replace("/mosquitto/access", str(access))
    config = config.replace("/mosquitto/data/", f"{data}/")
    # The image's Mosquitto drops root for its own user; here, run as whoever runs the tests.
    (tmp_path / "mosquitto.conf").write_text(f"user {getpass.getuser()}\n{config}")

    store = {"CONTESTO_MONGO_URL": store_url, "CONTESTO_DATABASE_PREFIX": prefix}
    # The demo devices' tenants are not onboarded: the dev profile creates them on first use.
    dev_profile = {"CONTESTO_AUTH_REQUIRED": "false", "CONTESTO_AUTO_CREATE_TENANTS": "true"}
    mqtt_access = _compose_service("mqtt-access")
    api = _compose_service("api")
    ingest = _compose_service("ingest")
    ingest_command = [str(provisioning_port) if arg == "4041" else arg for arg in ingest["command"]]
    with ExitStack() as services:
        services.enter_context(
            _process(
                ["sh", str(DEPLOY / "mosquitto" / "keep-access.sh")],
                mqtt_access["environment"]
                | store
                | {
                    "CONTESTO_MQTT_ACCESS_DIR": str(access),
                    "CONTESTO_MQTT_PASSWORD": INGEST_PASSWORD,
                    "CONTESTO_PIPELINE_DATABASE": pipeline_database,
                    "ACCESS_REFRESH_S": "1",
                },
                tmp_path / "mqtt-access.log",
            )
        )
        services.enter_context(
            _process(
                ["sh", str(DEPLOY / "mosquitto" / "run-mosquitto.sh")],
                {
                    "MOSQUITTO_ACCESS": str(access),
                    "MOSQUITTO_CONFIG": str(tmp_path / "mosquitto.conf"),
                },
                tmp_path / "mosquitto.log",
            )
        )
        wait_for_port("127.0.0.1", mqtt_port, 60)
        services.enter_context(
            _process(
                [sys.executable, "-m", "contesto", *api["command"]],
                api["environment"]
                | store
                | dev_profile
                | {"CONTESTO_HOST": "127.0.0.1", "CONTESTO_PORT": str(api_port)},
                tmp_path / "api.log",
            )
        )
        api_url = f"http://127.0.0.1:{api_port}"
        _wait(
            lambda: _healthcheck("http", f"{api_url}/health/ready") == 0,
            "the API did not answer",
            tmp_path / "api.log",
        )
        services.enter_context(
            _process(
                [sys.executable, "-m", "contesto", *ingest_command],
                ingest["environment"]
                | store
                | dev_profile
                | {
                    "CONTESTO_MQTT_HOST": "127.0.0.1",
                    "CONTESTO_MQTT_PORT": str(mqtt_port),
                    "CONTESTO_MQTT_PASSWORD": INGEST_PASSWORD,
                    "CONTESTO_MQTT_CLIENT_ID": f"ingest-{prefix}",
                    "CONTESTO_MQTT_SHARED_GROUP": prefix,
                    "CONTESTO_PIPELINE_DATABASE": pipeline_database,
                    "CONTESTO_BROKER_URL": f"{api_url}/ngsi-ld/v1",
                    "CONTESTO_BROKER_TOKEN": "",
                },
                tmp_path / "ingest.log",
            )
        )
        _wait(
            lambda: "Contesto ingest is up." in (tmp_path / "ingest.log").read_text(),
            "ingest did not connect to Mosquitto",
            tmp_path / "ingest.log",
            timeout_s=60,
        )
        yield {
            "api_url": api_url,
            "mqtt_port": mqtt_port,
            "provisioning_port": provisioning_port,
            "access": access,
            "store_url": store_url,
            "pipeline_database": pipeline_database,
            "logs": tmp_path,
        }


def _passwords(access: Path) -> dict[str, str]:
    lines = (access / "credentials").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line)


def test_a_sensor_reading_reaches_the_api_through_the_recipe(recipe: dict[str, Any]) -> None:
    """MQTT (logins of the registry) -> ingest service -> API service, each as compose runs it."""
    access: Path = recipe["access"]
    assert _passwords(access)["contesto-ingest"] == INGEST_PASSWORD
    command = [
        sys.executable, "-m", "contesto", "simulate", "--count", "9", "--rate", "0",
        "--mqtt-port", str(recipe["mqtt_port"]), "--credentials", str(access / "credentials"),
    ]  # fmt: skip
    published = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert published.returncode == 0, published.stderr

    def firenze_readings() -> list[Any]:
        answer = httpx.get(
            f"{recipe['api_url']}/ngsi-ld/v1/entities",
            params={"type": "AirQualityObserved"},
            headers={"NGSILD-Tenant": "firenze"},
            timeout=10,
        )
        return list(answer.json()) if answer.status_code == 200 else []

    _wait(
        lambda: firenze_readings() != [],
        "no reading reached the API",
        recipe["logs"] / "ingest.log",
    )
    assert all(entity["type"] == "AirQualityObserved" for entity in firenze_readings())


def test_mosquitto_takes_only_the_registry_logins(recipe: dict[str, Any]) -> None:
    port, passwords = recipe["mqtt_port"], _passwords(recipe["access"])
    firenze = group_user(DEMO_GROUPS[0])
    assert _can_log_in(port, firenze, passwords[firenze])
    assert not _can_log_in(port, None, None)
    assert not _can_log_in(port, firenze, "not-the-password")


def test_a_new_device_group_can_log_in_without_a_restart(recipe: dict[str, Any]) -> None:
    """keep-access.sh rewrites the files, run-mosquitto.sh makes Mosquitto reload them."""
    group = replace(DEMO_GROUPS[0], group=f"firenze-new-{secrets.token_hex(3)}")

    async def provision() -> None:
        client = connect(recipe["store_url"])
        try:
            await DeviceRegistry(client[recipe["pipeline_database"]]).put_group(group)
        finally:
            await client.close()

    asyncio.run(provision())
    user = group_user(group)
    _wait(
        lambda: user in _passwords(recipe["access"]),
        "keep-access.sh did not add the group's login",
        recipe["logs"] / "mqtt-access.log",
    )
    password = _passwords(recipe["access"])[user]
    _wait(
        lambda: _can_log_in(recipe["mqtt_port"], user, password),
        "Mosquitto did not take the new login",
        recipe["logs"] / "mosquitto.log",
    )


def test_the_probes_of_the_recipe_answer(recipe: dict[str, Any]) -> None:
    """The liveness and readiness paths of deploy/kubernetes/ (API and ingest) and the
    image's health checks (the Dockerfile's HEALTHCHECK URL, the compose file's ingest
    check)."""
    ingest_url = f"http://127.0.0.1:{recipe['provisioning_port']}"
    for name, url in (("api", recipe["api_url"]), ("ingest", ingest_url)):
        manifest = (DEPLOY / "kubernetes" / f"{name}.yaml").read_text()
        for probe in ("livenessProbe", "readinessProbe"):
            path = re.search(probe + r":\s*\n\s*httpGet: \{path: (\S+),", manifest)
            assert path is not None, (name, probe)
            answer = httpx.get(url + path.group(1), timeout=10)
            assert answer.status_code == 200, (name, probe, answer.text)
    ingest_check = _compose_service("ingest")["healthcheck"]["test"]
    assert ingest_check[-2:] == ["http", "http://127.0.0.1:4041/health/ready"]
    assert _healthcheck("http", f"{ingest_url}/health/ready") == 0
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    image_probe = re.search(r'"http", "http://127\.0\.0\.1:1026(/\S+)"\]', dockerfile)
    assert image_probe is not None
    assert _healthcheck("http", recipe["api_url"] + image_probe.group(1)) == 0
    assert _healthcheck("tcp", str(recipe["provisioning_port"])) == 0
    assert _healthcheck("tcp", str(_free_port())) == 1
