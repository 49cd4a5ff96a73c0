"""Queue inserts of concurrent writes made together: while one insert is under way, the
records of the writes that come meanwhile wait and go in the next one, so N writes in
flight cost about one journaled commit of the queue, not N. Each write still returns only
once its own records are durable. The history's instances (`_temporal/_recorder.py`) are
inserted the same way."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

Document = dict[str, Any]


class RecordInserts(Protocol):
    """Where the records go: the notification queue, or one tenant's history."""

    async def add(self, records: Sequence[Document]) -> None: ...


class GroupCommit:
    def __init__(self, queue: RecordInserts) -> None:
        self.queue = queue
        self._waiting: list[tuple[Sequence[Document], asyncio.Future[None]]] = []
        self._committer: asyncio.Task[None] | None = None

    async def add(self, records: Sequence[Document]) -> None:
        """Insert the records, with those of other writes waiting at the same time."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((records, done))
        if self._committer is None:
            self._committer = asyncio.create_task(self._commit_all(), name="queue-commit")
        await done

    async def _commit_all(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    await self.queue.add([record for records, _ in batch for record in records])
                except BaseException as error:
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(
                                error if isinstance(error, Exception) else RuntimeError(error)
                            )
                    if not isinstance(error, Exception):
                        raise
                    continue
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)
        finally:
            self._committer = None
