"""What the broker tells the subscription side after each acknowledged write: the seam
between the NGSI-LD operations and notification delivery."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

Document = dict[str, Any]


@dataclass(slots=True, frozen=True)
class EntityChange:
    """One entity's change, as stored documents: `before` None for a creation, `after` None
    for a deletion. `Change.between` (`_matching.py`) tells what changed."""

    tenant: str | None
    entity_id: str
    before: Document | None
    after: Document | None


class ChangeSink(Protocol):
    """Receives the changes of every acknowledged write, in the order they were made."""

    async def listens(self, tenant: str | None) -> bool:
        """Whether the tenant's changes are wanted: only then do writes read the entities
        before and after them."""
        ...

    async def entities_changed(self, changes: Sequence[EntityChange]) -> None: ...


class NoChanges:
    """The sink of a broker without subscriptions delivery: changes go nowhere."""

    async def listens(self, tenant: str | None) -> bool:
        return False

    async def entities_changed(self, changes: Sequence[EntityChange]) -> None:
        return None


NO_CHANGES: ChangeSink = NoChanges()
