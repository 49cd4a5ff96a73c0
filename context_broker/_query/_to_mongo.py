"""A parsed `q` (ETSI GS CIM 009 clause 4.9) as a MongoDB filter over stored entity documents.

The filter is a plain dict. Each query term becomes conditions on the members of the stored
attribute instance (see `context_broker._attributes`), chosen so that MongoDB's own rules
give the spec's: comparisons only match values of the query value's type (MongoDB compares
within a type bracket), an array value matches when one of its elements does, and `!=`
requires the target element to exist.

A term matches when any instance of the attribute satisfies it: the default instance
(`attrs.<name>`) or one with a datasetId (`ds.<name>`, an array), as clause 4.9 asks where
no datasetId is addressed. A LanguageProperty's strings (kept in `lv`) are values too, so a
term without a language (`name=="Firenze"`) matches any language, as `name[*]` does.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from context_broker._errors import BadRequestData
from context_broker._names import encode_field
from context_broker._query._q import (
    And,
    AttrPath,
    Comparison,
    Exists,
    Or,
    Pattern,
    Query,
    Range,
    Scalar,
    ValueList,
)
from context_broker._query._regex import anchored_prefix

Filter = dict[str, Any]
Expand = Callable[[str], str]

NEVER: Filter = {"_id": {"$in": []}}
"""A filter no document matches."""

_ORDERING = {">": "$gt", ">=": "$gte", "<": "$lt", "<=": "$lte"}
# Members of an instance that a path may name as its last element (`temperature.observedAt`).
_TIMESTAMPS = frozenset({"observedAt", "createdAt", "modifiedAt"})
_INSTANCE_MEMBERS = _TIMESTAMPS | {"unitCode"}
# Members that always hold an array (a ListProperty's values, a LanguageProperty's strings).
_ARRAYS = frozenset({"valueList", "lv"})
_INT64 = 2**63


@dataclass(frozen=True, slots=True)
class _Target:
    """Where a path's target element and its value live in one stored instance."""

    element: tuple[str, ...]  # the element exists when any of these fields does (none: the
    # instance itself, always there)
    data: tuple[str, ...]  # JSON values: Property value, ListProperty valueList, JSON members
    texts: tuple[str, ...] = ()  # strings only: a LanguageProperty's (`lv`)
    links: tuple[str, ...] = ()  # Relationship objects: == and != only (clause 4.9)
    vocab: tuple[str, ...] = ()  # VocabProperty IRIs: the query value is expanded first
    languages: bool = False  # [*]: any string of a languageMap
    timestamps: bool = False  # observedAt/createdAt/modifiedAt, stored as BSON datetimes


def to_mongo(query: Query, expand: Expand) -> Filter:
    """The MongoDB filter of a parsed query; `expand` maps a short name to its IRI."""
    if isinstance(query, And):
        return _all(to_mongo(term, expand) for term in query.terms)
    if isinstance(query, Or):
        return _any(to_mongo(term, expand) for term in query.terms)
    attribute = encode_field(expand(query.path.attribute))
    default = _term(query, _target(query.path, expand, f"attrs.{attribute}"), expand)
    instances = f"ds.{attribute}"
    if isinstance(query, Exists) and query.negated:
        # No instance at all has the element (a path through the array: none of them).
        return _all([default, _term(query, _target(query.path, expand, instances), expand)])
    # Whether an attribute has datasetId instances is per entity, unknown up front: each
    # term becomes "the default instance matches, or a datasetId instance does". The query
    # is run as one filter per alternative (the embedded store scans for an $or), so the
    # default alternative keeps its value index, and the other starts with a condition
    # that only entities holding datasetId instances of the attribute meet, answered from
    # its own small index.
    one = _term(query, _target(query.path, expand, ""), expand)
    if one == NEVER:
        return default
    guard: Filter = {f"{instances}.datasetId": {"$gt": ""}}
    if one:
        # Every such instance has a datasetId: naming it keeps `one` a query on the
        # instance's members even when it is only `$or`/`$nor` (which the embedded store
        # would read as operators on a scalar element).
        guard[instances] = {"$elemMatch": {"datasetId": {"$exists": True}, **one}}
    return _any([default, guard])


def pattern_fields(path: AttrPath, expand: Expand) -> tuple[str, tuple[str, ...]]:
    """The stored attribute field a pattern term looks in, and the fields of one of its
    instances that hold the strings it tests."""
    target = _target(path, expand, "")
    return encode_field(expand(path.attribute)), target.data + target.texts


def _term(query: Query, target: _Target, expand: Expand) -> Filter:
    """The condition of one term on one instance."""
    if isinstance(query, Exists):
        if query.negated:
            return _all({field: {"$exists": False}} for field in target.element)
        return _exists(target)
    if isinstance(query, Pattern):
        return _pattern(target, query.regex, query.negated)
    assert isinstance(query, Comparison)
    return _comparison(target, query, expand)


