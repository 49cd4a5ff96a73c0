"""Cancel background tasks and wait until they have ended, whatever they were awaiting."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

__all__ = ["cancel_and_wait"]

_RETRY_S = 0.1


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel `tasks` until each has ended. On Python 3.11, `asyncio.wait_for` (which the
    store driver awaits in) can swallow a cancellation that races with its own timeout,
    and the task then goes on as if never cancelled: it is cancelled again."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=_RETRY_S)
