"""Bulk writes committed once: a store that journals every commit (the embedded store with
--sync-on-commit) then journals a batch of entities once instead of once per entity.

Only a bulk write that succeeds whole is committed this way; one with a write error, a
write conflict or a store without multi-document transactions (a MongoDB without a
replica set) answers None, and the caller writes entity by entity as before, so each
entity still fails or succeeds on its own.

The documents a bulk write depends on are read in the same transaction: the store refuses
the commit (a write conflict) when another writer changed one of them after that read, so
the operations may leave out what the read shows they need not do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bson.errors import InvalidDocument
from pymongo import DeleteOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import OperationFailure
from pymongo.results import BulkWriteResult

__all__ = ["SingleCommitWriter"]

# IllegalOperation: "Transaction numbers are only allowed on a replica set member or mongos".
_NO_TRANSACTIONS = 20


class SingleCommitWriter:
    """Runs bulk writes of one collection in a transaction while the store allows it."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self._collection = collection
        self._supported = True

    async def bulk_write_after_read(
        self,
        ids: Sequence[Any],
        projection: Mapping[str, Any] | None,
        operations_for: Callable[[list[dict[str, Any]]], Sequence[UpdateOne]],
    ) -> tuple[list[dict[str, Any]], BulkWriteResult] | None:
        """Read the documents of `ids` (those that exist), then write the operations
        `operations_for` makes of them, in one commit: the documents as read and the
        result, or None when nothing was written (fewer than two ids, a write error, or a
        document changed by another writer since the read)."""
        if not self._supported or len(ids) < 2:
            return None
        client = self._collection.database.client
        try:
            async with (
                client.start_session() as session,
                await session.start_transaction(),
            ):
                cursor = self._collection.find(
                    {"_id": {"$in": list(ids)}}, projection, session=session
                )
                found = await cursor.to_list()
                result = await self._collection.bulk_write(
                    list(operations_for(found)), ordered=False, session=session
                )
                return found, result
        except OperationFailure as error:
            if error.code == _NO_TRANSACTIONS:
                self._supported = False
            return None
        except (InvalidDocument, OverflowError):
            return None

    async def delete_all(self, filters: Sequence[dict[str, Any]]) -> bool:
        """Delete one document per filter in one commit, all or none: False (nothing
        deleted) when a filter matched nothing, e.g. a document written in between."""
        if not self._supported or len(filters) < 2:
            return False
        client = self._collection.database.client
        try:
            async with (
                client.start_session() as session,
                await session.start_transaction(),
            ):
                result = await self._collection.bulk_write(
                    [DeleteOne(found) for found in filters], ordered=False, session=session
                )
                if result.deleted_count != len(filters):
                    raise _NotAll
        except _NotAll:
            return False
        except OperationFailure as error:
            if error.code == _NO_TRANSACTIONS:
                self._supported = False
            return False
        return True


class _NotAll(Exception):
    """Aborts a transaction that would not delete every document it was given."""
