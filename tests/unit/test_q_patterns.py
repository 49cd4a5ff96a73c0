"""Patterns tested in the broker: the same answers MongoDB's `$regex` gives on the stored
form, in linear time, with a literal prefix for the store's index where there is one."""

from __future__ import annotations

import time
from typing import Any

import pytest

from context_broker._errors import BadRequestData
from context_broker._query import parse_q
from context_broker._query._patterns import plan_patterns
from context_broker._query._regex import MAX_PATTERN_LENGTH, anchored_prefix, compile_regex
from context_broker._query._to_mongo import prefix_range

EX = "https://ex.org/"


def expand(term: str) -> str:
    return term if ":" in term else EX + term


def doc(entity_id: str = "urn:x:1", **attrs: Any) -> dict[str, Any]:
    return {"_id": entity_id, "attrs": {f"https://ex=org/{k}": v for k, v in attrs.items()}}


def holds(q: str, document: dict[str, Any], *, id_pattern: str | None = None) -> bool:
    plan = plan_patterns(parse_q(q) if q else None, id_pattern, expand)
    assert plan is not None
    return plan.holds(document, {})


@pytest.mark.parametrize(
    ("q", "value", "expected"),
    [
        ("n~=^Pra", "Prato", True),
        ("n~=ato$", "Prato", True),
        ("n~=^ato", "Prato", False),
        ("n~=1", 1, False),  # patterns match strings only
        ("n!~=1", 1, False),
        ("n!~=^Pra", "Firenze", True),
        ("n!~=^Pra", "Prato", False),
        ("n~=^b", ["a", "b"], True),  # an array matches when an element does
        ("n!~=^b", ["a", "b"], False),  # ... and !~= when no string element does
        ("n!~=^c", ["a", 1], True),
        ("n!~=^c", [1, 2], False),
        ("n[city]~=^Pra", {"city": "Prato"}, True),
        ("n[city]~=^Pra", [{"city": "Lucca"}, {"city": "Prato"}], True),
        ("n[city]!~=^Pra", [{"city": "Lucca"}, {"city": "Prato"}], False),
    ],
)
def test_a_pattern_term_on_a_property(q: str, value: object, expected: bool) -> None:
    assert holds(q, doc(n={"type": "Property", "value": value})) is expected


def test_any_instance_and_language_strings_count() -> None:
    instance = {"type": "LanguageProperty", "languageMap": {"it": "Firenze"}, "lv": ["Firenze"]}
    stored = doc(title=instance)
    assert holds("title~=^Fir", stored)
    assert holds("title[*]~=^Fir", stored)
    assert not holds("title!~=^Fir", stored)
    with_dataset = {
        "_id": "urn:x:2",
        "attrs": {},
        "ds": {"https://ex=org/level": [{"type": "Property", "value": "alto", "datasetId": "d"}]},
    }
    assert holds("level~=^al", with_dataset)
    assert not holds("level~=^b", with_dataset)


def test_parts_beside_patterns_under_an_or_come_from_the_store() -> None:
    plan = plan_patterns(parse_q("(n~=^P;t>1)|u==2"), None, expand)
    assert plan is not None
    assert [str(part) for part in plan.undecided] == [
        str(parse_q("t>1")),
        str(parse_q("u==2")),
    ]
    prato = doc(n={"type": "Property", "value": "Prato"})
    assert plan.holds(prato, {parse_q("t>1"): {"urn:x:1"}, parse_q("u==2"): set()})
    assert not plan.holds(prato, {parse_q("t>1"): set(), parse_q("u==2"): set()})
    assert plan.holds(prato, {parse_q("t>1"): set(), parse_q("u==2"): {"urn:x:1"}})


def test_id_pattern_and_q_both_hold() -> None:
    prato = doc("urn:x:Prato", n={"type": "Property", "value": "x"})
    assert holds("n~=x", prato, id_pattern="Prato$")
    assert not holds("n~=x", prato, id_pattern="^Prato")
    assert holds("", prato, id_pattern="(P+)+rato$")


def test_a_backtracking_shape_is_linear() -> None:
    regex = compile_regex("(a+)+$", "q")
    started = time.perf_counter()
    assert not regex.search("a" * 100_000 + "!")
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        (r"(a)\1", "without backreferences"),
        ("(?=a)", "invalid perl operator"),
        ("(?<!a)b", "invalid perl operator"),
        ("((a{100}){100}){100}", "invalid repetition size"),
        ("a" * (MAX_PATTERN_LENGTH + 1), f"at most {MAX_PATTERN_LENGTH} characters"),
    ],
)
def test_what_re2_refuses_is_bad_request_data(pattern: str, words: str) -> None:
    with pytest.raises(BadRequestData, match=r"^idPattern: ") as caught:
        compile_regex(pattern, "idPattern")
    assert words in caught.value.detail


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [
        ("^urn:ngsi-ld:Sensor:", "urn:ngsi-ld:Sensor:"),
        ("^urn:x:(a+)+$", "urn:x:a"),
        ("^Città", "Città"),
        ("urn:x", ""),  # not anchored: may match anywhere
        ("^a|b", ""),
        ("(?m)^a", ""),
        ("(?i)^a", ""),
        ("^a*b", ""),
    ],
)
def test_the_literal_prefix_of_an_anchored_pattern(pattern: str, prefix: str) -> None:
    assert anchored_prefix(pattern) == prefix


@pytest.mark.parametrize(
    ("prefix", "bounds"),
    [
        ("urn:x:", {"$gte": "urn:x:", "$lt": "urn:x;"}),
        ("a\ud7ff", {"$gte": "a\ud7ff", "$lt": "a\ue000"}),
        ("x\U0010ffff", {"$gte": "x\U0010ffff", "$lt": "y"}),
    ],
)
def test_a_prefix_is_an_index_range(prefix: str, bounds: dict[str, str]) -> None:
    assert prefix_range(prefix) == bounds
