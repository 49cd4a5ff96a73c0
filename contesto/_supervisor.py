"""The stack's children watched from a thread of their own: one that dies is started
again after a backoff, with a line saying how it ended; too many deaths in a window end
the stack with that cause; at the end all are stopped in order within a deadline."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from contesto._child import ChildProcess, describe_exit
from contesto._parent_death import outlives_its_children

__all__ = ["RestartPolicy", "Supervisor"]

_POLL_S = 0.2
# Time kept for each child still to stop after the current one.
_STOP_RESERVE_S = 1.5


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """At most `max_restarts` restarts of one child within `window_s`; the waits before
    them double from `first_backoff_s` up to `max_backoff_s`."""

    max_restarts: int = 5
    window_s: float = 60.0
    first_backoff_s: float = 0.5
    max_backoff_s: float = 8.0


class Supervisor:
    """Keeps `children` (named, in start order) running until `stop`.

    Children it restarts are started from its thread, which lives until it has stopped
    them: a child started with `dies_with_parent` is tied to the thread that forked it."""

    def __init__(
        self,
        children: Sequence[tuple[str, ChildProcess]],
        policy: RestartPolicy,
        say: Callable[[str], None],
        give_up: Callable[[str], None],
        on_restart: Callable[[str], None] | None = None,
    ) -> None:
        self._children = list(children)
        self._policy = policy
        self._say = say
        self._give_up = give_up
        self._on_restart = on_restart
        self._stopping = threading.Event()
        self._stop_deadline = 0.0
        self._restarts: dict[str, deque[float]] = {name: deque() for name, _ in children}
        self._thread = threading.Thread(target=self._run, name="contesto-supervisor", daemon=True)
        self.failure: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, within_s: float) -> None:
        """Stop every child, last started first, all within `within_s`; then return."""
        self._stop_deadline = time.monotonic() + within_s
        self._stopping.set()
        for _, child in self._children:
            child.interrupt_start()
        if self._thread.is_alive():
            self._thread.join(within_s + 1.0)
        else:  # never started, or already gone: stop them from here
            self._stop_all()

    def _run(self) -> None:
        outlives_its_children()
        try:
            while not self._stopping.wait(_POLL_S) and self.failure is None:
                for name, child in self._children:
                    returncode = child.returncode
                    if returncode is not None and not self._stopping.is_set():
                        self._recover(name, child, describe_exit(returncode))
        finally:
            self._stopping.wait()
            self._stop_all()

    def _recover(self, name: str, child: ChildProcess, how: str) -> None:
        """Restart `child` until it runs, the policy gives up, or the stack stops."""
        while not self._stopping.is_set():
            restarts = self._restarts[name]
            now = time.monotonic()
            while restarts and now - restarts[0] > self._policy.window_s:
                restarts.popleft()
            if len(restarts) >= self._policy.max_restarts:
                self.failure = (
                    f"{name} {how}, after {len(restarts)} restarts within "
                    f"{self._policy.window_s:g} s; see {child.log_path}"
                )
                self._say(f"contesto up: {self.failure}: stopping the stack")
                self._give_up(self.failure)
                return
            backoff = min(
                self._policy.first_backoff_s * 2 ** len(restarts), self._policy.max_backoff_s
            )
            self._say(
                f"contesto up: {name} {how}; restarting it in {backoff:g} s (restart "
                f"{len(restarts) + 1} of at most {self._policy.max_restarts} within "
                f"{self._policy.window_s:g} s)"
            )
            restarts.append(now)
            if self._stopping.wait(backoff):
                return
            try:
                child.restart()
            except RuntimeError as exc:
                how = f"did not start again ({exc})"
                continue
            self._say(f"contesto up: {name} runs again (PID {child.pid})")
            if self._on_restart is not None:
                self._on_restart(name)
            return

    def _stop_all(self) -> None:
        remaining_children = len(self._children)
        for _, child in reversed(self._children):
            remaining_children -= 1
            left = self._stop_deadline - time.monotonic()
            child.stop(max(0.2, left - _STOP_RESERVE_S * remaining_children))
