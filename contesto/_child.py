"""The stack's child processes: start one with its output in a log, wait until it is ready,
stop it in order."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

from contesto._parent_death import dies_with_parent

__all__ = ["ChildProcess", "ChildServer", "describe_exit", "log_tail", "stop_process"]

_LOG_TAIL_LINES = 20


def log_tail(path: Path, offset: int) -> str:
    """The last lines a child process wrote to its log since `offset`, indented."""
    try:
        with path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    lines = text.splitlines()[-_LOG_TAIL_LINES:]
    return "\n".join(f"  | {line}" for line in lines) or "  | (empty)"


def describe_exit(returncode: int) -> str:
    """How a child ended, in a log line's words: its exit code or the signal that killed it."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "unknown signal"
        return f"killed by signal {-returncode} ({name})"
    return f"exited with code {returncode}"


def stop_process(process: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    """SIGTERM, wait for a clean exit, SIGKILL after the grace period."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class ChildProcess:
    """A program run as a child process, its output appended to `log_path`; a context manager.

    A subclass sets `log_path`, `_start_timeout_s` and `_error` (what its failures raise) and
    writes `start` with `_spawn` and `_wait_until`.
    """

    _error: ClassVar[type[RuntimeError]] = RuntimeError
    # What the child gets when the thread that started it ends (the stack died).
    _death_signal: ClassVar[int] = signal.SIGTERM
    log_path: Path
    _start_timeout_s: float
    _stop_timeout_s: float = 10.0
    _process: subprocess.Popen[bytes] | None = None
    _start_interrupted: threading.Event | None = None

    def start(self) -> None:
        raise NotImplementedError

    def stop(self, timeout_s: float | None = None) -> None:
        """SIGTERM, wait for a clean exit (`timeout_s`, else the child's own grace period),
        SIGKILL after it. Idempotent."""
        process, self._process = self._process, None
        stop_process(process, self._stop_timeout_s if timeout_s is None else timeout_s)

    def restart(self) -> None:
        """Reap the process (dead or not) and start it again; `_error` if it does not start."""
        self.stop()
        self.start()

    def interrupt_start(self) -> None:
        """Make a start under way in another thread, and any later one, give up within a
        poll interval: the stack is stopping."""
        if self._start_interrupted is None:
            self._start_interrupted = threading.Event()
        self._start_interrupted.set()

    @property
    def returncode(self) -> int | None:
        """The exit status of a process that has ended, None while it runs or before a start."""
        return self._process.poll() if self._process is not None else None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _check_start_interrupted(self) -> None:
        if self._start_interrupted is not None and self._start_interrupted.is_set():
            self.stop(0)
            raise self._error("the start was interrupted: the stack is stopping")

    def _spawn(
        self,
        command: list[str],
        *,
        env: Mapping[str, str] | None = None,
        pass_fds: tuple[int, ...] = (),
    ) -> int:
        """Start `command` in its own session (a Ctrl-C at the terminal reaches us, and we stop
        the child in order), with the descriptors `pass_fds` open in it; return where its
        output starts in the log."""
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=pass_fds,
                preexec_fn=dies_with_parent(self._death_signal),  # noqa: PLW1509 - one prctl call, no locks
            )
        return offset

    def _wait_until(
        self, ready: Callable[[], bool], log_offset: int, failure: str, poll_s: float = 0.05
    ) -> None:
        """Return once `ready()` holds; if the child exits or the start timeout passes first,
        stop it and raise `_error` with `failure` and the tail of its log."""
        assert self._process is not None
        deadline = time.monotonic() + self._start_timeout_s
        while not ready():
            self._check_start_interrupted()
            if self._process.poll() is not None or time.monotonic() > deadline:
                tail = log_tail(self.log_path, log_offset)
                self.stop()
                raise self._error(f"{failure}:\n{tail}")
            time.sleep(poll_s)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ChildServer(ChildProcess):
    """A child process that serves on a port of `host` while it runs."""

    _name: ClassVar[str] = "the server"
    host: str
    _port: int | None = None
    _requested_port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise self._error(f"{self._name} is not running")
        return self._port

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout_s: float | None = None) -> None:
        """SIGTERM, wait for a clean exit, SIGKILL after the grace period. Idempotent."""
        self._port = None
        super().stop(timeout_s)

    def restart(self) -> None:
        """Start again on the same port: the other processes of the stack know it."""
        if self._port is not None:
            self._requested_port = self._port
        super().restart()
