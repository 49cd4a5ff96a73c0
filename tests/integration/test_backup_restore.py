"""`contesto backup` / `contesto restore` over the real store, checked through the broker's
HTTP API: a round trip, damaged archives, one tenant out of an --all archive, --as, the
local stack found without a URL, and the commands of docs/operations.md."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import struct
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bson
import httpx
import pytest
from _servers import ThreadedServer
from bson import Binary, Decimal128, Int64, ObjectId
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import AsyncMongoClient, MongoClient
from typer.testing import CliRunner

from contesto._cli import app
from contesto._runtime_file import StackRuntime
from context_broker import BrokerSettings, create_app
from sensor_ingest import Device, DeviceRegistry, ServiceGroup

pytestmark = pytest.mark.integration

RAW: CodecOptions[RawBSONDocument] = CodecOptions(document_class=RawBSONDocument)
OBSERVED = "2026-11-30T08:00:00Z"
AIR = {
    "id": "urn:ngsi-ld:AirQualityObserved:prato-1",
    "type": "AirQualityObserved",
    "location": {
        "type": "GeoProperty",
        "value": {"type": "Point", "coordinates": [11.0966, 43.8777]},
    },
    "dateObserved": {"type": "Property", "value": {"@type": "DateTime", "@value": OBSERVED}},
    "no2": {"type": "Property", "value": 41.5, "observedAt": OBSERVED, "unitCode": "GQ"},
    "vehicleCount": {"type": "Property", "value": 9007199254740993},
}
ROAD = {
    "id": "urn:ngsi-ld:Road:prato-2",
    "type": "Road",
    "location": {
        "type": "GeoProperty",
        "value": {"type": "LineString", "coordinates": [[11.09, 43.87], [11.1, 43.88]]},
    },
    "name": {"type": "Property", "value": "Via Roma"},
}
SUBSCRIPTION = {
    "id": "urn:ngsi-ld:Subscription:no2",
    "type": "Subscription",
    "entities": [{"type": "AirQualityObserved"}],
    "watchedAttributes": ["no2"],
    "notification": {
        "endpoint": {"uri": "http://127.0.0.1:9/notify", "accept": "application/json"}
    },
}


@dataclass(frozen=True)
class Stack:
    """A broker on its own database prefix and ingest database, and the CLI on the same."""

    store_url: str
    prefix: str
    pipeline: str
    url: str

    def cli(self, *args: str) -> tuple[int, str]:
        options = ["--mongo-url", self.store_url, "--prefix", self.prefix]
        if args[0] in ("backup", "restore"):
            options += ["--pipeline-database", self.pipeline]
        result = CliRunner().invoke(app, [*args, *options])
        return result.exit_code, result.output

    def http(self, tenant: str | None) -> httpx.Client:
        headers = {} if tenant is None else {"NGSILD-Tenant": tenant}
        return httpx.Client(base_url=f"{self.url}/ngsi-ld/v1", headers=headers, timeout=30)

    def create(self, tenant: str | None, *entities: dict[str, Any]) -> None:
        with self.http(tenant) as api:
            for entity in entities:
                response = api.post("/entities", json=entity)
                assert response.status_code == 201, response.text

    def entities(self, tenant: str | None) -> Any:
        with self.http(tenant) as api:
            response = api.get("/entities", params={"type": "AirQualityObserved,Road"})
        found = response.json()
        if response.status_code != 200:
            return response.status_code, found
        return response.status_code, sorted(found, key=lambda entity: str(entity["id"]))


def _stack(store_url: str) -> Iterator[Stack]:
    prefix = f"b{secrets.token_hex(4)}"
    settings = BrokerSettings(mongo_url=store_url, database_prefix=prefix)
    with ThreadedServer(create_app(settings)) as server:
        yield Stack(store_url, prefix, f"{prefix}_ingest", server.url)


@pytest.fixture(scope="module")
def stack(store_url: str) -> Iterator[Stack]:
    """A broker whose database prefix the tests of this module share."""
    yield from _stack(store_url)


@pytest.fixture
def own_stack(store_url: str) -> Iterator[Stack]:
    """A broker on a database prefix of one test: `--all` holds only that test's tenants."""
    yield from _stack(store_url)


@pytest.fixture(scope="module")
def store(store_url: str) -> Iterator[MongoClient[dict[str, Any]]]:
    client: MongoClient[dict[str, Any]] = MongoClient(store_url, tz_aware=True)
    yield client
    client.close()


