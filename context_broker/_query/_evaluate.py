"""`q` and `scopeQ` tested on one stored entity in memory, as the store would select it.

A term is decided by its store translation (`_to_mongo`), read here with MongoDB's own
rules for the few operators that translation emits, so a subscription's `q` and a query's
`q` cannot disagree; pattern terms are tested on RE2 as the query path tests them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from context_broker._query._patterns import PatternTest
from context_broker._query._q import And, Or, Pattern, Query
from context_broker._query._regex import compile_regex
from context_broker._query._scope import ScopeQuery, scope_q_to_mongo
from context_broker._query._to_mongo import Expand, pattern_fields, to_mongo

Document = dict[str, Any]


def q_holds(query: Query, doc: Document, expand: Expand) -> bool:
    """Whether the stored entity `doc` satisfies `query` (names expanded by `expand`)."""
    if isinstance(query, And):
        return all(q_holds(term, doc, expand) for term in query.terms)
    if isinstance(query, Or):
        return any(q_holds(term, doc, expand) for term in query.terms)
    if isinstance(query, Pattern):
        attribute, fields = pattern_fields(query.path, expand)
        test = PatternTest(compile_regex(query.regex, "q"), query.negated, attribute, fields)
        return test.holds(doc)
    return filter_holds(to_mongo(query, expand), doc)


def scope_holds(query: ScopeQuery, doc: Document) -> bool:
    """Whether the stored entity's `scope` satisfies a scope query."""
    return filter_holds(scope_q_to_mongo(query), doc)


def filter_holds(query: Mapping[str, Any], doc: Any) -> bool:
    """A MongoDB filter of the shapes the broker's translations emit, on one document."""
    for key, condition in query.items():
        if key == "$and":
            if not all(filter_holds(part, doc) for part in condition):
                return False
        elif key == "$or":
            if not any(filter_holds(part, doc) for part in condition):
                return False
        elif key == "$nor":
            if any(filter_holds(part, doc) for part in condition):
                return False
        elif not _field_holds(doc, key, condition):
            return False
    return True


def _field_holds(doc: Any, path: str, condition: Any) -> bool:
    return _condition_holds(list(_reached(doc, path)), condition)


def _condition_holds(reached: list[Any], condition: Any) -> bool:
    """A field's condition, given the values its path reaches."""
    if _is_operators(condition):
        return all(_operator_holds(reached, op, arg) for op, arg in condition.items())
    return _equals_any(_values(reached), condition)


def _operator_holds(reached: list[Any], op: str, arg: Any) -> bool:
    if op == "$exists":
        return bool(reached) == bool(arg)
    if op == "$ne":
        return not _equals_any(_values(reached), arg)
    if op == "$in":
        return any(_equals_any(_values(reached), item) for item in arg)
    if op == "$nin":
        return not any(_equals_any(_values(reached), item) for item in arg)
    if op in _ORDERING:
        return any(_ordered(value, arg, op) for value in _values(reached))
    if op == "$elemMatch":
        return any(
            isinstance(found, list) and any(_element_holds(item, arg) for item in found)
            for found in reached
        )
    if op == "$type":
        # `$type: "array"` looks at the field itself; other types also at array elements.
        seen = reached if arg == "array" else _values(reached)
        return any(_has_type(value, arg) for value in seen)
    if op == "$not":
        return not _condition_holds(reached, arg)
    if op == "$regex":
        pattern = re.compile(arg)
        return any(isinstance(v, str) and pattern.search(v) for v in _values(reached))
    raise ValueError(f"operator {op} is not evaluated in memory")


def _element_holds(element: Any, condition: Mapping[str, Any]) -> bool:
    """`$elemMatch`: operators apply to the element itself, a query to its members."""
    if _is_operators(condition):
        return all(_operator_holds([element], op, arg) for op, arg in condition.items())
    return isinstance(element, dict) and filter_holds(condition, element)


def _reached(doc: Any, path: str) -> Iterator[Any]:
    """The values at the end of a dotted path; arrays on the way are walked element-wise."""
    head, _, rest = path.partition(".")
    if isinstance(doc, list):
        for item in doc:
            if isinstance(item, dict):
                yield from _reached(item, path)
        if head.isdigit() and int(head) < len(doc):
            found = doc[int(head)]
            if rest:
                yield from _reached(found, rest)
            else:
                yield found
        return
    if not isinstance(doc, dict) or head not in doc:
        return
    found = doc[head]
    if rest:
        yield from _reached(found, rest)
    else:
        yield found


def _values(reached: list[Any]) -> list[Any]:
    """What a comparison sees: each reached value, and the elements of a reached array."""
    values: list[Any] = []
    for found in reached:
        values.append(found)
        if isinstance(found, list):
            values.extend(found)
    return values


def _has_type(value: Any, kind: str) -> bool:
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    raise ValueError(f"$type {kind} is not evaluated in memory")


_ORDERING = {"$gt", "$gte", "$lt", "$lte"}


def _bracket(value: Any) -> str | None:
    """MongoDB compares values of one type bracket only."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, datetime):
        return "date"
    return None


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _ordered(value: Any, arg: Any, op: str) -> bool:
    kind = _bracket(value)
    if kind is None or kind != _bracket(arg):
        return False
    if kind == "date":
        value, arg = _utc(value), _utc(arg)
    if op == "$gt":
        return bool(value > arg)
    if op == "$gte":
        return bool(value >= arg)
    if op == "$lt":
        return bool(value < arg)
    return bool(value <= arg)


def _equals_any(values: list[Any], wanted: Any) -> bool:
    return any(_equal(value, wanted) for value in values)


def _equal(value: Any, wanted: Any) -> bool:
    kind = _bracket(wanted)
    if kind is None:
        return bool(value == wanted) and type(value) is type(wanted)
    if kind != _bracket(value):
        return False
    if kind == "date":
        return _utc(value) == _utc(wanted)
    return bool(value == wanted)


def _is_operators(value: object) -> bool:
    return isinstance(value, dict) and bool(value) and all(str(k).startswith("$") for k in value)
