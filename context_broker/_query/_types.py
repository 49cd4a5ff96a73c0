"""Type selections (clause 4.17): as a MongoDB filter, and tested on an entity's types."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

TypeSelection = tuple[tuple[str, ...], ...]
"""A type query as OR of ANDs of expanded type IRIs; empty selects any type."""


def type_filter(types: TypeSelection) -> dict[str, Any]:
    """The selection as a MongoDB filter on the stored `type` list (non-empty selection)."""
    if all(len(conjunction) == 1 for conjunction in types):
        names = [conjunction[0] for conjunction in types]
        return {"type": names[0] if len(names) == 1 else {"$in": names}}
    alternatives: list[dict[str, Any]] = [
        {"type": conjunction[0] if len(conjunction) == 1 else {"$all": list(conjunction)}}
        for conjunction in types
    ]
    return alternatives[0] if len(alternatives) == 1 else {"$or": alternatives}


def has_types(entity_types: Collection[str], types: TypeSelection) -> bool:
    """Whether an entity of these types is selected."""
    return not types or any(
        all(name in entity_types for name in conjunction) for conjunction in types
    )
