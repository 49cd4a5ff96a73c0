"""What the broker tells the subscription side after each acknowledged write: the seam
between the NGSI-LD operations and notification delivery."""

from __future__ import annotations

import asyncio
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
        """Whether the tenant's changes are wanted: only then are they reported."""
        ...

    async def needs_documents(self, tenant: str | None) -> bool:
        """Whether the tenant's changes must hold the whole entity before and after: only
        then do writes read what they do not need themselves. Otherwise `before` may be
        None for an update, and `after` hold only the attributes the write stamped, with
        the entity's id, types, attribute names and modifiedAt."""
        ...

    async def entities_changed(self, changes: Sequence[EntityChange]) -> None: ...


class NoChanges:
    """The sink of a broker without subscriptions delivery: changes go nowhere."""

    async def listens(self, tenant: str | None) -> bool:
        return False

    async def needs_documents(self, tenant: str | None) -> bool:
        return False

    async def entities_changed(self, changes: Sequence[EntityChange]) -> None:
        return None


NO_CHANGES: ChangeSink = NoChanges()


class ChangeSinks:
    """Several sinks told of the same writes (notifications and history): a tenant's
    changes are read while any of them listens, and each sink is told only of the changes
    of tenants it listens to; all of them before the write is acknowledged."""

    def __init__(self, *sinks: ChangeSink) -> None:
        self.sinks = sinks

    async def listens(self, tenant: str | None) -> bool:
        for sink in self.sinks:
            if await sink.listens(tenant):
                return True
        return False

    async def needs_documents(self, tenant: str | None) -> bool:
        for sink in self.sinks:
            if await sink.listens(tenant) and await sink.needs_documents(tenant):
                return True
        return False

    async def entities_changed(self, changes: Sequence[EntityChange]) -> None:
        tenants = {change.tenant for change in changes}
        told = []
        for sink in self.sinks:
            listened = {tenant for tenant in tenants if await sink.listens(tenant)}
            wanted = [change for change in changes if change.tenant in listened]
            if wanted:
                told.append(sink.entities_changed(wanted))
        await asyncio.gather(*told)
