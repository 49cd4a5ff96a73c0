"""One `contesto up` per data directory: the stack holds an exclusive lock on
DATA_DIR/up.lock (with its PID inside) while it runs; the kernel drops it when the
process ends, however it ends."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

__all__ = ["StackLock", "StackLocked"]

LOCK_FILE = "up.lock"


class StackLocked(RuntimeError):
    """Another `contesto up` runs on the data directory."""


class StackLock:
    """The data directory's stack lock; `acquire` says whether an earlier stack crashed."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> int | None:
        """Take the lock; return the PID of a stack that ended without releasing its
        record (it crashed or was killed), None after a clean stop. StackLocked if held."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StackLocked(
                f"another `contesto up` (PID {holder}) runs on {self.path.parent}: "
                "stop it first, or choose another data directory"
            ) from None
        previous = os.pread(fd, 32, 0).decode(errors="replace").strip()
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return int(previous) if previous.isdigit() else None

    def release(self) -> None:
        """Empty the record (a clean stop) and drop the lock."""
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)
        os.close(self._fd)
        self._fd = None