def _provision(stack: Stack, tenant: str, group: str) -> None:
    async def provision() -> None:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.store_url, tz_aware=True)
        try:
            registry = DeviceRegistry(client[stack.pipeline])
            await registry.ensure_indexes()
            await registry.put_group(ServiceGroup(tenant, "iotagent-json", group, "WaterMeter"))
            await registry.put_device(Device(tenant, "iotagent-json", group, "meter-7"))
        finally:
            await client.close()

    asyncio.run(provision())


def _raw(
    store: MongoClient[dict[str, Any]], database: str, collection: str, query: Any
) -> list[bytes]:
    found = store.get_database(database, codec_options=RAW)[collection].find(query)
    return sorted(bytes(document.raw) for document in found)


def _records(stack: Stack, store: MongoClient[dict[str, Any]], tenant: str) -> dict[str, Any]:
    """What the tenant holds in the store, byte for byte, with its indexes."""
    own = store[f"{stack.prefix}_{tenant}"]
    platform = f"{stack.prefix}__platform"
    return {
        "database": {name: _raw(store, own.name, name, {}) for name in own.list_collection_names()},
        "indexes": {name: own[name].index_information() for name in own.list_collection_names()},
        "tenant": _raw(store, platform, "tenants", {"_id": tenant}),
        "keys": _raw(store, platform, "api_keys", {"tenant": tenant}),
        "rules": _raw(store, platform, "sharing_rules", {"owner": tenant}),
        "contexts": _raw(store, platform, "contexts", {"tenant": tenant}),
        "groups": _raw(store, stack.pipeline, "service_groups", {"tenant": tenant}),
        "devices": _raw(store, stack.pipeline, "devices", {"tenant": tenant}),
    }


def test_a_tenant_backed_up_dropped_and_restored_answers_the_same(
    stack: Stack, store: MongoClient[dict[str, Any]], tmp_path: Path
) -> None:
    """The round trip an operator relies on: every entity, subscription, key, rule,
    hosted @context, device and stored BSON type comes back as it was, and the broker
    answers Query Entities (ETSI GS CIM 009 clause 5.7.2) and Retrieve Subscription
    (5.8.2) as before the backup."""
    code, out = stack.cli("tenants", "onboard", "--utility", "publiacqua", "--name", "Publiacqua")
    assert code == 0, out
    assert stack.cli("tenants", "key", "publiacqua", "--role", "reader")[0] == 0
    shared = [
        "tenants",
        "share",
        "publiacqua",
        "--name",
        "air",
        "--types",
        "Road",
        "--attrs",
        "name",
    ]
    assert stack.cli(*shared)[0] == 0
    stack.create("publiacqua", AIR, ROAD)
    with stack.http("publiacqua") as api:
        assert api.post("/subscriptions", json=SUBSCRIPTION).status_code == 201
        hosted = api.post("/jsonldContexts", json={"@context": {"meter": "https://x.example/m"}})
        assert hosted.status_code == 201, hosted.text
        subscription = api.get(f"/subscriptions/{SUBSCRIPTION['id']}").json()
    _provision(stack, "publiacqua", "pa-meters")
    readings = store[f"{stack.prefix}_publiacqua"]["readings"]
    readings.insert_one(
        {
            "_id": ObjectId(),
            "at": datetime(2026, 11, 30, 8, 0, 0, 123000, tzinfo=UTC),
            "total": Decimal128("12345.678901234567890123"),
            "count": Int64(2**62 + 1),
            "blob": Binary(b"\x00\x01\xff"),
        }
    )
    readings.create_index([("at", -1)], name="newest", unique=True)
    before = stack.entities("publiacqua")
    held = _records(stack, store, "publiacqua")
    history = _raw(store, f"{stack.prefix}__platform", "audit_log", {"tenant": "publiacqua"})
    archive = tmp_path / "publiacqua.zip"

    code, out = stack.cli("backup", "--tenant", "publiacqua", "--out", str(archive))
    assert code == 0, out
    manifest = json.loads(zipfile.ZipFile(archive).read("manifest.json"))
    parts = {(p["place"], p["collection"]): p for p in manifest["tenants"]["publiacqua"]}
    assert manifest["format_version"] == 1
    assert parts["tenant", "readings"]["documents"] == 1
    assert parts["platform", "api_keys"]["documents"] == 2
    assert parts["pipeline", "devices"]["documents"] == 1
    assert len(parts["tenant", "entities"]["sha256"]) == 64

    export = tmp_path / "export.jsonl"
    assert stack.cli("tenants", "delete", "publiacqua", "--yes", "--export", str(export))[0] == 0
    assert f"{stack.prefix}_publiacqua" not in store.list_database_names()
    code, out = stack.cli("restore", str(archive))
    assert code == 0, out
    assert "publiacqua: " in out

    assert stack.entities("publiacqua") == before
    assert before[0] == 200
    assert [e["id"] for e in before[1]] == [AIR["id"], ROAD["id"]]
    with stack.http("publiacqua") as api:
        assert api.get(f"/subscriptions/{SUBSCRIPTION['id']}").json() == subscription
    assert _records(stack, store, "publiacqua") == held
    restored_history = _raw(
        store, f"{stack.prefix}__platform", "audit_log", {"tenant": "publiacqua"}
    )
    assert set(history) < set(restored_history)
    assert "tenant.restored" in stack.cli("audit", "publiacqua")[1]


