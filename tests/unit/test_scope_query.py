"""scopeQ (ETSI GS CIM 009 clause 4.19): the spec's examples, errors, and the filters over the
stored `scope` array (checked here against a small matcher of the spec's rules)."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from context_broker._errors import BadRequestData
from context_broker._query import ScopePattern, parse_scope_q, scope_q_to_mongo


def p(path: str, descendants: bool = False) -> ScopePattern:
    return ScopePattern(tuple(path.strip("/").split("/")), descendants)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/Madrid", ((p("/Madrid"),),)),
        ("/Madrid/Gardens/#", ((p("/Madrid/Gardens", True),),)),
        ("/Madrid/+/ParqueNorte", ((p("/Madrid/+/ParqueNorte"),),)),
        ("(/Madrid/Districts;/CompanyA)", ((p("/Madrid/Districts"), p("/CompanyA")),)),
        (
            "(/Madrid/Districts;/CompanyA)|CompanyB",
            ((p("/Madrid/Districts"), p("/CompanyA")), (p("/CompanyB"),)),
        ),
        (
            "(/Madrid/Districts;/CompanyA),CompanyB",
            ((p("/Madrid/Districts"), p("/CompanyA")), (p("/CompanyB"),)),
        ),
        ("/#", ((ScopePattern((), True),),)),
        (
            "/Toscana/Prato-Nord,/Toscana/Città",
            ((p("/Toscana/Prato-Nord"),), (p("/Toscana/Città"),)),
        ),
        ("/a;/b|/c", ((p("/a"), p("/b")), (p("/c"),))),
    ],
)
def test_the_spec_examples_parse(text: str, expected: object) -> None:
    assert parse_scope_q(text) == expected


def test_exact_scopes_use_equality_so_an_index_serves_them() -> None:
    assert scope_q_to_mongo(parse_scope_q("/Madrid")) == {"scope": "/Madrid"}
    assert scope_q_to_mongo(parse_scope_q("/a,/b|/c")) == {"scope": {"$in": ["/a", "/b", "/c"]}}


def test_wildcards_are_anchored_regexes_with_the_literal_parts_escaped() -> None:
    assert scope_q_to_mongo(parse_scope_q("/Madrid/Gardens/#")) == {
        "scope": {"$regex": "^/Madrid/Gardens(?:/.*)?$"}
    }
    assert scope_q_to_mongo(parse_scope_q("/Madrid/+/ParqueNorte")) == {
        "scope": {"$regex": "^/Madrid/[^/]+/ParqueNorte$"}
    }
    assert scope_q_to_mongo(parse_scope_q("/a.b/+")) == {"scope": {"$regex": r"^/a\.b/[^/]+$"}}
    assert scope_q_to_mongo(parse_scope_q("/#")) == {"scope": {"$regex": "^/"}}


def test_and_needs_every_scope_and_or_any() -> None:
    assert scope_q_to_mongo(parse_scope_q("(/a;/b/#)|/c"), field="s") == {
        "$or": [{"$and": [{"s": "/a"}, {"s": {"$regex": "^/b(?:/.*)?$"}}]}, {"s": "/c"}]
    }


@pytest.mark.parametrize(
    ("text", "position"),
    [("", 0), ("/", 1), ("/a/", 3), ("/a//b", 3), ("(/a;/b", 6), ("/a)", 2), ("/a b", 2)],
)
def test_errors_point_at_the_offending_character(text: str, position: int) -> None:
    with pytest.raises(BadRequestData) as caught:
        parse_scope_q(text)
    first, caret = caught.value.detail.split("\n")
    assert first.startswith("scopeQ: ")
    assert f"at position {position}: " in first
    assert caret.index("^") == len(first) - len(text) + position


# --- the filters against the spec's rules, on random scopes -----------------------------------


def _selects(pattern: ScopePattern, scope: str) -> bool:
    levels = scope.strip("/").split("/")
    if not pattern.levels:
        return True
    if len(levels) < len(pattern.levels) or (
        not pattern.descendants and len(levels) != len(pattern.levels)
    ):
        return False
    return all(want in ("+", got) for want, got in zip(pattern.levels, levels, strict=False))


def _mongo_matches(condition: dict[str, object], scopes: list[str]) -> bool:
    """Evaluate the filter shapes scope_q_to_mongo produces, as MongoDB does on an array."""
    if "$or" in condition:
        return any(_mongo_matches(c, scopes) for c in condition["$or"])  # type: ignore[attr-defined]
    if "$and" in condition:
        return all(_mongo_matches(c, scopes) for c in condition["$and"])  # type: ignore[attr-defined]
    test = condition["scope"]
    if isinstance(test, str):
        return test in scopes
    assert isinstance(test, dict)
    if "$in" in test:
        return any(scope in test["$in"] for scope in scopes)
    return any(re.search(test["$regex"], scope) for scope in scopes)


_level = st.sampled_from(["a", "b", "Prato", "c_1"])
_scopes = st.lists(_level, min_size=1, max_size=4).map(lambda levels: "/" + "/".join(levels))
_patterns = st.one_of(
    st.just(ScopePattern((), True)),
    st.builds(
        ScopePattern,
        st.lists(st.one_of(_level, st.just("+")), min_size=1, max_size=3).map(tuple),
        st.booleans(),
    ),
)
_queries = st.lists(st.lists(_patterns, min_size=1, max_size=2).map(tuple), min_size=1, max_size=3)


def _text(query: list[tuple[ScopePattern, ...]]) -> str:
    def one(pattern: ScopePattern) -> str:
        body = "".join("/" + level for level in pattern.levels)
        return body + "/#" if pattern.descendants else body

    return "|".join(
        "(" + ";".join(one(x) for x in group) + ")" if len(group) > 1 else one(group[0])
        for group in query
    )


@given(_queries, st.lists(_scopes, max_size=3))
def test_a_filter_selects_what_the_spec_rules_select(
    query: list[tuple[ScopePattern, ...]], scopes: list[str]
) -> None:
    parsed = parse_scope_q(_text(query))
    assert parsed == tuple(query)
    expected = any(all(any(_selects(x, s) for s in scopes) for x in group) for group in query)
    assert _mongo_matches(scope_q_to_mongo(parsed), scopes) == expected


@given(st.text(string.ascii_letters[:4] + "/#+,;|() ", max_size=20) | st.text())
def test_any_text_parses_or_is_bad_request_data(text: str) -> None:
    try:
        parse_scope_q(text)
    except BadRequestData as exc:
        assert exc.detail.startswith("scopeQ: ")
