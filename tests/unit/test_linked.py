"""Linked Entity Retrieval's fetch (clause 4.5.23): one read per level, bounded; linked q
terms parsed, and decided for one entity as a subscription does."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from context_broker._errors import BadRequestData, TooManyResults
from context_broker._linked import fetch_linked, parse_join, split_projection
from context_broker._linked_q import cut_linked_terms, parse_linked_q, with_targets
from context_broker._query import parse_q, to_q_string
from context_broker._subscriptions._linked_match import LinkedReads, linked_q_holds

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


async def test_traversed_ids_are_neither_read_nor_followed() -> None:
    """containedBy (clause 4.5.23, V1.8): the entities already traversed stop the walk."""
    store = _Store(_doc("b", "c"), _doc("c", "d"), _doc("d"))
    linked = await fetch_linked(store.get_many, [_doc("a", "b", "c")], 3, 100, ["c"])
    assert list(linked) == ["b"]
    assert store.reads == [["b"]]


def test_contained_by_is_a_list_of_uris() -> None:
    retrieval = parse_join("inline", None, 3, "urn:a,urn:b")
    assert retrieval is not None and retrieval.contained_by == {"urn:a", "urn:b"}
    with pytest.raises(BadRequestData):
        parse_join("inline", None, 3, "urn:a,not a uri")


def test_a_linked_q_parses_to_its_conditions_at_every_depth() -> None:
    linked = parse_linked_q('a>1;managedBy{ownedBy{name}}=="x"|owner{n}<3')
    assert linked.relationships == ("managedBy", "owner")
    assert [c.relationships for c in linked.conditions] == [("ownedBy",), ()]
    assert list(linked.names()) == ["managedBy", "owner", "ownedBy"]
    assert len(list(linked.queries())) == 4
    with pytest.raises(BadRequestData):
        parse_linked_q("r{" * 10 + "n" + "}" * 10 + "==1")


def _named(entity_id: str, name: str, **relationships: str) -> Document:
    attrs: dict[str, Any] = {"name": {"type": "Property", "value": name}}
    attrs |= {rel: {"type": "Relationship", "object": t} for rel, t in relationships.items()}
    return {"_id": entity_id, "type": ["T"], "an": list(attrs), "attrs": attrs}


async def test_linked_q_reads_only_the_entitys_own_targets() -> None:
    """A subscription's linked term is decided on the changed entity's targets: one read
    of the ids its Relationship names, none for a term that needs no other level."""
    store = _Store(
        _named("urn:c1", "Acme", ownedBy="urn:h1"),
        _named("urn:h1", "Holding"),
        _named("urn:c2", "X"),
    )
    building = _named("urn:b1", "B", managedBy="urn:c1")
    reads = LinkedReads(store.get_many, max_level=3, max_entities=10)
    assert await linked_q_holds(parse_linked_q('managedBy{name}=="Acme"'), building, str, reads)
    assert store.reads == [["urn:c1"]]
    deep = parse_linked_q('managedBy{ownedBy{name}}=="Holding"')
    assert await linked_q_holds(deep, building, str, reads)
    assert store.reads == [["urn:c1"], ["urn:h1"]], "urn:c1 is read once per change"
    other = LinkedReads(store.get_many, max_level=1, max_entities=10)
    assert not await linked_q_holds(deep, building, str, other), "beyond max_level"
    assert not await linked_q_holds(
        parse_linked_q('managedBy{name}=="Acme"'),
        _named("urn:b2", "B", managedBy="urn:c2"),
        str,
        other,
    )


def test_the_plain_terms_of_a_linked_q_are_its_conjuncts_without_linked_terms() -> None:
    def plain(q: str) -> str | None:
        found = parse_linked_q(q).plain_terms()
        return None if found is None else to_q_string(found)

    assert plain("a>1;r{n}==2;b<3") == "a>1;b<3"
    assert plain("a>1;(r{n}==2|b<3)") == "a>1"
    assert plain("a>1|r{n}==2") is None
    assert plain("a>1") == "a>1"
