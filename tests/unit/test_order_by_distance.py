"""Ordering by distance (clause 4.23) and expandValues (clause 4.9): the pure parts, the
plan that hands the order to the broker, and the sort key it orders matches by."""

from __future__ import annotations

import pytest

from context_broker._errors import BadRequestData
from context_broker._query import parse_q
from context_broker._query._geo import parse_distance_from
from context_broker._query._plan import EntityQuery, PageCut, SortKey, order_fields, plan
from context_broker._query._q import attribute_names, with_expanded_values
from context_broker._query._sort_order import distance_sort_key
from context_broker._query._store_traits import EMBEDDED_STORE, MONGODB, StoreTraits

ORIGIN = parse_distance_from(None, "[11,43]")
BY_DISTANCE = (SortKey("attrs.location", distance_from=ORIGIN),)


def _row(entity_id: str, location: object = None, **attrs: object) -> dict[str, object]:
    found = dict(attrs)
    if location is not None:
        found["location"] = location
    return {"_id": entity_id, "attrs": found}


def _point(lon: float, lat: float) -> dict[str, object]:
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}


def _order(rows: list[dict[str, object]], order: tuple[SortKey, ...]) -> list[object]:
    return [row["_id"] for row in sorted(rows, key=lambda r: distance_sort_key(r, order))]


def test_geoproperties_by_distance_then_other_kinds_then_none() -> None:
    """Clause 4.23.2: a GeoProperty before an attribute of another kind (by value), before
    an entity without the attribute; dist-desc reverses the distances only."""
    rows = [
        _row("none"),
        _row("text", {"type": "Property", "value": "somewhere"}),
        _row("far", _point(14, 43)),
        _row("near", _point(11.1, 43)),
    ]
    assert _order(rows, BY_DISTANCE) == ["near", "far", "text", "none"]
    descending = (SortKey("attrs.location", descending=True, distance_from=ORIGIN),)
    assert _order(rows, descending) == ["far", "near", "text", "none"]


def test_a_key_before_the_distance_orders_first() -> None:
    rows = [
        _row("a-far", _point(14, 43), n={"value": 1}),
        _row("b-near", _point(11.1, 43), n={"value": 2}),
        _row("c-far", _point(14, 43), n={"value": 2}),
    ]
    order = (SortKey("attrs.n.value", descending=True), *BY_DISTANCE)
    assert _order(rows, order) == ["b-near", "c-far", "a-far"]


@pytest.mark.parametrize("traits", [EMBEDDED_STORE, MONGODB])
def test_an_order_by_distance_is_cut_by_the_broker(traits: StoreTraits) -> None:
    """The store has no such order: the broker reads the ordering fields of every match."""
    query = EntityQuery(types=(("urn:T",),), order=BY_DISTANCE)
    planned = plan(query, traits)
    assert planned.cut is PageCut.BROKER
    assert planned.by_distance == BY_DISTANCE
    assert planned.ranges_of is None and planned.walk is None
    assert order_fields(BY_DISTANCE) == ("attrs.location.type", "attrs.location.value")


@pytest.mark.parametrize(
    ("geometry", "coordinates"),
    [(None, None), (None, "11,43"), ("Circle", "[11,43]"), (5, "[11,43]"), (None, "{}")],
)
def test_a_malformed_reference_is_400(geometry: object, coordinates: object) -> None:
    with pytest.raises(BadRequestData):
        parse_distance_from(geometry, coordinates)


def test_expand_values_expands_only_the_named_attributes_string_values() -> None:
    """Clause 4.9 (example 12): gender==Male compares with the IRI of Male."""
    query = parse_q('gender==Male;size==3;name=="Male";kind==a,b')
    expanded = with_expanded_values(query, frozenset({"gender", "size", "kind"}), "urn:x:".__add__)
    assert expanded == parse_q(
        'gender=="urn:x:Male";size==3;name=="Male";kind=="urn:x:a","urn:x:b"'
    )
    assert attribute_names(query) == {"gender", "size", "name", "kind"}
