"""The NGSI-LD Scope Query Language (ETSI GS CIM 009 clause 4.19) and its MongoDB filter.

`/a/b` is that scope, `/a/b/#` that scope and every scope below it, `+` one level of any
name, `/#` any scope at all. `|` or `,` is OR; `;` is AND and binds tighter. The spec asks
for parentheses around an AND, `(/a;/b)`; they are accepted and may be left out. A scope
without its leading `/` (as in the spec's own example `...|CompanyB`) is read as rooted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from context_broker._errors import BadRequestData
from context_broker._query._q import syntax_error

# Levels as the broker stores them (context_broker._names): any text but '/', '#', '+',
# white space, and here the query's own operators.
_LEVEL_END = frozenset("/#+,;|()")


@dataclass(frozen=True, slots=True)
class ScopePattern:
    """One scope pattern: its levels (`+` for any one level), and whether it ends in `/#`."""

    levels: tuple[str, ...]
    descendants: bool = False


ScopeQuery = tuple[tuple[ScopePattern, ...], ...]
"""OR of ANDs of patterns: the shape the grammar allows."""


def parse_scope_q(text: str) -> ScopeQuery:
    """Parse a `scopeQ` value; raise BadRequestData pointing at the offending character."""
    parser = _ScopeParser(text)
    alternatives = [parser.conjunction()]
    while parser.peek() in ("|", ","):
        parser.pos += 1
        alternatives.append(parser.conjunction())
    if parser.pos < len(text):
        raise parser.error("expected ',', '|', ';' or the end of scopeQ")
    return tuple(alternatives)


class _ScopeParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def error(self, message: str, position: int | None = None) -> BadRequestData:
        where = self.pos if position is None else position
        return syntax_error("scopeQ", message, self.text, where)

    def conjunction(self) -> tuple[ScopePattern, ...]:
        opening = self.pos if self.peek() == "(" else None
        if opening is not None:
            self.pos += 1
        patterns = [self.pattern()]
        while self.peek() == ";":
            self.pos += 1
            patterns.append(self.pattern())
        if opening is not None:
            if self.peek() != ")":
                raise self.error(f"expected ')' to close the '(' at position {opening}")
            self.pos += 1
        return tuple(patterns)

    def pattern(self) -> ScopePattern:
        if self.text.startswith("/#", self.pos):
            self.pos += 2
            return ScopePattern((), descendants=True)
        if self.peek() == "/":
            self.pos += 1
        levels = [self.level()]
        while self.peek() == "/":
            self.pos += 1
            if self.peek() == "#":
                self.pos += 1
                return ScopePattern(tuple(levels), descendants=True)
            levels.append(self.level())
        return ScopePattern(tuple(levels))

    def level(self) -> str:
        if self.peek() == "+":
            self.pos += 1
            return "+"
        start = self.pos
        while (
            self.pos < len(self.text)
            and self.text[self.pos] not in _LEVEL_END
            and not self.text[self.pos].isspace()
        ):
            self.pos += 1
        if self.pos == start:
            raise self.error("expected a scope level (a name or +), as in /Toscana/Prato/#")
        return self.text[start : self.pos]


def scope_q_to_mongo(query: ScopeQuery, field: str = "scope") -> dict[str, Any]:
    """The filter over a stored array of scope strings (`field`) that a scope query selects."""
    alternatives = [[_condition(pattern, field) for pattern in group] for group in query]
    if all(len(group) == 1 and isinstance(group[0][field], str) for group in alternatives):
        exact = [group[0][field] for group in alternatives]
        return {field: exact[0] if len(exact) == 1 else {"$in": exact}}
    conjunctions = [group[0] if len(group) == 1 else {"$and": group} for group in alternatives]
    return conjunctions[0] if len(conjunctions) == 1 else {"$or": conjunctions}


def _condition(pattern: ScopePattern, field: str) -> dict[str, Any]:
    if not pattern.descendants and "+" not in pattern.levels:
        return {field: "/" + "/".join(pattern.levels)}
    # Anchored, and literal up to the first wildcard, so an index on `field` bounds the scan.
    # These are the only patterns that reach the store: built here from escaped levels, with
    # each `[^/]+` ending only at the next `/`, even a backtracking engine runs them in
    # linear time.
    body = "".join("/[^/]+" if level == "+" else "/" + re.escape(level) for level in pattern.levels)
    tail = "(?:/.*)?$" if pattern.levels else "/"  # "/#" alone: any (non-empty) scope
    if not pattern.descendants:
        tail = "$"
    return {field: {"$regex": f"^{body}{tail}"}}
