"""idPattern and q's pattern terms (`~=`, `!~=`), tested in the broker with a linear-time
engine over the candidates the store selects with every other condition of the query.

The store sees a pattern term only as its candidates (a String where the pattern looks,
see `_to_mongo`). Since q has no negation of a group, a query holds on an entity only if
the query with every pattern term so widened does, so those candidates hold every match.
Here each pattern term is tested on each candidate, as MongoDB's `$regex` would test it;
a part of the query without patterns that sits under an OR beside one is answered by the
store, as the ids it selects among the candidates (`undecided`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Set
from dataclasses import dataclass
from typing import Any

from context_broker._query._q import And, Or, Pattern, Query
from context_broker._query._regex import Regex, compile_regex
from context_broker._query._to_mongo import Expand, pattern_fields

Document = dict[str, Any]


@dataclass(frozen=True, slots=True)
class PatternTest:
    """One pattern term, ready to test on a stored entity."""

    regex: Regex
    negated: bool
    attribute: str  # the encoded attribute field
    fields: tuple[str, ...]  # where its instances hold strings, relative to an instance

    def holds(self, doc: Document) -> bool:
        """Any instance (default, or one with a datasetId) satisfies the term."""
        default = doc.get("attrs", {}).get(self.attribute)
        instances = [default] if isinstance(default, dict) else []
        instances += [
            item
            for item in doc.get("ds", {}).get(self.attribute, [])
            if isinstance(item, dict) and "datasetId" in item
        ]
        return any(self._instance_holds(instance) for instance in instances)

    def _instance_holds(self, instance: Document) -> bool:
        for field in self.fields:
            strings = [value for value in _values_at(instance, field) if isinstance(value, str)]
            matched = any(self.regex.search(text) for text in strings)
            # `~=`: a string matches; `!~=`: there is a string and none matches.
            if (strings and not matched) if self.negated else matched:
                return True
        return False


@dataclass(frozen=True, slots=True)
class PatternPlan:
    """How the patterns of one query are tested."""

    q: Query | None
    id_regex: Regex | None
    tests: Mapping[Pattern, PatternTest]
    undecided: tuple[Query, ...]

    def fields(self) -> list[str]:
        """The stored fields the tests read."""
        attributes = dict.fromkeys(test.attribute for test in self.tests.values())
        return [f"{root}.{attribute}" for attribute in attributes for root in ("attrs", "ds")]

    def holds(self, doc: Document, known: Mapping[Query, Set[str]]) -> bool:
        """Whether a candidate matches, given the ids the store selected for each undecided
        part."""
        if self.id_regex is not None and not self.id_regex.search(doc["_id"]):
            return False
        return self.q is None or self._holds(self.q, doc, known, conjunct=True)

    def _holds(
        self, node: Query, doc: Document, known: Mapping[Query, Set[str]], *, conjunct: bool
    ) -> bool:
        if isinstance(node, Pattern):
            return self.tests[node].holds(doc)
        if not _has_pattern(node):
            # A condition AND-ed at the top holds on every candidate already.
            return conjunct or doc["_id"] in known[node]
        if isinstance(node, And):
            return all(self._holds(term, doc, known, conjunct=conjunct) for term in node.terms)
        assert isinstance(node, Or)
        return any(self._holds(term, doc, known, conjunct=False) for term in node.terms)


def plan_patterns(q: Query | None, id_pattern: str | None, expand: Expand) -> PatternPlan | None:
    """The plan for the query's patterns; None when it has none."""
    id_regex = None if id_pattern is None else compile_regex(id_pattern, "idPattern")
    tests: dict[Pattern, PatternTest] = {}
    for term in _patterns(q):
        if term not in tests:
            attribute, fields = pattern_fields(term.path, expand)
            regex = compile_regex(term.regex, "q")
            tests[term] = PatternTest(regex, term.negated, attribute, fields)
    if id_regex is None and not tests:
        return None
    undecided = tuple(dict.fromkeys(_undecided(q, conjunct=True))) if q is not None else ()
    return PatternPlan(q, id_regex, tests, undecided)


def _patterns(node: Query | None) -> Iterator[Pattern]:
    if isinstance(node, Pattern):
        yield node
    elif isinstance(node, And | Or):
        for term in node.terms:
            yield from _patterns(term)


def _has_pattern(node: Query) -> bool:
    return next(_patterns(node), None) is not None


def _undecided(node: Query, *, conjunct: bool) -> Iterator[Query]:
    """The largest parts without patterns whose truth the candidates do not settle."""
    if not _has_pattern(node):
        if not conjunct:
            yield node
    elif isinstance(node, And | Or):
        for term in node.terms:
            yield from _undecided(term, conjunct=conjunct and isinstance(node, And))


def _values_at(value: Any, path: str) -> Iterator[Any]:
    """The values a MongoDB path reaches: arrays on the way are walked element by element,
    and an array at the end gives itself and its elements."""
    head, _, rest = path.partition(".")
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                yield from _values_at(item, path)
        return
    if not isinstance(value, dict) or head not in value:
        return
    found = value[head]
    if rest:
        yield from _values_at(found, rest)
    elif isinstance(found, list):
        yield found
        yield from found
    else:
        yield found
