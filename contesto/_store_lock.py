"""Who holds the embedded store's files: WiredTiger locks `WiredTiger.lock` while a store
has the directory open, so a second store on it exits at once. The lock dies with its
process; a store that outlived the process that started it is an orphan, which a new
stack stops."""

from __future__ import annotations

import fcntl
import os
import signal
import struct
import time
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "LOCKED_BY_ANOTHER",
    "PID_FILE",
    "StoreLocked",
    "clear_orphaned_store",
    "lock_holder",
    "lock_holder_line",
    "pid_record",
]

LOCK_FILE = "WiredTiger.lock"
# What the store writes to its log when another process holds the lock.
LOCKED_BY_ANOTHER = "already being managed by another process"
# "<store PID> <PID of the process that started it>", written at each start.
PID_FILE = "store.pid"
_ORPHAN_STOP_S = 5.0
# struct flock on Linux (64-bit): l_type, l_whence, l_start, l_len, l_pid.
_FLOCK = "hhqqi4x"


class StoreLocked(RuntimeError):
    """Another process holds the store's files, and nothing proves it an orphan."""


def pid_record(store_pid: int) -> str:
    """The PID file's text for a store this process starts."""
    return f"{store_pid} {os.getpid()}\n"


def lock_holder(storage_path: Path) -> int | None:
    """The PID of the process that holds the store's files locked, or None."""
    try:
        fd = os.open(storage_path / LOCK_FILE, os.O_RDWR)
    except OSError:
        return None
    try:
        probe = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, probe)
    except OSError:
        return None
    finally:
        os.close(fd)
    kind, _whence, _start, _length, pid = struct.unpack(_FLOCK, answer)
    return pid if kind != fcntl.F_UNLCK and pid > 0 else None


def lock_holder_line(storage_path: Path) -> str:
    """Why a store cannot open `storage_path`, naming the process that holds it."""
    pid = lock_holder(storage_path)
    if pid is None:
        return f"another process held the store's files in {storage_path}"
    return (
        f"the store's files in {storage_path} are locked by process {pid} "
        f"({_command_line(pid)}): another store runs on this directory; stop it "
        f"(kill {pid}) or choose another data directory"
    )


def clear_orphaned_store(storage_path: Path, say: Callable[[str], None]) -> None:
    """Stop a store on `storage_path` whose starter is dead; raise StoreLocked when the
    lock's holder is any other process (a store with a living owner, or a stranger)."""
    holder = lock_holder(storage_path)
    if holder is None:
        return
    store_pid, owner = _recorded_pids(storage_path)
    if holder != store_pid or owner is None or _alive(owner):
        raise StoreLocked(lock_holder_line(storage_path))
    say(
        f"contesto up: the store (PID {holder}) that a stack which ended without stopping it "
        f"(PID {owner}) left on {storage_path} still runs: stopping it"
    )
    _stop_pid(holder)
    if lock_holder(storage_path) is not None:
        raise StoreLocked(lock_holder_line(storage_path))


def _recorded_pids(storage_path: Path) -> tuple[int | None, int | None]:
    """The store's PID and its starter's, as the last start recorded them."""
    try:
        store, owner = (int(word) for word in (storage_path / PID_FILE).read_text().split())
    except (OSError, ValueError):
        return None, None
    return store, owner


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _command_line(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "command line unknown"
    return " ".join(arg.decode(errors="replace") for arg in argv if arg)[:200]


def _stop_pid(pid: int) -> None:
    """SIGTERM, then SIGKILL if it still runs after the grace period."""
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + _ORPHAN_STOP_S
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    except ProcessLookupError:
        return
