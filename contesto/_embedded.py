"""The embedded MongoDB-protocol store: SecantusDB run as a child process on loopback.

SecantusDB is GPL-2.0-only, so it is only ever started as a separate program
(`secantusd-py`) and spoken to over the wire protocol; it is never imported.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from contesto._child import ChildServer, log_tail

__all__ = [
    "EmbeddedStore",
    "EmbeddedStoreError",
    "find_executable",
    "free_port",
    "port_in_use",
]

EXECUTABLE = "secantusd-py"
NOT_INSTALLED = (
    "the embedded store is not installed: pip install 'contesto[embedded]' "
    "or set CONTESTO_MONGO_URL"
)
_ADDRESS_IN_USE = "Address already in use"
_PORT_RACE_ATTEMPTS = 3


class EmbeddedStoreError(RuntimeError):
    """The embedded store could not be found, started or stopped."""


class _PortTaken(EmbeddedStoreError):
    """The port chosen for the store was taken before the store could bind it."""


def find_executable() -> Path:
    """The `secantusd-py` beside this interpreter (its venv) first, else the one on PATH."""
    beside = Path(sys.executable).parent / EXECUTABLE
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    on_path = shutil.which(EXECUTABLE)
    if on_path is None:
        raise EmbeddedStoreError(NOT_INSTALLED)
    return Path(on_path)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port the kernel considers free on `host` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_in_use(host: str, port: int) -> bool:
    """Whether a server already listens on host:port (the test a server's own bind would fail)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
        return False


class EmbeddedStore(ChildServer):
    """Runs `secantusd-py` on loopback with its data under `storage_path`; a context manager.

    The port is a free one unless given. The store's own output goes to `log_path`
    (default: `secantus.log` beside the storage directory), never to the terminal.
    """

    _error = EmbeddedStoreError
    _name = "the embedded store"

    def __init__(
        self,
        storage_path: Path,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        log_path: Path | None = None,
        start_timeout_s: float = 20.0,
        stop_timeout_s: float = 10.0,
        executable: Path | None = None,
    ) -> None:
        self.storage_path = Path(storage_path).absolute()
        self.log_path = (
            Path(log_path).absolute() if log_path else self.storage_path.parent / "secantus.log"
        )
        self.host = host
        self._requested_port = port
        self._start_timeout_s = start_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._executable = executable

    @property
    def url(self) -> str:
        """The MongoDB connection string of the running store."""
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the store and return once it answers a ping; raise EmbeddedStoreError if not."""
        if self._process is not None:
            raise EmbeddedStoreError("the embedded store is already started")
        executable = self._executable or find_executable()
        if not executable.exists():
            raise EmbeddedStoreError(NOT_INSTALLED)
        self.storage_path.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self._requested_port is not None:
            if port_in_use(self.host, self._requested_port):
                raise EmbeddedStoreError(
                    f"cannot start the embedded store: port {self._requested_port} "
                    f"on {self.host} is already in use"
                )
            self._start_on(executable, self._requested_port)
            return
        # A free port can be taken by someone else between the check and the store's bind.
        for attempt in range(_PORT_RACE_ATTEMPTS):
            try:
                self._start_on(executable, free_port(self.host))
            except _PortTaken:
                if attempt == _PORT_RACE_ATTEMPTS - 1:
                    raise
            else:
                return

    def _start_on(self, executable: Path, port: int) -> None:
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        command = [
            str(executable),
            "--host",
            self.host,
            "--port",
            str(port),
            "--storage-path",
            str(self.storage_path),
            # Standalone: it then keeps no oplog, which made each upsert about 40% dearer,
            # and nothing here uses what an oplog serves (change streams, transactions).
            "--standalone",
        ]
        with self.log_path.open("ab") as log:
            log.write(f"--- contesto: starting {' '.join(command)}\n".encode())
            log.flush()
            # Own session: a Ctrl-C at the terminal reaches us, and we stop the store in order.
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.storage_path,
                start_new_session=True,
            )
        self._port = port
        try:
            self._wait_until_answering(log_offset)
        except BaseException:
            self.stop()
            raise

    def _wait_until_answering(self, log_offset: int) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self._start_timeout_s
        while True:
            returncode = self._process.poll()
            if returncode is not None:
                tail = self._log_tail(log_offset)
                cause = f"the embedded store exited at start (exit code {returncode})"
                if _ADDRESS_IN_USE in tail:
                    raise _PortTaken(f"{cause}: port {self._port} is already in use\n{tail}")
                raise EmbeddedStoreError(f"{cause}; log {self.log_path}:\n{tail}")
            if self._ping():
                return
            if time.monotonic() > deadline:
                raise EmbeddedStoreError(
                    f"the embedded store did not answer on {self.host}:{self._port} within "
                    f"{self._start_timeout_s:g} s; log {self.log_path}:\n"
                    f"{self._log_tail(log_offset)}"
                )
            time.sleep(0.1)

    def _ping(self) -> bool:
        client: MongoClient[dict[str, object]] = MongoClient(
            self.url, serverSelectionTimeoutMS=300, connectTimeoutMS=300
        )
        try:
            client.admin.command("ping")
        except PyMongoError:
            return False
        finally:
            client.close()
        return True

    def _log_tail(self, offset: int) -> str:
        return log_tail(self.log_path, offset)
