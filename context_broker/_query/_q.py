"""The NGSI-LD Query Language (ETSI GS CIM 009 clause 4.9): `q` text <-> a small AST.

Names stay as written (short names); expanding them with the request @context is the
translator's job, so one parsed query can serve any store or an in-memory matcher.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from context_broker._errors import BadRequestData
from context_broker._query._regex import regex_problem

Scalar = str | int | float | bool | datetime | date | time

ORDERING_OPS = frozenset({">", ">=", "<", "<="})
# Longest first, so that `>=` is not read as `>` followed by a value `=...`.
_OPERATORS = ("==", "!~=", "!=", "~=", ">=", ">", "<=", "<")
# Bounds that keep parsing and planning a query small whatever the client sends.
_MAX_DEPTH = 32
MAX_TERMS = 32
MAX_LENGTH = 4096

_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_OFFSET = r"(?:Z|[+-][0-9]{2}:[0-9]{2})?"
_CLOCK = r"[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?"
_DATETIME = re.compile(rf"{_DATE.pattern}T{_CLOCK}{_OFFSET}")
_TIME = re.compile(rf"{_CLOCK}{_OFFSET}")
_LONG_FRACTION = re.compile(r"(\.[0-9]{6})[0-9]+")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}\\^`]*")
_WORD = re.compile(r"\w[\w.\-]*")
# Characters that end an unquoted value (as does white space): logical operators, grouping,
# lists, strings.
_VALUE_END = frozenset(',;|()"')


@dataclass(frozen=True, slots=True)
class AttrPath:
    """`attribute.sub.sub[json.member]`: the attribute, its sub-attributes, a path in its value."""

    attribute: str
    sub_attributes: tuple[str, ...] = ()
    json_path: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Range:
    """`lo..hi`, both ends included."""

    lo: Scalar
    hi: Scalar


@dataclass(frozen=True, slots=True)
class ValueList:
    """`a,b,c`: with `==` any of them, with `!=` none of them."""

    items: tuple[Scalar, ...]


Value = Scalar | Range | ValueList


@dataclass(frozen=True, slots=True)
class Comparison:
    path: AttrPath
    op: str
    value: Value


@dataclass(frozen=True, slots=True)
class Exists:
    """`attr` (the target element exists) or, negated, `!attr`."""

    path: AttrPath
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Pattern:
    """`attr~=regex` or, negated, `attr!~=regex`."""

    path: AttrPath
    regex: str
    negated: bool = False


@dataclass(frozen=True, slots=True)
class And:
    terms: tuple[Query, ...]


@dataclass(frozen=True, slots=True)
class Or:
    terms: tuple[Query, ...]


Query = Comparison | Exists | Pattern | And | Or


def syntax_error(parameter: str, message: str, text: str, position: int) -> BadRequestData:
    """A BadRequestData whose detail shows the text with a caret under `position`."""
    prefix = f"{parameter}: {message} at position {position}: "
    return BadRequestData(f"{prefix}{text}\n{' ' * (len(prefix) + position)}^")


def parse_q(text: str) -> Query:
    """Parse a `q` expression; raise BadRequestData pointing at the first offending character."""
    if len(text) > MAX_LENGTH:
        raise BadRequestData(
            f"q: a query may have at most {MAX_LENGTH} characters; this one has {len(text)}"
        )
    return _Parser(text).parse()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0
        self.terms = 0

    def parse(self) -> Query:
        query = self._or()
        if self.pos < len(self.text):
            if self._peek() == ")":
                raise self._error("this ')' closes no '('")
            raise self._error("expected ';', '|' or the end of the query")
        return query

    def _error(self, message: str, position: int | None = None) -> BadRequestData:
        return syntax_error("q", message, self.text, self.pos if position is None else position)

    def _peek(self, size: int = 1) -> str:
        return self.text[self.pos : self.pos + size]

    def _or(self) -> Query:
        return self._chain("|", self._and, Or)

    def _and(self) -> Query:
        return self._chain(";", self._primary, And)

    def _chain(
        self, separator: str, operand: Callable[[], Query], node: type[And] | type[Or]
    ) -> Query:
        terms = [operand()]
        while self._peek() == separator:
            self.pos += 1
            terms.append(operand())
        return terms[0] if len(terms) == 1 else node(tuple(terms))

    def _primary(self) -> Query:
        if self._peek() != "(":
            return self._term()
        opening = self.pos
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self._error(f"parentheses nest deeper than {_MAX_DEPTH} levels")
        self.pos += 1
        query = self._or()
        if self._peek() != ")":
            raise self._error(f"expected ')' to close the '(' at position {opening}")
        self.pos += 1
        self.depth -= 1
        return query

    def _term(self) -> Query:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise self._error(f"a query may have at most {MAX_TERMS} terms")
        negated = self._peek() == "!"
        if negated:
            self.pos += 1
        path = self._path()
        operator = self._operator()
        if operator is None:
            return Exists(path, negated)
        if negated:
            raise self._error("a negated attribute (!attr) takes no operator")
        self.pos += len(operator)
        if operator in ("~=", "!~="):
            return Pattern(path, self._regex(), operator == "!~=")
        return Comparison(path, operator, self._value(operator))

    def _operator(self) -> str | None:
        if self.pos == len(self.text) or self._peek() in (";", "|", ")"):
            return None
        for operator in _OPERATORS:
            if self.text.startswith(operator, self.pos):
                return operator
        if self._peek() == "{":
            raise self._error("linked-entity paths (attr{...}) are not supported")
        raise self._error("expected an operator (== != > >= < <= ~= !~=) or ';', '|', ')'")

    def _path(self) -> AttrPath:
        attribute = self._name("an attribute name")
        sub_attributes: list[str] = []
        while self._peek() == ".":
            self.pos += 1
            sub_attributes.append(self._name("a sub-attribute name after '.'"))
        json_path: tuple[str, ...] = ()
        if self._peek() == "[":
            self.pos += 1
            json_path = self._json_path()
        return AttrPath(attribute, tuple(sub_attributes), json_path)

    def _name(self, what: str) -> str:
        start = self.pos
        if not self._peek().isalpha():
            raise self._error(f"expected {what}")
        while self.pos < len(self.text) and (
            self.text[self.pos].isalnum() or self.text[self.pos] in "_-:"
        ):
            self.pos += 1
        return self.text[start : self.pos]

    def _json_path(self) -> tuple[str, ...]:
        if self._peek(2) == "*]":
            self.pos += 2
            return ("*",)
        members: list[str] = []
        while True:
            start = self.pos
            while self.pos < len(self.text) and (
                self.text[self.pos].isalnum() or self.text[self.pos] in "_-:@"
            ):
                self.pos += 1
            if self.pos == start:
                raise self._error("expected a JSON member name (or * for any language)")
            members.append(self.text[start : self.pos])
            if self._peek() == "]":
                self.pos += 1
                return tuple(members)
            if self._peek() != ".":
                raise self._error("expected '.' or ']' in the [trailing.path]")
            self.pos += 1

    def _regex(self) -> str:
        """The pattern runs to a `;` or `|` outside its own groups, or to a `)` closing ours."""
        start = self.pos
        depth, class_start = 0, -1
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\":
                self.pos += 2
                continue
            if class_start >= 0:
                # A ']' first in the class ([]..] or [^]..]) is a literal one.
                negated = self.text[class_start + 1 : class_start + 2] == "^"
                if char == "]" and self.pos > class_start + (2 if negated else 1):
                    class_start = -1
            elif char == "[":
                class_start = self.pos
            elif char == "(":
                depth += 1
            elif char == ")":
                if depth == 0:
                    break
                depth -= 1
            elif char in ";|" and depth == 0:
                break
            self.pos += 1
        self.pos = min(self.pos, len(self.text))
        regex = self.text[start : self.pos]
        if not regex:
            raise self._error("expected a regular expression")
        problem = regex_problem(regex)
        if problem is not None:
            raise self._error(problem, start)
        return regex

    def _value(self, operator: str) -> Value:
        start = self.pos
        first, quoted = self._scalar()
        if self._peek(2) == "..":
            self.pos += 2
            second_start = self.pos
            second, second_quoted = self._scalar()
            if operator in ORDERING_OPS:
                raise self._error(f"a range (lo..hi) needs == or !=, not {operator}", start)
            ends = ((first, quoted, start), (second, second_quoted, second_start))
            for end, end_quoted, where in ends:
                if not _is_comparable(end, end_quoted):
                    raise self._error(
                        "a range end must be a number, a quoted string or a date/time", where
                    )
            if _kind(first) != _kind(second):
                raise self._error("both ends of a range must be of the same type", second_start)
            return Range(first, second)
        if self._peek() == ",":
            items = [first]
            while self._peek() == ",":
                self.pos += 1
                items.append(self._scalar()[0])
            if operator in ORDERING_OPS:
                raise self._error(f"a list of values needs == or !=, not {operator}", start)
            return ValueList(tuple(items))
        if operator in ORDERING_OPS and not _is_comparable(first, quoted):
            raise self._error(
                f"{operator} compares with a number, a quoted string or a date/time", start
            )
        return first

    def _scalar(self) -> tuple[Scalar, bool]:
        """One value and whether it was quoted."""
        if self._peek() == '"':
            return self._quoted(), True
        start = self.pos
        while self.pos < len(self.text) and not (
            self.text[self.pos] in _VALUE_END or self.text[self.pos].isspace()
        ):
            self.pos += 1
        run = self.text[start : self.pos]
        try:
            dots = run.find("..")
            if dots > 0 and _literal(run[:dots]) is not None:
                run = run[:dots]
                self.pos = start + dots
            value = _literal(run)
        except (ValueError, OverflowError):
            raise self._error(f"{run!r} is not a valid number, date or time", start) from None
        if not run:
            raise self._error("expected a value")
        if value is not None:
            return value, False
        if _URI.fullmatch(run) or _WORD.fullmatch(run):
            return run, False
        raise self._error(
            'expected a value: a number, a "quoted string", true, false, a date/time or a URI',
            start,
        )

    def _quoted(self) -> str:
        start = self.pos
        self.pos += 1
        while self.pos < len(self.text) and self.text[self.pos] != '"':
            self.pos += 2 if self.text[self.pos] == "\\" else 1
        if self.pos >= len(self.text):
            raise self._error("this string has no closing quote", start)
        self.pos += 1
        try:
            value = json.loads(self.text[start : self.pos])
            value.encode()
        except (ValueError, UnicodeEncodeError):
            raise self._error("invalid string (JSON string syntax expected)", start) from None
        assert isinstance(value, str)
        return value


def _literal(text: str) -> Scalar | None:
    """The typed value of an unquoted literal; None for URIs and bare words."""
    if text in ("true", "false"):
        return text == "true"
    number = _NUMBER.fullmatch(text)
    if number:
        if not (number.group(1) or number.group(2)):
            return int(text)
        number_value = float(text)
        if not math.isfinite(number_value):
            raise ValueError(text)
        return number_value
    if _DATETIME.fullmatch(text):
        parsed = datetime.fromisoformat(_LONG_FRACTION.sub(r"\1", text))
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    if _DATE.fullmatch(text):
        return date.fromisoformat(text)
    if _TIME.fullmatch(text):
        return time.fromisoformat(_LONG_FRACTION.sub(r"\1", text))
    return None


def _kind(value: Scalar) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _is_comparable(value: Scalar, quoted: bool) -> bool:
    """ComparableValue of the grammar: Number / quotedStr / dateTime / date / time."""
    return quoted or not isinstance(value, bool | str)


def attribute_names(query: Query) -> frozenset[str]:
    """The attributes (first names of the paths) a query's terms name."""
    if isinstance(query, And | Or):
        return frozenset().union(*(attribute_names(term) for term in query.terms))
    return frozenset({query.path.attribute})


