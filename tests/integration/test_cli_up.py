"""`contesto up` runs the embedded store and the broker, and a signal stops both cleanly."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


def _contesto() -> str:
    beside = Path(sys.executable).parent / "contesto"
    found = str(beside) if beside.exists() else shutil.which("contesto")
    assert found, "the contesto console script is not installed"
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _store_pids(storage_path: Path) -> list[int]:
    """Running secantusd processes whose command line names this storage path."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(b"secantusd" in arg for arg in argv) and str(storage_path).encode() in argv:
            pids.append(int(entry.name))
    return pids


class Up:
    """A `contesto up` child process with its output in files."""

    def __init__(self, tmp_path: Path, port: int) -> None:
        self.data_dir = tmp_path / "var"
        self.port = port
        self._out = (tmp_path / "up.out").open("w+b")
        env = {
            name: value for name, value in os.environ.items() if not name.startswith("CONTESTO_")
        }
        # The MQTT and provisioning ports too: another stack on this machine may hold
        # the defaults.
        env["CONTESTO_MQTT_PORT"] = str(_free_port())
        env["CONTESTO_PROVISIONING_PORT"] = str(_free_port())
        command = [_contesto(), "up", "--port", str(port), "--data-dir", str(self.data_dir)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self._out, stderr=subprocess.STDOUT, env=env
        )

    def output(self) -> str:
        self._out.seek(0)
        return self._out.read().decode(errors="replace")

    def wait_until_up(self) -> None:
        """Until the banner is out (the API serves by then), failing if the process dies."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while "Contesto is up." not in self.output():
            if self.process.poll() is not None:
                pytest.fail(f"contesto up exited with {self.process.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"contesto up did not come up in time:\n{self.output()}")
            time.sleep(0.1)

    def stop(self, signum: int) -> int:
        self.process.send_signal(signum)
        try:
            return self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"contesto up did not stop within {STOP_TIMEOUT_S} s:\n{self.output()}")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pid in _store_pids(self.data_dir / "db"):
            os.kill(pid, signal.SIGKILL)
        self._out.close()


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    running = Up(tmp_path, _free_port())
    try:
        yield running
    finally:
        running.close()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_up_serves_ngsi_ld_on_the_embedded_store_and_stops_on_a_signal(up: Up, signum: int) -> None:
    up.wait_until_up()
    storage = up.data_dir / "db"
    assert len(_store_pids(storage)) == 1, "one embedded store, on the given data dir"
    assert f"http://127.0.0.1:{up.port}/ngsi-ld/v1" in up.output()

    base = f"http://127.0.0.1:{up.port}/ngsi-ld/v1"
    with httpx.Client(base_url=base, timeout=30.0) as http:
        types = http.get("/types")
        entities = http.get("/entities", params={"type": "https://example.org/Nothing"})
    assert types.status_code == 200, types.text
    assert entities.status_code == 200, entities.text
    assert entities.json() == []

    assert up.stop(signum) == 0, up.output()
    assert _store_pids(storage) == [], "the embedded store is stopped with the stack"
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
    assert _store_pids(up.data_dir / "db") == []
