"""`contesto devices ...` against the real store: provision, list, show, delete, and failures."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from pymongo import MongoClient
from pymongo.database import Database
from typer.testing import CliRunner, Result

from contesto._cli_devices import devices_app

pytestmark = pytest.mark.integration

RUNNER = CliRunner()
KEY = f"firenze-aria-{secrets.token_hex(4)}"
PROVISIONING: dict[str, Any] = {
    "services": [
        {
            "apikey": KEY,
            "entity_type": "AirQualityObserved",
            "profile": "toscana/AirQualityObserved",
            "autoprovision": False,
            "attributes": [
                {
                    "object_id": "t",
                    "name": "temperature",
                    "type": "Number",
                    "metadata": {"unitCode": {"type": "Text", "value": "CEL"}},
                },
                {"object_id": "h", "name": "relativeHumidity", "type": "Number", "scale": 0.01},
            ],
        }
    ],
    "devices": [
        {
            "device_id": "aq-santa-croce",
            "apikey": KEY,
            "static_attributes": [
                {"name": "location", "type": "geo:point", "value": "43.7687, 11.2620"}
            ],
        },
        {
            "device_id": "aq-novoli",
            "entity_type": "AirQualityObserved",
            "entity_name": "urn:ngsi-ld:AirQualityObserved:firenze:novoli",
        },
    ],
}


@pytest.fixture(scope="module")
def database(store_url: str) -> Iterator[Database[dict[str, Any]]]:
    name = f"test_cli_devices_{uuid4().hex[:8]}"
    client: MongoClient[dict[str, Any]] = MongoClient(store_url, tz_aware=True)
    with client:
        try:
            yield client[name]
        finally:
            client.drop_database(name)


@pytest.fixture
def run(store_url: str, database: Database[dict[str, Any]]) -> Any:
    """`contesto devices ARGS` on the module's database, the store named by the environment."""

    def invoke(*args: str) -> Result:
        return RUNNER.invoke(
            devices_app,
            [*args, "--database", database.name],
            env={"CONTESTO_MONGO_URL": store_url, "COLUMNS": "200"},
        )

    return invoke


def _write(tmp_path: Path, data: Any, name: str = "devices.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return str(path)


def test_provision_list_show_and_delete(
    run: Any, tmp_path: Path, database: Database[dict[str, Any]]
) -> None:
    tenant = f"firenze{secrets.token_hex(3)}"
    file = _write(tmp_path, PROVISIONING)
    result = run("provision", file, "--tenant", tenant)
    assert result.exit_code == 0, result.output
    assert f"service group {KEY} (iotagent-json): created" in result.output
    assert f"device aq-santa-croce in {KEY} (iotagent-json): created" in result.output
    assert f"1 service group and 2 devices provisioned for tenant {tenant}" in result.output
    stored = database["devices"].find_one({"device_id": "aq-santa-croce"}, {"_id": 0})
    assert stored is not None and stored["tenant"] == tenant and stored["group"] == KEY

    again = run("provision", file, "--tenant", tenant.upper())
    assert again.exit_code == 0, again.output
    assert f"service group {KEY} (iotagent-json): updated" in again.output
    assert database["devices"].count_documents({"tenant": tenant}) == 2

    listed = run("list", "--tenant", tenant)
    assert listed.exit_code == 0, listed.output
    assert "toscana/AirQualityObserved" in listed.output
    assert "urn:ngsi-ld:AirQualityObserved:aq-santa-croce" in listed.output
    assert "urn:ngsi-ld:AirQualityObserved:firenze:novoli" in listed.output
    assert "1 service group; devices 1-2 of 2" in listed.output

    shown = run("show", "aq-santa-croce", "--tenant", tenant)
    assert shown.exit_code == 0, shown.output
    device = json.loads(shown.output)
    assert device["entity_name"] == "urn:ngsi-ld:AirQualityObserved:aq-santa-croce"
    assert device["static_attributes"] == [
        {
            "name": "location",
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [11.262, 43.7687]},
        }
    ]

    deleted = run("delete", "aq-santa-croce", "--tenant", tenant)
    assert deleted.exit_code == 0, deleted.output
    assert f"device aq-santa-croce deleted from {KEY} (iotagent-json)" in deleted.output
    assert database["devices"].count_documents({"tenant": tenant}) == 1
    missing = run("delete", "aq-santa-croce", "--tenant", tenant)
    assert missing.exit_code == 1
    assert f"error: no device 'aq-santa-croce' in tenant '{tenant}'" in missing.output
    assert run("show", "aq-santa-croce", "--tenant", tenant).exit_code == 1


