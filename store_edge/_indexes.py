"""Indexes a collection needs, created idempotently at start-up."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import IndexModel
from pymongo.asynchronous.collection import AsyncCollection

from ._errors import translated

__all__ = ["Index", "ensure_indexes"]


@dataclass(slots=True, frozen=True)
class Index:
    """Keys as (field, 1 or -1) pairs, in order; `unique` makes them a uniqueness rule."""

    keys: tuple[tuple[str, int], ...]
    unique: bool = False


async def ensure_indexes(
    collection: AsyncCollection[dict[str, Any]], indexes: Sequence[Index]
) -> None:
    """Create the indexes that do not exist yet; StoreError if the store refuses."""
    async with translated(f"the indexes of {collection.name}"):
        await collection.create_indexes(
            [IndexModel(list(index.keys), unique=index.unique) for index in indexes]
        )
