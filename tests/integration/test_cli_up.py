"""`contesto up` runs the embedded store and the broker, and a signal stops both cleanly."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _stack_up import STOP_TIMEOUT_S, Up, free_port, store_pids

pytestmark = pytest.mark.integration


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    running = Up(tmp_path, free_port())
    try:
        yield running
    finally:
        running.close()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_up_serves_ngsi_ld_on_the_embedded_store_and_stops_on_a_signal(up: Up, signum: int) -> None:
    up.wait_until_up()
    storage = up.data_dir / "db"
    assert len(store_pids(storage)) == 1, "one embedded store, on the given data dir"
    assert f"http://127.0.0.1:{up.port}/ngsi-ld/v1" in up.output()

    base = f"http://127.0.0.1:{up.port}/ngsi-ld/v1"
    with httpx.Client(base_url=base, timeout=30.0) as http:
        types = http.get("/types")
        entities = http.get("/entities", params={"type": "https://example.org/Nothing"})
    assert types.status_code == 200, types.text
    assert entities.status_code == 200, entities.text
    assert entities.json() == []

    assert up.stop(signum) == 0, up.output()
    assert store_pids(storage) == [], "the embedded store is stopped with the stack"
    assert (storage / "WiredTiger").exists(), "the database lives in the data dir"
    assert (up.data_dir / "secantus.log").exists()
    assert "Traceback" not in up.output()


def test_up_on_a_taken_port_says_so_and_starts_no_store(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        up = Up(tmp_path, taken.getsockname()[1])
        try:
            assert up.process.wait(STOP_TIMEOUT_S) == 1
            output = up.output()
        finally:
            up.close()
    assert f"port {up.port} on 127.0.0.1 is already in use" in output
    assert "Traceback" not in output
    assert store_pids(up.data_dir / "db") == []
