"""Purge Entities (clause 5.6.21): what drop and keep leave of an entity, and who may purge."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from context_broker._errors import BadRequestData
from context_broker._http._auth import needed_role
from context_broker._purge import Purge

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _doc() -> dict[str, Any]:
    attrs = {name: {"type": "Property", "value": 1} for name in ("a", "b", "c")}
    return {"_id": "urn:x:1", "type": ["T"], "an": ["a", "b", "c"], "attrs": attrs, "v": 3}


def test_drop_removes_the_named_attributes() -> None:
    doc = _doc()
    assert Purge(drop=frozenset({"b", "z"})).apply(doc, NOW)
    assert doc["an"] == ["a", "c"] and set(doc["attrs"]) == {"a", "c"}
    assert doc["modifiedAt"] == NOW and doc["v"] == 4


def test_keep_removes_every_other_attribute() -> None:
    doc = _doc()
    assert Purge(keep=frozenset({"a"})).apply(doc, NOW)
    assert doc["an"] == ["a"] and set(doc["attrs"]) == {"a"}


def test_nothing_to_drop_leaves_the_entity_as_it_was() -> None:
    doc = _doc()
    assert not Purge(drop=frozenset({"z"})).apply(doc, NOW)
    assert doc == _doc()


def test_drop_and_keep_exclude_each_other() -> None:
    assert Purge().deletes_entities
    with pytest.raises(BadRequestData):
        Purge(drop=frozenset({"a"}), keep=frozenset({"b"}))


def test_purging_needs_the_writer_role() -> None:
    assert needed_role("DELETE", "/ngsi-ld/v1/entities") == "writer"
