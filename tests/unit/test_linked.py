"""Linked Entity Retrieval's fetch (clause 4.5.23): one read per level, bounded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from context_broker._errors import BadRequestData, TooManyResults
from context_broker._linked import fetch_linked, parse_join, split_projection
from context_broker._linked_q import cut_linked_terms, with_targets
from context_broker._query import parse_q, to_q_string

Document = dict[str, Any]


def _doc(entity_id: str, *targets: str) -> Document:
    attrs = {f"r{i}": {"type": "Relationship", "object": t} for i, t in enumerate(targets)}
    return {"_id": entity_id, "type": ["T"], "an": list(attrs), "attrs": attrs}


class _Store:
    def __init__(self, *docs: Document) -> None:
        self.docs = {doc["_id"]: doc for doc in docs}
        self.reads: list[list[str]] = []

    async def get_many(self, ids: Sequence[str]) -> dict[str, Document]:
        self.reads.append(list(ids))
        return {i: self.docs[i] for i in ids if i in self.docs}


async def test_each_level_is_one_read_of_every_id_it_names() -> None:
    store = _Store(_doc("b", "c", "d"), _doc("c", "e"), _doc("d", "e"), _doc("e", "a"))
    linked = await fetch_linked(store.get_many, [_doc("a", "b", "c")], 3, 100)
    assert store.reads == [["b", "c"], ["d", "e"]]
    assert list(linked) == ["b", "c", "d", "e"]


async def test_level_bounds_the_depth() -> None:
    store = _Store(_doc("b", "c"), _doc("c", "d"), _doc("d"))
    linked = await fetch_linked(store.get_many, [_doc("a", "b")], 2, 100)
    assert list(linked) == ["b", "c"]
    assert len(store.reads) == 2


async def test_more_linked_entities_than_the_bound_is_too_many_results() -> None:
    store = _Store(*(_doc(f"x{i}") for i in range(5)))
    with pytest.raises(TooManyResults):
        await fetch_linked(store.get_many, [_doc("a", *(f"x{i}" for i in range(5)))], 1, 4)
    assert store.reads == []


def test_join_parameters() -> None:
    assert parse_join(None, None, 3) is None
    assert parse_join("@none", None, 3) is None
    retrieval = parse_join("flat", "3", 3)
    assert retrieval is not None and (retrieval.join, retrieval.level) == ("flat", 3)
    for join, level in (("deep", None), ("inline", "4"), ("inline", "0"), (None, "1")):
        with pytest.raises(BadRequestData):
            parse_join(join, level, 3)


def test_projection_into_linked_entities_splits_off() -> None:
    assert split_projection("id,managedBy{name,owner{id}}|x", "pick") == (
        "id,managedBy,x",
        {"managedBy": "name,owner{id}"},
    )
    assert split_projection("managedBy{name}", "omit") == (None, {"managedBy": "name"})
    assert split_projection("a,b", "pick") == ("a,b", {})
    for broken in ("a{b", "a}b{", "a{}"):
        with pytest.raises(BadRequestData):
            split_projection(broken, "pick")


def test_linked_q_terms_are_cut_out_and_filled_with_their_targets() -> None:
    text, terms = cut_linked_terms('a>1;(managedBy{name}=="x;y"|!owner{ownedBy{n}})')
    assert [(t.relationship, t.condition) for t in terms] == [
        ("managedBy", 'name=="x;y"'),
        ("owner", "!ownedBy{n}"),
    ]
    query = with_targets(parse_q(text), [["urn:a", "urn:b"], []])
    assert to_q_string(query) == (
        'a>1;(managedBy=="urn:a","urn:b"|owner=="urn:ngsi-ld:linked-term:1")'
    )
    with pytest.raises(BadRequestData):
        cut_linked_terms("rel{name==1")
