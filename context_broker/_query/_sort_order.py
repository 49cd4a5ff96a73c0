"""The store's sort order, for the values the broker orders itself: when a query that
would make the store sort a whole type is read range by range instead (`_plan.RangeWalk`),
the broker keeps the first rows of each range in the order the store would give.

MongoDB orders values of different kinds by kind first (null or missing, numbers,
strings, objects, arrays, binary data, ObjectId, booleans, dates), then by value; strings
by their UTF-8 bytes, which is the order of their code points. Only kinds JSON values and
timestamps take are ordered here: another kind on a sort path (an array, an object, binary
data, NaN) is `Unorderable`, and the caller lets the store order that query as before.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from context_broker._query._plan import SortKey as OrderKey

_NULL, _NUMBER, _STRING, _BOOLEAN, _DATE = 1, 2, 3, 8, 9
_MISSING = object()

SortKey = tuple[Any, ...]


class Unorderable(Exception):
    """A value on a sort path the broker does not order as the store does."""


class _Descending:
    """A sort key component in the reverse order."""

    __slots__ = ("key",)

    def __init__(self, key: tuple[int, Any]) -> None:
        self.key = key

    def __lt__(self, other: _Descending) -> bool:
        return other.key < self.key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and self.key == other.key

    __hash__ = None  # type: ignore[assignment]


def sort_key(row: Mapping[str, Any], sort: Sequence[tuple[str, int]]) -> SortKey:
    """The key that orders `row` (a document, or a projection of its sort fields) as the
    store orders it by `sort` (fields, 1 ascending or -1 descending)."""
    parts: list[Any] = []
    for path, direction in sort:
        value = _kind_and_value(_at(row, path))
        parts.append(value if direction > 0 else _Descending(value))
    return tuple(parts)


def distance_sort_key(row: Mapping[str, Any], order: Sequence[OrderKey]) -> SortKey:
    """The key that orders `row` by an orderBy with keys by distance (clause 4.23.2): an
    entity whose attribute is a GeoProperty by its distance, then one whose attribute is
    another kind by value, then one without the attribute; other keys as the store orders."""
    parts: list[Any] = []
    for key in order:
        if key.distance_from is None:
            parts.extend(sort_key(row, ((key.field, -1 if key.descending else 1),)))
            continue
        attribute = _at(row, key.field)
        if not isinstance(attribute, Mapping):
            parts.append((3, 0))
        elif attribute.get("type") == "GeoProperty" and isinstance(attribute.get("value"), dict):
            metres = key.distance_from.metres_to(attribute["value"])
            parts.append((0, -metres if key.descending else metres))
        else:
            try:
                parts.append((1, _kind_and_value(attribute.get("value"))))
            except Unorderable:
                parts.append((2, 0))
    return tuple(parts)


def _at(row: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path; an array on the way is Unorderable (the store then
    orders by one of several values)."""
    current: Any = row
    for name in path.split("."):
        if isinstance(current, list):
            raise Unorderable(path)
        if not isinstance(current, Mapping):
            return _MISSING
        current = current.get(name, _MISSING)
    return current


def _kind_and_value(value: Any) -> tuple[int, Any]:
    if value is None or value is _MISSING:
        return (_NULL, 0)
    if isinstance(value, bool):
        return (_BOOLEAN, value)
    if isinstance(value, int | float):
        if isinstance(value, float) and math.isnan(value):
            raise Unorderable("NaN")
        return (_NUMBER, value)
    if isinstance(value, str):
        return (_STRING, value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return (_DATE, value)
    raise Unorderable(type(value).__name__)
