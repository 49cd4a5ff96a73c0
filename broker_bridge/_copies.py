"""The ledger of shared copies: which owner's entity was copied into which tenant.

The sharing stage records every copy it makes, and withdraws the copies whose source the
owner deleted (`SharingStage.withdraw_deleted_copies`); the ledger is what lets it ask
only about entities that were shared, and delete only where copies went.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from store_edge import store_operation

__all__ = ["CopyLedger", "SharedCopy"]

COLLECTION = "shared_copies"


@dataclass(slots=True, frozen=True)
class SharedCopy:
    """A copy of `owner`'s entity `entity_id` (of `entity_type`) held by tenant `target`."""

    owner: str
    target: str
    entity_id: str
    entity_type: str


class CopyLedger:
    """Record copies as they are queued; list and forget them by owner."""

    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self._copies = database[COLLECTION]

    @store_operation("recording shared copies")
    async def record(self, owner: str, target: str, copies: list[dict[str, Any]]) -> None:
        """Note the copies (fragments with `id` and `type`) queued for `target`."""
        operations = [
            UpdateOne(
                {"_id": _key(owner, target, copy["id"])},
                {
                    "$set": {
                        "owner": owner,
                        "target": target,
                        "entity": copy["id"],
                        "type": _first_type(copy.get("type")),
                    }
                },
                upsert=True,
            )
            for copy in copies
        ]
        if operations:
            await self._copies.bulk_write(operations, ordered=False)

    @store_operation("listing shared copies")
    async def by_owner(self) -> dict[str, list[SharedCopy]]:
        """Every recorded copy, by owner."""
        found: dict[str, list[SharedCopy]] = {}
        async for doc in self._copies.find({}):
            copy = SharedCopy(doc["owner"], doc["target"], doc["entity"], doc["type"])
            found.setdefault(copy.owner, []).append(copy)
        return found

    @store_operation("forgetting shared copies")
    async def forget(self, copies: list[SharedCopy]) -> None:
        if copies:
            keys = [_key(c.owner, c.target, c.entity_id) for c in copies]
            await self._copies.delete_many({"_id": {"$in": keys}})


def _key(owner: str, target: str, entity_id: str) -> str:
    # Slugs hold no space, and an entity id (a URI) comes last: the key is unambiguous.
    return f"{owner} {target} {entity_id}"


def _first_type(types: Any) -> str:
    if isinstance(types, list) and types:
        return str(types[0])
    return str(types)