def with_expanded_values(
    query: Query, attributes: frozenset[str], expand: Callable[[str], str]
) -> Query:
    """The query with the string values compared to `attributes` expanded as IRIs
    (expandValues, clause 4.9): `gender==Male` compares with the IRI the @context gives Male."""
    if isinstance(query, And | Or):
        return type(query)(tuple(with_expanded_values(t, attributes, expand) for t in query.terms))
    if not isinstance(query, Comparison) or query.path.attribute not in attributes:
        return query

    def expanded(value: Scalar) -> Scalar:
        return expand(value) if isinstance(value, str) else value

    value = query.value
    if isinstance(value, ValueList):
        value = ValueList(tuple(expanded(item) for item in value.items))
    elif isinstance(value, Range):
        value = Range(expanded(value.lo), expanded(value.hi))
    else:
        value = expanded(value)
    return Comparison(query.path, query.op, value)


def to_q_string(query: Query) -> str:
    """The `q` text of a query; parse_q(to_q_string(query)) == query."""
    if isinstance(query, And | Or):
        separator = ";" if isinstance(query, And) else "|"
        return separator.join(
            f"({to_q_string(term)})" if isinstance(term, And | Or) else to_q_string(term)
            for term in query.terms
        )
    path = _path_text(query.path)
    if isinstance(query, Exists):
        return f"!{path}" if query.negated else path
    if isinstance(query, Pattern):
        return f"{path}{'!~=' if query.negated else '~='}{query.regex}"
    return f"{path}{query.op}{_value_text(query.value)}"


def _path_text(path: AttrPath) -> str:
    text = ".".join((path.attribute, *path.sub_attributes))
    return f"{text}[{'.'.join(path.json_path)}]" if path.json_path else text


def _value_text(value: Value) -> str:
    if isinstance(value, Range):
        return f"{_value_text(value.lo)}..{_value_text(value.hi)}"
    if isinstance(value, ValueList):
        return ",".join(_value_text(item) for item in value.items)
    if isinstance(value, datetime | time) and value.utcoffset() == timedelta(0):
        return value.replace(tzinfo=None).isoformat() + "Z"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return value.isoformat()
