"""What a store answers fast and what it does not: the traits the query planner reads.

The planner (`_plan.py`) shapes every query from these values and from nothing else it
knows about the store, so a store's quirks live here, measured, in one place (see
docs/query.md for the figures).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StoreTraits:
    """How a store plans and answers a read, as far as the shape of a query depends on it."""

    one_field_filters: bool
    """The store looks a filter up by its first indexed field only and scans for a top-level
    `$or`/`$and`, and plans a filter of one field much faster than one of two: a selection
    is split into flat alternatives with the indexed condition first, a geo lookup carries
    no type condition (the broker tests the types), and a cell lookup with other conditions
    is preceded by a one-field probe."""
    max_lookups: int
    """The most lookups (flat alternatives) one selection is split into; beyond, it runs as
    one filter. Each lookup has a fixed cost (about 1-3 ms on the embedded store)."""
    max_ordered_by_ids: int
    """The most pattern matches the store orders (by an attribute or a collation) through a
    lookup of their ids; more are refused. The embedded store answers an `$in` of n ids in
    time growing with n squared."""
    reads_every_match: bool = False
    """The store reads (and counts) every entity a lookup selects before it skips and
    limits, however small the page: a page and a count of one type alone come from the
    type's id ranges and their counts (`_pages.py`), so the store reads the page's range only
    and no count walks the collection."""
    walk_documents: int = 0
    """The most entities of one type a read walks when a query would make the store walk
    the type (a `q` no index answers, a count, an order by an attribute): the store holds
    one lock over a read's whole walk, and another tenant's read waits for all of it. The
    walk is then read range by range (`_plan.RangeWalk`), a lock held for this many
    entities at a time (a few ms on the embedded store). 0: the store walks at once."""


EMBEDDED_STORE = StoreTraits(
    one_field_filters=True,
    max_lookups=32,
    max_ordered_by_ids=300,
    reads_every_match=True,
    walk_documents=128,
)
"""SecantusDB, measured on this project's machine (0.7.0b3)."""

MONGODB = StoreTraits(one_field_filters=False, max_lookups=32, max_ordered_by_ids=300)
"""MongoDB plans `$or` and compound filters from its indexes. Not selected by the broker:
the embedded store's shapes are also fast on MongoDB and keep answers identical on both,
and MongoDB's figures for the other shapes are not measured here."""

QUERY_TRAITS = EMBEDDED_STORE
"""The traits the broker plans with, on every store."""