def _target(path: AttrPath, expand: Expand, base: str) -> _Target:
    """The target of `path` in the instance at `base` (a document path; "" for an element of
    the `ds` array, whose members are matched by `$elemMatch`)."""
    sub_attributes = path.sub_attributes
    member = None
    if sub_attributes and sub_attributes[-1] in _INSTANCE_MEMBERS:
        member, sub_attributes = sub_attributes[-1], sub_attributes[:-1]
    for name in sub_attributes:
        base = _join(base, "sub", encode_field(expand(name)))
    if member is not None:
        if path.json_path:
            raise BadRequestData(f"q: {member} has no members to address with [...]")
        field = _join(base, member)
        return _Target(element=(field,), data=(field,), timestamps=member in _TIMESTAMPS)
    if path.json_path == ("*",):
        field = _join(base, "lv")
        return _Target(element=(field,), data=(), texts=(field,), languages=True)
    if path.json_path:
        # The trailing path enters a Property's or JsonProperty's compound value; a single
        # name may also be the language of a LanguageProperty (`name[it]`).
        data: tuple[str, ...] = (
            _join(base, "value", *path.json_path),
            _join(base, "json", *path.json_path),
        )
        if len(path.json_path) == 1:
            data += (_join(base, "languageMap", *path.json_path),)
        return _Target(element=data, data=data)
    return _Target(
        element=(base,) if base else (),
        data=(_join(base, "value"), _join(base, "valueList")),
        texts=(_join(base, "lv"),),
        links=(
            _join(base, "object"),
            _join(base, "objectList"),
            _join(base, "objectList", "object"),
        ),
        vocab=(_join(base, "vocab"),),
    )


def _join(*parts: str) -> str:
    return ".".join(part for part in parts if part)


def _exists(target: _Target) -> Filter:
    if not target.element:
        return {}
    return _any({field: {"$exists": True}} for field in target.element)


def _comparison(target: _Target, query: Comparison, expand: Expand) -> Filter:
    value = query.value
    if query.op in _ORDERING:
        if target.languages:
            raise BadRequestData(f"q: [*] takes ==, !=, ~= and !~=, not {query.op}")
        assert not isinstance(value, Range | ValueList)
        operator = _ORDERING[query.op]
        operands = _operands(value, target.timestamps, ordering=True)
        return _any(
            [{field: {operator: operand}} for field in target.data for operand in operands]
            + [{field: {operator: value}} for field in target.texts if isinstance(value, str)]
        )
    if isinstance(value, Range):
        if target.languages:
            raise BadRequestData("q: [*] takes single values or lists, not ranges")
        texts = target.texts if isinstance(value.lo, str) and isinstance(value.hi, str) else ()
        in_range = _any(_in_range(target, field, value) for field in target.data + texts)
        if query.op == "==":
            return in_range
        if in_range == NEVER:
            return _exists(target)
        return _all([_exists(target), {"$nor": [in_range]}])
    items = value.items if isinstance(value, ValueList) else (value,)
    candidates = _candidates(target, items, expand)
    if query.op == "==":
        return _any(
            {field: operands[0] if len(operands) == 1 else {"$in": operands}}
            for field, operands in candidates
        )
    # Unequal (clause 4.9): the target element exists and no value of it equals the query
    # value; a value of another data type counts as unequal. A member that is absent (the
    # attribute is of another kind) passes `$ne`/`$nin`, so all members can be required.
    return _all(
        [
            _exists(target),
            *(
                {field: {"$ne": operands[0]} if len(operands) == 1 else {"$nin": operands}}
                for field, operands in candidates
            ),
        ]
    )


def _candidates(
    target: _Target, items: Iterable[Scalar], expand: Expand
) -> list[tuple[str, list[Any]]]:
    """Each member that may hold the target value, with the stored forms the items take there."""
    data: list[Any] = []
    strings: list[str] = []
    for item in items:
        for operand in _operands(item, target.timestamps):
            # Typed, so that true and 1 (equal in Python, not in BSON) both stay.
            if not any(type(operand) is type(seen) and operand == seen for seen in data):
                data.append(operand)
        if isinstance(item, str) and item not in strings:
            strings.append(item)
    # Relationship objects are URIs (the broker refuses anything else), so only a
    # value that can be one is looked for there.
    uris = [text for text in strings if ":" in text]
    found = [(field, data) for field in target.data]
    found += [(field, strings) for field in target.texts]
    found += [(field, uris) for field in target.links]
    found += [(field, [expand(text) for text in strings]) for field in target.vocab]
    return [(field, operands) for field, operands in found if operands]


