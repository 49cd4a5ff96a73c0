"""A parsed `q` (ETSI GS CIM 009 clause 4.9) as a MongoDB filter over stored entity documents.

The filter is a plain dict. Each query term becomes conditions on the members of the stored
attribute instance (see `context_broker._attributes`), chosen so that MongoDB's own rules
give the spec's: comparisons only match values of the query value's type (MongoDB compares
within a type bracket), an array value matches when one of its elements does, and `!=`
requires the target element to exist.

Only the default instance (`attrs.<name>`) is looked at. Clause 4.9 asks that, where no
datasetId is addressed, any instance match ("the target value shall be any Value of such
instances"); instances with a datasetId (`ds.<name>`) are not searched yet.
"""

from __future__ import annotations

import math
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

Filter = dict[str, Any]
Expand = Callable[[str], str]

NEVER: Filter = {"_id": {"$in": []}}
"""A filter no document matches."""

_ORDERING = {">": "$gt", ">=": "$gte", "<": "$lt", "<=": "$lte"}
# Members of an instance that a path may name as its last element (`temperature.observedAt`).
_TIMESTAMPS = frozenset({"observedAt", "createdAt", "modifiedAt"})
_INSTANCE_MEMBERS = _TIMESTAMPS | {"unitCode"}
_INT64 = 2**63


@dataclass(frozen=True, slots=True)
class _Target:
    """Where a path's target element and its value live in the stored document."""

    element: tuple[str, ...]  # the element exists when any of these fields does
    data: tuple[str, ...]  # JSON values: Property value, ListProperty valueList, JSON members
    links: tuple[str, ...] = ()  # Relationship objects: == and != only (clause 4.9)
    vocab: tuple[str, ...] = ()  # VocabProperty IRIs: the query value is expanded first
    languages: str | None = None  # a languageMap queried with [*]: any of its strings
    timestamps: bool = False  # observedAt/createdAt/modifiedAt, stored as BSON datetimes


def to_mongo(query: Query, expand: Expand) -> Filter:
    """The MongoDB filter of a parsed query; `expand` maps a short name to its IRI."""
    if isinstance(query, And):
        return _all(to_mongo(term, expand) for term in query.terms)
    if isinstance(query, Or):
        return _any(to_mongo(term, expand) for term in query.terms)
    target = _target(query.path, expand)
    if isinstance(query, Exists):
        if query.negated:
            return _all({field: {"$exists": False}} for field in target.element)
        return _exists(target)
    if isinstance(query, Pattern):
        return _pattern(target, query.regex, query.negated)
    return _comparison(target, query, expand)


def _target(path: AttrPath, expand: Expand) -> _Target:
    base = "attrs." + encode_field(expand(path.attribute))
    sub_attributes = path.sub_attributes
    member = None
    if sub_attributes and sub_attributes[-1] in _INSTANCE_MEMBERS:
        member, sub_attributes = sub_attributes[-1], sub_attributes[:-1]
    for name in sub_attributes:
        base += ".sub." + encode_field(expand(name))
    if member is not None:
        if path.json_path:
            raise BadRequestData(f"q: {member} has no members to address with [...]")
        field = f"{base}.{member}"
        return _Target(element=(field,), data=(field,), timestamps=member in _TIMESTAMPS)
    if path.json_path == ("*",):
        field = f"{base}.languageMap"
        return _Target(element=(field,), data=(), languages=field)
    if path.json_path:
        # The trailing path enters a Property's or JsonProperty's compound value; a single
        # name may also be the language of a LanguageProperty (`name[it]`).
        members = ".".join(path.json_path)
        data: tuple[str, ...] = (f"{base}.value.{members}", f"{base}.json.{members}")
        if len(path.json_path) == 1:
            data += (f"{base}.languageMap.{members}",)
        return _Target(element=data, data=data)
    return _Target(
        element=(base,),
        data=(f"{base}.value", f"{base}.valueList"),
        links=(f"{base}.object", f"{base}.objectList", f"{base}.objectList.object"),
        vocab=(f"{base}.vocab",),
    )


def _exists(target: _Target) -> Filter:
    return _any({field: {"$exists": True}} for field in target.element)


def _comparison(target: _Target, query: Comparison, expand: Expand) -> Filter:
    value = query.value
    if query.op in _ORDERING:
        if target.languages is not None:
            raise BadRequestData(f"q: [*] takes ==, !=, ~= and !~=, not {query.op}")
        assert not isinstance(value, Range | ValueList)
        operator = _ORDERING[query.op]
        return _any(
            {field: {operator: operand}}
            for field in target.data
            for operand in _operands(value, target.timestamps, ordering=True)
        )
    if isinstance(value, Range):
        if target.languages is not None:
            raise BadRequestData("q: [*] takes single values or lists, not ranges")
        in_range = _any(_in_range(target, field, value) for field in target.data)
        if query.op == "==":
            return in_range
        if in_range == NEVER:
            return _exists(target)
        return _all([_exists(target), {"$nor": [in_range]}])
    items = value.items if isinstance(value, ValueList) else (value,)
    if target.languages is not None:
        strings = [item for item in items if isinstance(item, str)]
        found = _any_language(target.languages, lambda text: {"$in": [text, {"$literal": strings}]})
        if query.op == "==":
            return {"$expr": found}
        return _all([_exists(target), {"$expr": {"$not": [found]}}])
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
        elif field.endswith(".valueList"):  # always an array
            ranges.append({field: {"$elemMatch": bounds}})
        else:
            # `{f: {$gte, $lte}}` alone would let two elements of an array meet one bound each.
            ranges.append({field: {**bounds, "$not": {"$type": "array"}}})
            ranges.append({field: {"$elemMatch": bounds}})
    return _any(ranges)


def _pattern(target: _Target, regex: str, negated: bool) -> Filter:
    """Match pattern: a String target value in L(R); not-match: a String value not in it."""
    if target.languages is not None:
        found = _any_language(
            target.languages,
            lambda text: {
                "$cond": [
                    {"$eq": [{"$type": text}, "string"]},
                    {"$regexMatch": {"input": text, "regex": {"$literal": regex}}},
                    False,
                ]
            },
        )
        if negated:
            return _all([_exists(target), {"$expr": {"$not": [found]}}])
        return {"$expr": found}
    if negated:
        return _any(
            {field: {"$type": "string", "$not": {"$regex": regex}}} for field in target.data
        )
    return _any({field: {"$regex": regex}} for field in target.data)


def _any_language(field: str, test: Callable[[str], Any]) -> Any:
    """An expression true when `test` holds for one string of a languageMap (`[*]`).

    A languageMap's keys are data, so no query path reaches "any key": this runs as `$expr`
    over the map's values (each a string or an array of strings) and uses no index.
    """
    texts = {
        "$reduce": {
            "input": {"$objectToArray": {"$ifNull": [f"${field}", {}]}},
            "initialValue": [],
            "in": {
                "$concatArrays": [
                    "$$value",
                    {"$cond": [{"$isArray": "$$this.v"}, "$$this.v", ["$$this.v"]]},
                ]
            },
        }
    }
    return {"$anyElementTrue": [{"$map": {"input": texts, "as": "t", "in": test("$$t")}}]}


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
