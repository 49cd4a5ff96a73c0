"""A subscription's `q` through Relationships (`managedBy{name}=="Acme"`, clause 4.9 with
4.5.23) tested on one changed entity, as Query Entities tests it.

Resolved only for a subscription whose other conditions already hold (`Match.pending`):
the entity's own Relationship targets are read, at most `max_level` Relationships deep and
`max_entities` entities per change (CONTESTO_JOIN_MAX_LEVEL, CONTESTO_JOIN_MAX_ENTITIES),
each entity once; the term then compares the Relationship with the targets that satisfy
its condition, so the outer q is decided by the same evaluator as any other q.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from context_broker._errors import TooManyResults
from context_broker._linked import relationship_targets
from context_broker._linked_q import LinkedQuery, with_targets
from context_broker._query._evaluate import q_holds
from context_broker._query._to_mongo import Expand

Document = dict[str, Any]
Reader = Callable[[Sequence[str]], Awaitable[dict[str, Document]]]


@dataclass(slots=True)
class LinkedReads:
    """The linked entities one change may read, each read once, within the join bounds."""

    read: Reader
    max_level: int
    max_entities: int
    seen: dict[str, Document | None] = field(default_factory=dict)

    async def entities(self, ids: Sequence[str]) -> list[Document]:
        """The entities of `ids` the tenant holds, in order; TooManyResults past the bound."""
        wanted = [entity_id for entity_id in dict.fromkeys(ids) if entity_id not in self.seen]
        if wanted:
            if len(self.seen) + len(wanted) > self.max_entities:
                raise TooManyResults(
                    f"a subscription's linked q reaches more than {self.max_entities} entities "
                    "(CONTESTO_JOIN_MAX_ENTITIES)"
                )
            found = await self.read(wanted)
            self.seen.update((entity_id, found.get(entity_id)) for entity_id in wanted)
        return [doc for doc in (self.seen[entity_id] for entity_id in ids) if doc is not None]


async def linked_q_holds(
    linked: LinkedQuery, entity: Document, expand: Expand, reads: LinkedReads, depth: int = 0
) -> bool:
    """Whether `entity` satisfies the q with its linked terms; a term deeper than
    `reads.max_level` Relationships never holds."""
    if linked.conditions and depth >= reads.max_level:
        return False
    targets: list[list[str]] = []
    for relationship, condition in zip(linked.relationships, linked.conditions, strict=True):
        found = await reads.entities(relationship_targets(entity, expand(relationship)))
        targets.append(
            [
                doc["_id"]
                for doc in found
                if await linked_q_holds(condition, doc, expand, reads, depth + 1)
            ]
        )
    return q_holds(with_targets(linked.query, targets), entity, expand)
