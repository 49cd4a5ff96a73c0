"""The API processes of `contesto up --workers N`, each a supervised child serving the one
listening socket that `contesto up` bound (see docs/operations.md, "Several workers")."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping

from contesto._child import ChildProcess
from contesto._settings import StackSettings

__all__ = ["ApiChild", "ApiChildError"]


class ApiChildError(RuntimeError):
    """An API process did not start."""


class ApiChild(ChildProcess):
    """API process number `index`, its log in DATA_DIR/api-INDEX.log; a context manager."""

    _error = ApiChildError
    # Requests under way get 1 s of uvicorn's graceful shutdown, the lifespan the rest.
    _stop_timeout_s = 2.5

    def __init__(
        self,
        settings: StackSettings,
        index: int,
        listening: socket.socket,
        env: Mapping[str, str],
        start_timeout_s: float = 30.0,
    ):
        self.index = index
        self._listening = listening
        self._env = env
        self._start_timeout_s = start_timeout_s
        data_dir = settings.data_dir.absolute()
        self.log_path = data_dir / f"api-{index}.log"
        self._ready_file = data_dir / f"api-{index}.ready"

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._ready_file.unlink(missing_ok=True)
        fd = self._listening.fileno()
        command = [sys.executable, "-m", "contesto._api_worker", str(fd), str(self._ready_file)]
        offset = self._spawn(command, env={**os.environ, **self._env}, pass_fds=(fd,))
        self._wait_until(self._ready_file.exists, offset, f"API process {self.index} did not start")

    def stop(self, timeout_s: float | None = None) -> None:
        super().stop(timeout_s)
        self._ready_file.unlink(missing_ok=True)