def _archive_of_one_entity(stack: Stack, tmp_path: Path) -> tuple[str, Path]:
    tenant = f"lab-{secrets.token_hex(3)}"
    stack.create(tenant, ROAD)
    archive = tmp_path / f"{tenant}.zip"
    code, out = stack.cli("backup", "--tenant", tenant, "--out", str(archive))
    assert code == 0, out
    return tenant, archive


def test_backup_finds_the_running_local_stack_without_a_url(stack: Stack, tmp_path: Path) -> None:
    """Like every operator command, backup takes the store of the `contesto up` running on
    --data-dir (its runtime file) when no --store-url or CONTESTO_MONGO_URL is given."""
    tenant = f"lab-{secrets.token_hex(3)}"
    stack.create(tenant, ROAD)
    running = StackRuntime(os.getpid(), stack.url, stack.store_url, None, None, None, None, None)
    running.write(tmp_path)
    archive = tmp_path / "local.zip"
    options = ["--prefix", stack.prefix, "--pipeline-database", stack.pipeline]
    result = CliRunner().invoke(
        app,
        [
            "backup",
            "--tenant",
            tenant,
            "--out",
            str(archive),
            "--data-dir",
            str(tmp_path),
            *options,
        ],
        env={"CONTESTO_MONGO_URL": None},
    )
    assert result.exit_code == 0, result.output
    assert f"{tenant}: " in result.output
    assert archive.exists()


def _data_offset(archive: Path, member: str) -> tuple[int, int]:
    """Where the member's compressed bytes start in the file, and how many there are."""
    info = zipfile.ZipFile(archive).getinfo(member)
    with archive.open("rb") as file:
        file.seek(info.header_offset)
        header = struct.unpack("<IHHHHHIIIHH", file.read(30))
    return info.header_offset + 30 + header[9] + header[10], info.compress_size


