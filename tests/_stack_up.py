"""`contesto up` as a child process of a test, on free loopback ports, its output in a file;
and the processes it runs, found by PID in /proc."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

__all__ = ["START_TIMEOUT_S", "STOP_TIMEOUT_S", "Up", "alive", "free_port", "store_pids"]

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


def _contesto() -> str:
    beside = Path(sys.executable).parent / "contesto"
    found = str(beside) if beside.exists() else shutil.which("contesto")
    assert found, "the contesto console script is not installed"
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _argv(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def store_pids(storage_path: Path) -> list[int]:
    """Running secantusd processes whose command line names this storage path."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        argv = _argv(int(entry.name))
        if any(b"secantusd" in arg for arg in argv) and str(storage_path).encode() in argv:
            pids.append(int(entry.name))
    return pids


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


class Up:
    """A `contesto up` child process with its output in a file."""

    def __init__(
        self, tmp_path: Path, port: int, env: dict[str, str] | None = None, run: str = "up"
    ) -> None:
        self.data_dir = tmp_path / "var"
        self.port = port
        self.url = f"http://127.0.0.1:{port}/ngsi-ld/v1"
        self._out = (tmp_path / f"{run}.out").open("w+b")
        environment = {
            name: value for name, value in os.environ.items() if not name.startswith("CONTESTO_")
        }
        # The MQTT and provisioning ports too: another stack on this machine may hold
        # the defaults.
        self.mqtt_port = free_port()
        self.provisioning_port = free_port()
        environment["CONTESTO_MQTT_PORT"] = str(self.mqtt_port)
        environment["CONTESTO_PROVISIONING_PORT"] = str(self.provisioning_port)
        environment.update(env or {})
        command = [_contesto(), "up", "--port", str(port), "--data-dir", str(self.data_dir)]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env=environment,
        )

    def output(self) -> str:
        self._out.seek(0)
        return self._out.read().decode(errors="replace")

    def wait_for_output(
        self, text: str, timeout_s: float = START_TIMEOUT_S, count: int = 1
    ) -> None:
        """Until `text` is in the output `count` times, failing if the process dies first."""
        deadline = time.monotonic() + timeout_s
        while self.output().count(text) < count:
            if self.process.poll() is not None:
                pytest.fail(f"contesto up exited with {self.process.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {text!r} from contesto up in {timeout_s} s:\n{self.output()}")
            time.sleep(0.1)

    def wait_until_up(self) -> None:
        """Until the banner is out (the API serves by then), failing if the process dies."""
        self.wait_for_output("Contesto is up.")

    def children(self) -> dict[str, int]:
        """The PIDs of the store, the MQTT broker and the ingest process it runs."""
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[-1].split()[1]) != self.process.pid:
                continue
            argv = b" ".join(_argv(int(entry.name)))
            for name, mark in (
                ("store", b"secantusd"),
                ("mqtt", b"mosquitto"),
                ("ingest", b" ingest "),
            ):
                if mark in argv:
                    found[name] = int(entry.name)
        return found

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
        for pid in store_pids(self.data_dir / "db"):
            os.kill(pid, signal.SIGKILL)
        self._out.close()
