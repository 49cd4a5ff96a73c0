"""`q` terms through Relationships (Linked Entity Retrieval, clause 4.5.23 with the query
language of clause 4.9): `managedBy{name}=="Acme"` holds for an entity whose managedBy
targets an entity whose name is "Acme".

Pure. A linked term is cut out of the text and stands in the parsed query as `managedBy ==
<placeholder>`; the operation runs the term's condition (`name=="Acme"`) as a query of its
own, then `with_targets` puts the ids found in the placeholder's place, so the planner
sees an ordinary comparison of a Relationship's object with a list of ids.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from context_broker._errors import BadRequestData
from context_broker._query._q import And, Comparison, Or, Query, ValueList, parse_q

MAX_LINKED_TERMS = 4
MAX_LINKED_DEPTH = 8
_PLACEHOLDER = "urn:ngsi-ld:linked-term:"


@dataclass(slots=True, frozen=True)
class LinkedTerm:
    """One linked term: the Relationship it goes through and the condition on the target."""

    relationship: str
    condition: str


@dataclass(slots=True, frozen=True)
class LinkedQuery:
    """A q parsed with its linked terms: `query` compares the i-th term's Relationship
    with a placeholder, `conditions[i]` is what that term asks of the linked entity (a
    LinkedQuery again, for a condition going through Relationships itself)."""

    query: Query
    relationships: tuple[str, ...] = ()
    conditions: tuple[LinkedQuery, ...] = ()

    def queries(self) -> Iterator[Query]:
        """Every parsed query inside, this one's first."""
        yield self.query
        for condition in self.conditions:
            yield from condition.queries()

    def plain_terms(self) -> Query | None:
        """The terms of `query` every match needs and no linked term is part of (the
        conjuncts without a placeholder), to test before reading any linked entity."""
        if not self.conditions:
            return self.query
        if not isinstance(self.query, And):
            return None
        plain = tuple(term for term in self.query.terms if not _has_placeholder(term))
        if not plain:
            return None
        return plain[0] if len(plain) == 1 else And(plain)

    def names(self) -> Iterator[str]:
        """The Relationship names the linked terms go through, at every depth."""
        yield from self.relationships
        for condition in self.conditions:
            yield from condition.names()


def parse_linked_q(q: str, depth: int = 0) -> LinkedQuery:
    """`q` parsed, each linked term's condition too (at most MAX_LINKED_DEPTH deep)."""
    if depth > MAX_LINKED_DEPTH:
        raise BadRequestData(f"q goes through more than {MAX_LINKED_DEPTH} Relationships")
    outer, terms = cut_linked_terms(q) if "{" in q else (q, [])
    return LinkedQuery(
        parse_q(outer),
        tuple(term.relationship for term in terms),
        tuple(parse_linked_q(term.condition, depth + 1) for term in terms),
    )


def cut_linked_terms(q: str) -> tuple[str, list[LinkedTerm]]:
    """`q` with each linked term replaced by a placeholder comparison, and the terms."""
    terms: list[LinkedTerm] = []
    parts: list[str] = []
    last = 0
    term_start = 0
    position = 0
    while position < len(q):
        char = q[position]
        if char == '"':
            position = _after_string(q, position)
            continue
        if char in ";|(":
            term_start = position + 1
        elif char == "{":
            close = _closing_brace(q, position)
            if close < 0:
                raise BadRequestData(f"q: '{{' at position {position} is never closed")
            end = _term_end(q, close + 1)
            relationship = q[term_start:position].strip()
            negated = relationship.startswith("!")
            relationship = relationship.lstrip("!").strip()
            inner = q[position + 1 : close].strip()
            if not relationship or not inner:
                raise BadRequestData(f"q: a linked term is relationship{{path}}; got {q!r}")
            condition = ("!" if negated else "") + inner + q[close + 1 : end]
            terms.append(LinkedTerm(relationship, condition))
            if len(terms) > MAX_LINKED_TERMS:
                raise BadRequestData(f"q may hold at most {MAX_LINKED_TERMS} linked terms")
            parts += [q[last:term_start], f'{relationship}=="{_PLACEHOLDER}{len(terms) - 1}"']
            last = position = end
            continue
        position += 1
    parts.append(q[last:])
    return "".join(parts), terms


def _closing_brace(q: str, opening: int) -> int:
    """The position of the `}` closing the `{` at `opening` (-1: none)."""
    depth = 0
    for position in range(opening, len(q)):
        depth += (q[position] == "{") - (q[position] == "}")
        if depth == 0:
            return position
    return -1


def _after_string(q: str, start: int) -> int:
    position = start + 1
    while position < len(q) and q[position] != '"':
        position += 2 if q[position] == "\\" else 1
    return position + 1


def _term_end(q: str, start: int) -> int:
    """Where the operator and value of a term end: at `;`, `|` or `)` outside a string."""
    position = start
    while position < len(q) and q[position] not in ";|)":
        position = _after_string(q, position) if q[position] == '"' else position + 1
    return position


def _has_placeholder(query: Query) -> bool:
    if isinstance(query, And | Or):
        return any(_has_placeholder(term) for term in query.terms)
    return (
        isinstance(query, Comparison)
        and isinstance(query.value, str)
        and query.value.startswith(_PLACEHOLDER)
    )


def with_targets(query: Query, targets: Sequence[Sequence[str]]) -> Query:
    """`query` with each placeholder replaced by the ids its linked term found (a value
    no entity holds stays when it found none)."""
    found: Mapping[str, Sequence[str]] = {
        f"{_PLACEHOLDER}{index}": ids for index, ids in enumerate(targets)
    }
    return _replaced(query, found)


def _replaced(query: Query, found: Mapping[str, Sequence[str]]) -> Query:
    if isinstance(query, And | Or):
        return replace(query, terms=tuple(_replaced(term, found) for term in query.terms))
    if isinstance(query, Comparison) and isinstance(query.value, str) and query.value in found:
        ids = found[query.value]
        if not ids:
            return query
        value = ids[0] if len(ids) == 1 else ValueList(tuple(ids))
        return replace(query, value=value)
    return query