def test_a_damaged_archive_is_refused_naming_the_part_and_nothing_is_written(
    stack: Stack, store: MongoClient[dict[str, Any]], tmp_path: Path
) -> None:
    """One flipped byte inside a part: the restore names that part and writes nothing."""
    tenant, archive = _archive_of_one_entity(stack, tmp_path)
    part = f"tenants/{tenant}/tenant/entities.bson"
    start, size = _data_offset(archive, part)
    damaged = bytearray(archive.read_bytes())
    damaged[start + size // 2] ^= 0xFF
    archive.write_bytes(bytes(damaged))
    elsewhere = f"r{secrets.token_hex(4)}"

    options = ["--mongo-url", stack.store_url, "--prefix", elsewhere]
    result = CliRunner().invoke(
        app, ["restore", str(archive), *options, "--pipeline-database", elsewhere]
    )
    assert result.exit_code == 1
    assert part in result.output
    assert not [name for name in store.list_database_names() if name.startswith(elsewhere)]


def test_an_archive_whose_part_was_rewritten_fails_its_checksum(
    stack: Stack, tmp_path: Path
) -> None:
    """A part replaced by other valid BSON (the zip itself intact) fails its SHA-256."""
    tenant, archive = _archive_of_one_entity(stack, tmp_path)
    part = f"tenants/{tenant}/tenant/entities.bson"
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(archive) as original, zipfile.ZipFile(forged, "w") as copy:
        for info in original.infolist():
            data = original.read(info)
            if info.filename == part:
                data = bson.encode({"_id": ROAD["id"], "forged": True})
            copy.writestr(info.filename, data)
    code, out = stack.cli("restore", str(forged), "--replace")
    assert code == 1
    assert f"part {part} does not match its SHA-256" in out


def test_one_tenant_of_an_all_archive_is_restored_alone_and_as_another_name(
    stack: Stack, tmp_path: Path
) -> None:
    """--all holds every tenant, the default one too; --tenant takes one out of it, leaving
    the others as they are; --as restores it beside the original, without its API keys
    (a key names its tenant) and never with another tenant's device keys."""
    first, second = f"a-{secrets.token_hex(3)}", f"b-{secrets.token_hex(3)}"
    assert stack.cli("tenants", "onboard", "--utility", first)[0] == 0
    stack.create(first, AIR, ROAD)
    stack.create(second, AIR, ROAD)
    stack.create(None, ROAD)
    _provision(stack, second, f"{second}-meters")
    archive = tmp_path / "all.zip"
    code, out = stack.cli("backup", "--all", "--out", str(archive))
    assert code == 0, out
    assert f"{first}: " in out and f"{second}: " in out and "@default: " in out
    before = stack.entities(first)
    for tenant in (first, second):
        with stack.http(tenant) as api:
            assert api.delete(f"/entities/{ROAD['id']}").status_code == 204

    code, out = stack.cli("restore", str(archive), "--tenant", first)
    assert code == 1
    assert f"already holds tenant {first!r}" in out
    code, out = stack.cli("restore", str(archive), "--tenant", first, "--replace")
    assert code == 0, out
    assert stack.entities(first) == before
    assert [e["id"] for e in stack.entities(second)[1]] == [AIR["id"]]

    copy = f"c-{secrets.token_hex(3)}"
    code, out = stack.cli("restore", str(archive), "--tenant", first, "--as", copy)
    assert code == 0, out
    assert f"{first} as {copy}" in out
    assert f"issue new ones with `contesto tenants key {copy}`" in out
    assert stack.entities(copy) == before
    assert stack.entities(first) == before

    code, out = stack.cli("restore", str(archive), "--tenant", second, "--as", f"{copy}-2")
    assert code == 1
    assert f"{second}-meters" in out and f"belongs to tenant {second!r}" in out
    assert stack.entities(f"{copy}-2")[0] == 404

    code, out = stack.cli("restore", str(archive), "--tenant", "@default", "--as", f"{copy}-3")
    assert code == 0, out
    assert [e["id"] for e in stack.entities(f"{copy}-3")[1]] == [ROAD["id"]]


OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def _recovery_blocks() -> list[str]:
    text = OPERATIONS.read_text(encoding="utf-8")
    section = text.split("## Backup and disaster recovery", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)


def test_the_disaster_recovery_commands_of_the_operations_page_run(
    own_stack: Stack, store: MongoClient[dict[str, Any]], tmp_path: Path
) -> None:
    """docs/operations.md, "Backup and disaster recovery": its command blocks run in order in
    one shell, the store found through CONTESTO_MONGO_URL; the last one restores the archive
    into an empty store (a new database prefix stands for it)."""
    blocks = _recovery_blocks()
    assert len(blocks) == 3
    assert own_stack.cli("tenants", "onboard", "--comune", "Prato")[0] == 0
    own_stack.create("prato", AIR)
    empty = f"e{secrets.token_hex(4)}"
    script = "\n".join(
        [
            "set -euo pipefail",
            *blocks[:2],
            f"export CONTESTO_DATABASE_PREFIX={empty} CONTESTO_PIPELINE_DATABASE={empty}_ingest",
            blocks[2],
        ]
    )
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "CONTESTO_MONGO_URL": own_stack.store_url,
        "CONTESTO_DATABASE_PREFIX": own_stack.prefix,
        "CONTESTO_PIPELINE_DATABASE": own_stack.pipeline,
        "CONTESTO_DATA_DIR": str(tmp_path / "var"),
    }
    result = subprocess.run(
        ["bash", "-c", script],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "prato as prato-check: " in result.stdout
    assert own_stack.entities("prato-check") == own_stack.entities("prato")
    assert [e["id"] for e in own_stack.entities("prato")[1]] == [AIR["id"]]
    tenants = store[f"{own_stack.prefix}__platform"]["tenants"].distinct("_id")
    restored = store[f"{empty}__platform"]["tenants"].distinct("_id")
    assert set(restored) == set(tenants) - {"prato-check"} == {"prato"}
    assert store[f"{empty}_prato"]["entities"].count_documents({}) == 1
