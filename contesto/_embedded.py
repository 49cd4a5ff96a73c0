"""The embedded MongoDB-protocol store: SecantusDB run as a child process on loopback.

SecantusDB is GPL-2.0-only, so it is only ever started as a separate program
(`secantusd-py`) and spoken to over the wire protocol; it is never imported.

It always runs with authentication: a user and password are generated into the data
directory on the first start (0600), and `url` carries them. It journals every commit
before acknowledging it unless started with `journaled=False`.
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
from urllib.parse import quote_plus

from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError

from contesto._child import ChildServer, log_tail
from contesto._parent_death import dies_with_parent
from contesto._store_credentials import StoreCredentials, write_private
from contesto._store_lock import LOCKED_BY_ANOTHER, PID_FILE, lock_holder_line, pid_record

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
CREDENTIALS_FILE = "credentials.json"
URL_FILE = "store-url"
DEFAULT_CACHE_SIZE = "256M"
_USER_EXISTS = 51003
# The store's threads take the interpreter lock from one another after at most this long
# (Python's default: 5 ms): short enough that a read waits little behind a running scan.
SWITCH_INTERVAL_MS = 0.5
_LAUNCHER = Path(__file__).with_name("_switch_interval.py")


class EmbeddedStoreError(RuntimeError):
    """The embedded store could not be found, started or stopped."""


class _PortTaken(EmbeddedStoreError):
    """The port chosen for the store was taken before the store could bind it."""


def _store_environment() -> dict[str, str]:
    """The store's environment: glibc's malloc then keeps at most two arenas. The store
    serves each connection on a thread of its own, and with glibc's default of eight arenas
    per core each thread's freed memory stays in its own 64 MB heap: in an hour's soak
    (`python -m bench.bench_soak`) the store grew to 1.3 GB over a 256 MB cache; side by
    side for 8 minutes, 294 MB with two arenas against 421 MB without. An operator's own
    MALLOC_ARENA_MAX wins."""
    return {"MALLOC_ARENA_MAX": "2", **os.environ}


def find_executable() -> Path:
    """The `secantusd-py` beside this interpreter (its venv) first, else the one on PATH."""
    beside = Path(sys.executable).parent / EXECUTABLE
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    on_path = shutil.which(EXECUTABLE)
    if on_path is None:
        raise EmbeddedStoreError(NOT_INSTALLED)
    return Path(on_path)


def python_of(executable: Path) -> list[str] | None:
    """The interpreter command a Python console script names on its `#!` line, or None
    when it is not a Python script."""
    try:
        with executable.open("rb") as script:
            first = script.readline(512).decode(errors="replace")
    except OSError:
        return None
    words = first[2:].split() if first.startswith("#!") else []
    if not any(Path(word).name.startswith("python") for word in words):
        return None
    return words


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
    (default: `secantus.log` beside the storage directory), never to the terminal. The
    credentials live in `credentials_path`; the full URL of the running store, password
    included, in `url_path` (both 0600, in the storage directory, itself 0700).
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
        journaled: bool = True,
        switch_interval_ms: float | None = SWITCH_INTERVAL_MS,
        cache_size: str = DEFAULT_CACHE_SIZE,
    ) -> None:
        self.storage_path = Path(storage_path).absolute()
        self.credentials_path = self.storage_path / CREDENTIALS_FILE
        self.url_path = self.storage_path / URL_FILE
        self.pid_path = self.storage_path / PID_FILE
        self.journaled = journaled
        self.cache_size = cache_size
        self.switch_interval_ms = switch_interval_ms
        self._credentials: StoreCredentials | None = None
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
        """The MongoDB connection string of the running store, with its credentials."""
        if self._credentials is None:
            raise EmbeddedStoreError("the embedded store is not running")
        user = quote_plus(self._credentials.username)
        password = quote_plus(self._credentials.password)
        return (
            f"mongodb://{user}:{password}@{self.host}:{self.port}/"
            "?directConnection=true&authSource=admin"
        )

    @property
    def redacted_url(self) -> str:
        """`url` with the password masked, for banners and logs."""
        url = self.url
        assert self._credentials is not None
        return url.replace(quote_plus(self._credentials.password), "***", 1)

    @property
    def _anonymous_url(self) -> str:
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    def start(self) -> None:
        """Start the store and return once it answers a ping; raise EmbeddedStoreError if not."""
        if self._process is not None:
            raise EmbeddedStoreError("the embedded store is already started")
        executable = self._executable or find_executable()
        if not executable.exists():
            raise EmbeddedStoreError(NOT_INSTALLED)
        self.storage_path.mkdir(parents=True, exist_ok=True)
        self.storage_path.chmod(0o700)  # the store's files hold every tenant's data
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._check_requested_port()
        try:
            credentials = StoreCredentials.load_or_create(self.credentials_path)
        except ValueError as exc:
            raise EmbeddedStoreError(str(exc)) from None
        if not credentials.provisioned:
            self._provision(executable, credentials)
            credentials = credentials.marked_provisioned(self.credentials_path)
        self._credentials = credentials
        self._launch(executable, auth=True)
        write_private(self.url_path, self.url + "\n")
        # Who holds the store's files, and who started it: a later start tells an orphan.
        assert self.pid is not None
        write_private(self.pid_path, pid_record(self.pid))

    def _provision(self, executable: Path, credentials: StoreCredentials) -> None:
        """Create the store's user: the only start without authentication, on a free
        loopback port for the few seconds it takes, then stopped."""
        host, self.host = self.host, "127.0.0.1"
        requested, self._requested_port = self._requested_port, None
        try:
            self._launch(executable, auth=False)
            client: MongoClient[dict[str, object]] = MongoClient(
                self._anonymous_url, serverSelectionTimeoutMS=5000
            )
            with client:
                self._create_user(client, credentials)
        except PyMongoError as exc:
            raise EmbeddedStoreError(f"cannot create the embedded store's user: {exc}") from None
        finally:
            self.stop()
            self.host, self._requested_port = host, requested

    def _create_user(self, client: MongoClient[dict[str, object]], known: StoreCredentials) -> None:
        admin = client.admin
        try:
            admin.command("createUser", known.username, pwd=known.password, roles=["root"])
        except OperationFailure as exc:
            if exc.code != _USER_EXISTS:  # an earlier first start stopped before it finished
                raise
            admin.command("updateUser", known.username, pwd=known.password, roles=["root"])
        # Anyone who reached the port in that window and made a user of their own would
        # keep it after the restart with authentication: refuse to go on.
        for name in {"admin", *client.list_database_names()}:
            users = client[name].command("usersInfo", 1)["users"]
            strangers = [u["user"] for u in users if (u["user"], name) != (known.username, "admin")]
            if strangers:
                raise EmbeddedStoreError(
                    f"the embedded store in {self.storage_path} has users it did not create "
                    f"({', '.join(strangers)} in {name}): it was reached while being set up; "
                    "remove the directory and start again"
                )

    def _launch(self, executable: Path, *, auth: bool) -> None:
        if self._requested_port is not None:
            self._check_requested_port()
            self._start_on(executable, self._requested_port, auth=auth)
            return
        # A free port can be taken by someone else between the check and the store's bind.
        for attempt in range(_PORT_RACE_ATTEMPTS):
            try:
                self._start_on(executable, free_port(self.host), auth=auth)
            except _PortTaken:
                if attempt == _PORT_RACE_ATTEMPTS - 1:
                    raise
            else:
                return

    def _check_requested_port(self) -> None:
        if self._requested_port is not None and port_in_use(self.host, self._requested_port):
            raise EmbeddedStoreError(
                f"cannot start the embedded store: port {self._requested_port} "
                f"on {self.host} is already in use"
            )

    def _program(self, executable: Path) -> list[str]:
        """The store's command up to its options: the store run with a short switch interval
        when it is a Python program and one is asked for (`switch_interval_ms`)."""
        python = python_of(executable) if self.switch_interval_ms else None
        if python is None or self.switch_interval_ms is None:
            return [str(executable)]
        return [*python, str(_LAUNCHER), f"{self.switch_interval_ms / 1000:g}", str(executable)]

    def _start_on(self, executable: Path, port: int, *, auth: bool) -> None:
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        command = [
            *self._program(executable),
            "--host",
            self.host,
            "--port",
            str(port),
            "--storage-path",
            str(self.storage_path),
            # Standalone: it then keeps no oplog, which made each upsert about 40% dearer,
            # and nothing here uses what an oplog serves (change streams, transactions).
            "--standalone",
            "--cache-size",
            self.cache_size,
        ]
        if auth:
            command.append("--auth")
        if self.journaled:
            # Each commit is in the log on disk before it is acknowledged: a kill -9 of
            # the store loses nothing it acknowledged, whatever the client asked for.
            command.append("--sync-on-commit")
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
                env=_store_environment(),
                start_new_session=True,
                preexec_fn=dies_with_parent(),  # noqa: PLW1509 - one prctl call, no locks
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
            self._check_start_interrupted()
            returncode = self._process.poll()
            if returncode is not None:
                tail = self._log_tail(log_offset)
                cause = f"the embedded store exited at start (exit code {returncode})"
                if _ADDRESS_IN_USE in tail:
                    raise _PortTaken(f"{cause}: port {self._port} is already in use\n{tail}")
                if LOCKED_BY_ANOTHER in tail:
                    raise EmbeddedStoreError(f"{cause}: {lock_holder_line(self.storage_path)}")
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
        # `ping` needs no authentication, so this works before the user exists.
        client: MongoClient[dict[str, object]] = MongoClient(
            self._anonymous_url, serverSelectionTimeoutMS=300, connectTimeoutMS=300
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
