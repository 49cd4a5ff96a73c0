"""Purge Entities (ETSI GS CIM 009 V1.8 clause 5.6.21, DELETE /entities): what a purge
does to each selected entity. Pure: the operation (`Broker.purge_entities`) selects the
entities in bounded pages and writes each change.

Without `drop` or `keep` the selected entities are deleted; with `drop` they lose the
attributes named, with `keep` every attribute but those named, and they stay.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from context_broker._entities import set_instances
from context_broker._errors import BadRequestData
from context_broker._names import encode_field

Document = dict[str, Any]


@dataclass(slots=True, frozen=True)
class Purge:
    """`drop` or `keep` (expanded attribute names); neither deletes the entities."""

    drop: frozenset[str] | None = None
    keep: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.drop is not None and self.keep is not None:
            raise BadRequestData("Purge Entities takes drop or keep, not both")

    @property
    def deletes_entities(self) -> bool:
        return self.drop is None and self.keep is None

    def removed(self, doc: Document) -> list[str]:
        """The entity's attributes (expanded names) this purge removes."""
        names: list[str] = doc["an"]
        if self.drop is not None:
            return [name for name in names if name in self.drop]
        if self.keep is not None:
            return [name for name in names if name not in self.keep]
        return list(names)

    def apply(self, doc: Document, now: datetime) -> bool:
        """Remove the attributes from `doc` in place; False when it had none of them."""
        removed = self.removed(doc)
        for name in removed:
            set_instances(doc, encode_field(name), [])
        if removed:
            doc["modifiedAt"] = now
            doc["v"] = doc.get("v", 0) + 1
        return bool(removed)