def _operands(value: Scalar, timestamps: bool, *, ordering: bool = False) -> list[Any]:
    """The BSON values that `value` is compared with.

    DateTimes inside a Property value are stored as the strings the client sent, so a
    DateTime matches both a BSON datetime and its UTC ISO 8601 text; for ordering, the text
    compares exactly with stored texts in the same form (`...:SSZ` or `...:SS.mmmZ`).
    """
    if isinstance(value, bool | str):
        return [value]
    if isinstance(value, int | float):
        return [_number(value)]
    if timestamps:
        if isinstance(value, datetime):
            return [value]
        if isinstance(value, date):
            return [datetime(value.year, value.month, value.day, tzinfo=UTC)]
        return []  # a Time never equals a date-time
    if isinstance(value, datetime):
        texts = _datetime_texts(value)
        return [value, texts[0]] if ordering else [value, *texts]
    if isinstance(value, date):
        return [value.isoformat()]
    text = value.isoformat()
    return [text[:-6] + "Z" if value.utcoffset() == timedelta(0) else text]


def _number(value: int | float) -> int | float:
    """BSON integers have 64 bits: larger ones compare as doubles."""
    if isinstance(value, float) or -_INT64 <= value < _INT64:
        return value
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _datetime_texts(value: datetime) -> list[str]:
    utc = value.astimezone(UTC).replace(tzinfo=None)
    seconds = utc.isoformat(timespec="seconds")
    with_millis = utc.isoformat(timespec="milliseconds") + "Z"
    return [seconds + "Z", with_millis] if utc.microsecond == 0 else [with_millis]


def _in_range(target: _Target, field: str, value: Range) -> Filter:
    """Both ends included; an array matches when one element lies in the range."""
    lows = _operands(value.lo, target.timestamps, ordering=True)
    highs = _operands(value.hi, target.timestamps, ordering=True)
    ranges: list[Filter] = []
    for low, high in zip(lows, highs, strict=False):
        bounds = {"$gte": low, "$lte": high}
        if target.timestamps:
            ranges.append({field: bounds})
        elif field.rsplit(".", 1)[-1] in _ARRAYS:
            ranges.append({field: {"$elemMatch": bounds}})
        else:
            # `{f: {$gte, $lte}}` alone would let two elements of an array meet one bound each.
            ranges.append({field: {**bounds, "$not": {"$type": "array"}}})
            ranges.append({field: {"$elemMatch": bounds}})
    return _any(ranges)


def _pattern(target: _Target, regex: str, negated: bool) -> Filter:
    """The candidates of a pattern term: entities with a String where the pattern looks.

    Patterns never reach the store (a backtracking engine there would stall every tenant):
    the broker tests them on these candidates (context_broker._query._patterns). A pattern
    anchored at a literal prefix narrows them to an index range of strings.
    """
    fields = target.data + target.texts
    prefix = "" if negated else anchored_prefix(regex)
    if prefix:
        return _any({field: prefix_range(prefix)} for field in fields)
    return _any({field: {"$type": "string"}} for field in fields)


def prefix_range(prefix: str) -> Filter:
    """The condition on a field whose strings start with `prefix` (an index range)."""
    bounds: Filter = {"$gte": prefix}
    while prefix and ord(prefix[-1]) == sys.maxunicode:
        prefix = prefix[:-1]
    if prefix:
        following = ord(prefix[-1]) + 1
        if 0xD800 <= following <= 0xDFFF:  # surrogates are no text: skip past them
            following = 0xE000
        bounds["$lt"] = prefix[:-1] + chr(following)
    return bounds


def _any(filters: Iterable[Filter]) -> Filter:
    """`$or` of the filters, flattened; NEVER when there is none."""
    flat: list[Filter] = []
    for condition in filters:
        if list(condition) == ["$or"]:
            flat.extend(condition["$or"])
        elif condition != NEVER:
            flat.append(condition)
    if not flat:
        return NEVER
    return flat[0] if len(flat) == 1 else {"$or": flat}


def _all(filters: Iterable[Filter]) -> Filter:
    """`$and` of the filters, flattened, or one dict when their fields do not collide."""
    flat: list[Filter] = []
    for condition in filters:
        if condition == NEVER:
            return NEVER
        flat.extend(condition["$and"] if list(condition) == ["$and"] else [condition])
    merged: Filter = {}
    for condition in flat:
        for key, value in condition.items():
            if key not in merged:
                merged[key] = value
            elif (
                not key.startswith("$")
                and _is_operators(merged[key])
                and _is_operators(value)
                and not set(merged[key]) & set(value)
            ):
                merged[key] = {**merged[key], **value}
            else:
                return flat[0] if len(flat) == 1 else {"$and": flat}
    return merged


def _is_operators(value: object) -> bool:
    return isinstance(value, dict) and bool(value) and all(str(k).startswith("$") for k in value)
