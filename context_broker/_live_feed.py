"""The control room's live feed: the ids of the entities each write changed, handed to
the viewers of their tenant connected to this process (`_http/_control_room.py` streams
them as Server-Sent Events).

A `ChangeSink` like the notification queue: it listens to a tenant only while a viewer
of that tenant is connected, so writes read nothing more for a tenant nobody watches.
A viewer that falls behind is not waited for: its queue keeps the newest changes and
says it lost some, and the page reads the tenant's entities again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from context_broker._subscriptions._changes import EntityChange

__all__ = ["EntityTouched", "LiveFeed", "Viewer"]

VIEWER_BACKLOG = 1024


@dataclass(slots=True, frozen=True)
class EntityTouched:
    """An entity a write changed: `deleted` when the write removed it."""

    entity_id: str
    deleted: bool


class Viewer:
    """One connected page: the changes of its tenant not yet sent to it."""

    def __init__(self, backlog: int = VIEWER_BACKLOG) -> None:
        self._pending: dict[str, EntityTouched] = {}
        self._backlog = backlog
        self._woken = asyncio.Event()
        self.lost_changes = False

    def offer(self, touched: EntityTouched) -> None:
        # One pending change per entity: the page reads the entity as it is now anyway.
        self._pending.pop(touched.entity_id, None)
        self._pending[touched.entity_id] = touched
        if len(self._pending) > self._backlog:
            self._pending.pop(next(iter(self._pending)))
            self.lost_changes = True
        self._woken.set()

    async def next_changes(self, timeout_s: float) -> list[EntityTouched]:
        """The changes pending, waiting up to `timeout_s` for one; [] when none came."""
        if not self._pending:
            try:
                await asyncio.wait_for(self._woken.wait(), timeout_s)
            except TimeoutError:
                return []
        self._woken.clear()
        taken = list(self._pending.values())
        self._pending.clear()
        return taken


class LiveFeed:
    """The viewers connected to this process, by tenant; a `ChangeSink`."""

    def __init__(self) -> None:
        self._viewers: dict[str | None, set[Viewer]] = {}

    @contextmanager
    def watching(self, tenant: str | None) -> Iterator[Viewer]:
        """A viewer of the tenant's changes for as long as the block runs."""
        viewer = Viewer()
        self._viewers.setdefault(tenant, set()).add(viewer)
        try:
            yield viewer
        finally:
            viewers = self._viewers.get(tenant)
            if viewers is not None:
                viewers.discard(viewer)
                if not viewers:
                    del self._viewers[tenant]

    async def listens(self, tenant: str | None) -> bool:
        return tenant in self._viewers

    async def needs_documents(self, tenant: str | None) -> bool:
        return False  # which entity, and whether it is gone

    async def entities_changed(self, changes: Sequence[EntityChange]) -> None:
        for change in changes:
            touched = EntityTouched(change.entity_id, deleted=change.after is None)
            for viewer in self._viewers.get(change.tenant, ()):
                viewer.offer(touched)
