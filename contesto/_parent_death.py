"""Children that die with the stack: on Linux each child asks the kernel for a signal when
the thread that started it ends, so a `contesto up` killed by SIGKILL leaves no orphans."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
from collections.abc import Callable

__all__ = ["dies_with_parent", "outlives_its_children"]

_PR_SET_PDEATHSIG = 1
_lasting_threads: set[int] = set()


def outlives_its_children() -> None:
    """Declare that the current thread ends only after the children it started: those
    get the death signal too (the main thread always does)."""
    _lasting_threads.add(threading.get_ident())


def dies_with_parent(signum: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A `preexec_fn` for Popen that ties the child's life to this thread, or None where the
    kernel has no such request (not Linux) or the thread may end first.

    The kernel sends the signal when the *thread* that forked the child ends, so only the
    main thread and threads that declared `outlives_its_children` ask for it: a child
    started from a passing worker thread would die with that thread."""
    lasting = threading.current_thread() is threading.main_thread() or (
        threading.get_ident() in _lasting_threads
    )
    if not sys.platform.startswith("linux") or not lasting:
        return None
    # Resolved before the fork: the child must not load libraries between fork and exec.
    prctl = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).prctl
    parent = os.getpid()

    def request() -> None:
        prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect
            os.kill(os.getpid(), signum)

    return request