def test_list_json_is_a_file_provision_takes_back(
    run: Any, tmp_path: Path, database: Database[dict[str, Any]]
) -> None:
    tenant, key = f"prato{secrets.token_hex(3)}", f"prato-{secrets.token_hex(4)}"
    body = {
        "services": [{"apikey": key, "format": "ttn-v3", "entity_type": "WeatherObserved"}],
        "devices": [{"device_id": f"eui-{n}", "apikey": key} for n in range(3)],
    }
    assert run("provision", _write(tmp_path, body), "--tenant", tenant).exit_code == 0
    before = list(database["devices"].find({"tenant": tenant}, {"_id": 0}).sort("device_id"))
    exported = run("list", "--tenant", tenant, "--json")
    assert exported.exit_code == 0, exported.output
    data = json.loads(exported.output)
    assert [d["device_id"] for d in data["devices"]] == ["eui-0", "eui-1", "eui-2"]
    assert "entity_name" not in data["devices"][0]  # only what was provisioned
    reprovisioned = run("provision", _write(tmp_path, data, "export.json"), "--tenant", tenant)
    assert reprovisioned.exit_code == 0, reprovisioned.output
    assert reprovisioned.output.count(": updated") == 4
    after = list(database["devices"].find({"tenant": tenant}, {"_id": 0}).sort("device_id"))
    assert after == before


def test_a_key_of_another_tenant_is_refused(run: Any, tmp_path: Path) -> None:
    key = f"k-{secrets.token_hex(4)}"
    file = _write(tmp_path, {"services": [{"apikey": key, "entity_type": "T"}]})
    assert run("provision", file, "--tenant", f"a{secrets.token_hex(3)}").exit_code == 0
    taken = run("provision", file, "--tenant", f"b{secrets.token_hex(3)}")
    assert taken.exit_code == 1
    assert "belongs to another service" in taken.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ('{"entities": []}', '"services" (service groups) and/or "devices"'),
        ('{"services": [{"apikey": "k"}]}', "$.services[0].entity_type is required"),
        ('{"devices": [{"device_id": "d", "apikey": "nokey"}]}', "provision the group first"),
        ('{"services": [{"apikey": "k", "model": "Nope"}]}', "unknown model 'Nope'"),
    ],
)
def test_a_bad_file_is_refused_and_nothing_is_written(
    run: Any, tmp_path: Path, database: Database[dict[str, Any]], content: str, message: str
) -> None:
    tenant = f"t{secrets.token_hex(4)}"
    result = run("provision", _write(tmp_path, content), "--tenant", tenant)
    assert result.exit_code == 1
    assert message in result.output
    assert database["service_groups"].count_documents({"tenant": tenant}) == 0


def test_usage_errors_are_explained(run: Any, tmp_path: Path, store_url: str) -> None:
    missing_file = run("provision", str(tmp_path / "nope.json"), "--tenant", "t")
    assert missing_file.exit_code == 1 and "cannot read" in missing_file.output
    bad_tenant = run("list", "--tenant", "a/b")
    assert bad_tenant.exit_code == 1 and "fiware-service must be" in bad_tenant.output
    bad_format = run("show", "d", "--tenant", "t", "--format", "ul20")
    assert bad_format.exit_code == 1 and "--format must be one of" in bad_format.output
    # No URL and no stack running on the data directory: the error says what to give.
    no_store = RUNNER.invoke(
        devices_app,
        ["list", "--tenant", "t", "--data-dir", str(tmp_path / "no-stack")],
        env={"CONTESTO_MONGO_URL": None},
    )
    assert no_store.exit_code == 1
    assert "no running `contesto up` found" in no_store.output
    assert "--store-url (or CONTESTO_MONGO_URL)" in no_store.output
    bad_url = RUNNER.invoke(devices_app, ["list", "--tenant", "t", "--mongo-url", "http://x"])
    assert bad_url.exit_code == 1 and "is not a MongoDB URL" in bad_url.output


def test_a_store_that_cannot_be_reached_is_an_error_not_a_traceback() -> None:
    unreachable = "mongodb://registry-store.invalid:27017/?serverSelectionTimeoutMS=300"
    result = RUNNER.invoke(devices_app, ["list", "--tenant", "t", "--mongo-url", unreachable])
    assert result.exit_code == 1
    assert "error: the device registry's store is not reachable" in result.output


def test_help_explains_each_command() -> None:
    result = RUNNER.invoke(devices_app, ["--help"])
    assert result.exit_code == 0
    for command in ("provision", "list", "show", "delete"):
        assert command in result.output
    provision = RUNNER.invoke(devices_app, ["provision", "--help"], env={"COLUMNS": "200"})
    assert "IoT Agent shape" in provision.output
    assert "CONTESTO_MONGO_URL" in provision.output
    assert "contesto_ingest" in provision.output
