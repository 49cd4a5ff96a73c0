"""Operator commands find the running `contesto up` by themselves, through the runtime file
in its data directory: no store URL, API URL or MQTT port to copy from the banner."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _stack_up import Up, free_port

from contesto._runtime_file import RUNTIME_FILE

pytestmark = pytest.mark.integration

COMMAND_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    running = Up(tmp_path_factory.mktemp("stack"), free_port())
    try:
        running.wait_until_up()
        yield running
    finally:
        running.close()


def _contesto(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A `contesto` command as an operator types it: no CONTESTO_ setting unless given."""
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("CONTESTO_")
    }
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "contesto", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )


def _entity_ids(up: Up, tenant: str, entity_type: str) -> set[str]:
    answer = httpx.get(
        f"{up.url}/entities",
        params={"type": entity_type, "limit": 100},
        headers={"NGSILD-Tenant": tenant},
        timeout=10,
    )
    return {entity["id"] for entity in answer.json()} if answer.status_code == 200 else set()


def _wait_for_entities(up: Up, tenant: str, count: int) -> set[str]:
    deadline = time.monotonic() + 30
    found: set[str] = set()
    while time.monotonic() < deadline:
        found = _entity_ids(up, tenant, "AirQualityObserved")
        if len(found) >= count:
            return found
        time.sleep(0.2)
    pytest.fail(f"only {sorted(found)} of {tenant} arrived within 30 s:\n{up.output()}")


def test_the_runtime_file_says_where_the_stack_serves_and_only_its_owner_reads_it(
    up: Up,
) -> None:
    path = up.data_dir / RUNTIME_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    runtime = json.loads(path.read_text())
    assert runtime["pid"] == up.process.pid
    assert runtime["api_url"] == up.url
    assert runtime["mqtt_port"] == up.mqtt_port
    assert runtime["provisioning_url"] == f"http://127.0.0.1:{up.provisioning_port}/iot"
    assert runtime["store_url"] == (up.data_dir / "db" / "store-url").read_text().strip()
    assert str(path) in up.output()


def test_commands_without_any_url_work_on_the_local_stack(up: Up) -> None:
    """Run from the directory `make run` runs in: the default data directory is ./var."""
    here = up.data_dir.parent
    assert up.data_dir == here / "var"
    simulated = _contesto("simulate", "--count", "4", "--rate", "0", cwd=here)
    assert simulated.returncode == 0, simulated.stderr
    assert f"to 127.0.0.1:{up.mqtt_port}" in simulated.stdout
    assert len(_wait_for_entities(up, "firenze", 1)) >= 1

    devices = _contesto("devices", "list", "--tenant", "firenze", cwd=here)
    assert devices.returncode == 0, devices.stderr
    assert "aq-fi-novoli" in devices.stdout

    onboarded = _contesto(
        "tenants", "onboard", "--utility", "acquaprobe", "--name", "Acqua Probe", cwd=here
    )
    assert onboarded.returncode == 0, onboarded.stderr
    listed = _contesto("tenants", "list", cwd=here)
    assert listed.returncode == 0, listed.stderr
    assert "acquaprobe" in listed.stdout

    letters = _contesto("dead-letter", "list", "--json", cwd=here)
    assert letters.returncode == 0, letters.stderr

    # From elsewhere, --data-dir names the stack.
    elsewhere = _contesto(
        "tenants", "show", "acquaprobe", "--data-dir", str(up.data_dir), cwd=Path("/")
    )
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert "Acqua Probe" in elsewhere.stdout


def test_an_explicit_setting_comes_before_the_local_stack(up: Up, tmp_path: Path) -> None:
    here = up.data_dir.parent
    unreachable = "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300"
    given = _contesto("tenants", "list", cwd=here, env={"CONTESTO_MONGO_URL": unreachable})
    assert given.returncode == 1
    assert "cannot reach the store" in given.stderr
    # CONTESTO_MQTT_PORT as `contesto up` reads it, with no stack on the data directory.
    empty = tmp_path / "no-stack"
    by_env = _contesto(
        "simulate",
        "--count",
        "4",
        "--rate",
        "0",
        "--data-dir",
        str(empty),
        cwd=here,
        env={"CONTESTO_MQTT_PORT": str(up.mqtt_port)},
    )
    assert by_env.returncode == 0, by_env.stderr
    assert f"to 127.0.0.1:{up.mqtt_port}" in by_env.stdout
    refused = _contesto(
        "simulate", "--count", "1", "--mqtt-port", str(free_port()), "--rate", "0", cwd=here
    )
    assert refused.returncode == 1


def test_a_clean_stop_removes_the_runtime_file_and_a_killed_stack_leaves_a_stale_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "var" / RUNTIME_FILE
    first = Up(tmp_path, free_port(), run="first")
    try:
        first.wait_until_up()
        assert path.exists()
        assert first.stop(signal.SIGINT) == 0
        assert not path.exists()
    finally:
        first.close()
    nothing = _contesto("tenants", "list", cwd=tmp_path)
    assert nothing.returncode == 1
    assert "no running `contesto up` found" in nothing.stderr
    assert "--store-url (or CONTESTO_MONGO_URL)" in nothing.stderr

    second = Up(tmp_path, free_port(), run="second")
    try:
        second.wait_until_up()
        second.process.kill()
        second.process.wait()
        assert path.exists()
        stale = _contesto("dead-letter", "list", cwd=tmp_path)
        assert stale.returncode == 1
        assert f"stale: the `contesto up` that wrote it (PID {second.process.pid})" in stale.stderr
    finally:
        second.close()


def test_simulate_logs_in_as_the_regional_stack_asks(tmp_path: Path) -> None:
    """CONTESTO_AUTH_REQUIRED: Mosquitto takes no anonymous client, and `contesto simulate`
    logs in as each demo group from the logins file the local stack names."""
    regional = {"CONTESTO_AUTH_REQUIRED": "true", "CONTESTO_MQTT_BROKER": "mosquitto"}
    stack = Up(tmp_path, free_port(), env=regional)
    try:
        stack.wait_until_up()
        runtime = json.loads((stack.data_dir / RUNTIME_FILE).read_text())
        logins = stack.data_dir / "mqtt" / "access" / "credentials"
        assert runtime["mqtt_credentials_file"] == str(logins)
        # Ingest writes the demo groups' logins just after it starts.
        deadline = time.monotonic() + 30
        while True:
            published = _contesto("simulate", "--count", "3", "--rate", "0", cwd=tmp_path)
            if published.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert published.returncode == 0, published.stderr
        nobody = tmp_path / "no-logins"
        nobody.write_text("")
        refused = _contesto(
            "simulate", "--count", "1", "--rate", "0", "--credentials", str(nobody), cwd=tmp_path
        )
        assert refused.returncode == 1
        assert "Not authorized" in refused.stderr or "not authorised" in refused.stderr.lower()
    finally:
        stack.close()
