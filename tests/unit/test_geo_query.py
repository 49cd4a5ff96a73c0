"""Geo-query parsing, the cell index and exact matching (clause 4.10)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from context_broker._errors import BadRequestData
from context_broker._query._cells import (
    KEY_LEVEL,
    LEVELS,
    bbox_of,
    candidate_filter,
    geometry_cells,
    point_filters,
    point_key,
    query_cells,
)
from context_broker._query._geo import GeoQuery, haversine_m, parse_geo_query


def expand(term: str) -> str:
    return "https://uri.etsi.org/ngsi-ld/default-context/" + term


def near(
    lon: float, lat: float, max_m: float | None = None, min_m: float | None = None
) -> GeoQuery:
    return GeoQuery("near", {"type": "Point", "coordinates": [lon, lat]}, "loc", max_m, min_m)


def test_near_with_a_distance_parses() -> None:
    query = parse_geo_query("near;minDistance==10", "Point", "[11.2558,43.7696]", None, expand)
    assert query is not None
    assert (query.georel, query.max_distance, query.min_distance) == ("near", None, 10.0)
    assert query.geoproperty == expand("location")


def test_near_measures_from_any_reference_geometry() -> None:
    """Clause 4.10: near takes any geometry; the distance is to its nearest point."""
    line = "[[11.0,43.0],[11.0,44.0]]"
    query = parse_geo_query("near;maxDistance==1000", "LineString", line, None, expand)
    assert query is not None
    assert query.matches({"type": "Point", "coordinates": [11.005, 43.5]}) is not None
    assert query.matches({"type": "Point", "coordinates": [11.05, 43.5]}) is None


def test_no_geo_parameters_is_no_geo_query() -> None:
    assert parse_geo_query(None, None, None, None, expand) is None


@pytest.mark.parametrize(
    ("georel", "geometry", "coordinates", "message"),
    [
        ("near", "Point", "[11,43]", "maxDistance"),
        ("near;maxDistance==500;minDistance==10", "Point", "[11,43]", "one of"),
        ("near;maxDistance==-1", "Point", "[11,43]", "non-negative"),
        ("near;maxDistance==abc", "Point", "[11,43]", "number of metres"),
        ("inside", "Point", "[11,43]", "georel must be one of"),
        ("within;maxDistance==3", "Point", "[11,43]", "takes no distance"),
        ("within", "Circle", "[11,43]", "GeoJSON type"),
        ("within", "Point", "11,43", "JSON array"),
        ("within", "Point", "[200,43]", "out of range"),
        ("within", "Polygon", "[[[0,0],[1,0],[1,1]]]", "4 positions"),
        ("within", None, "[11,43]", "all of georel, geometry and coordinates"),
    ],
)
def test_malformed_geo_queries_are_bad_request_data(
    georel: str, geometry: str | None, coordinates: str, message: str
) -> None:
    with pytest.raises(BadRequestData, match=message):
        parse_geo_query(georel, geometry, coordinates, None, expand)


def test_haversine_matches_a_known_distance() -> None:
    # Firenze Duomo to Pisa Torre: about 69.4 km on the sphere.
    distance = haversine_m(11.2560, 43.7731, 10.3966, 43.7230)
    assert 69_000 < distance < 69_800


coordinate = st.tuples(
    st.floats(min_value=9.5, max_value=12.5), st.floats(min_value=42.2, max_value=44.5)
)


@given(centre=coordinate, other=coordinate, radius=st.floats(min_value=1, max_value=50_000))
def test_near_matches_exactly_the_points_within_the_distance(
    centre: tuple[float, float], other: tuple[float, float], radius: float
) -> None:
    query = near(*centre, max_m=radius)
    key = query.matches({"type": "Point", "coordinates": list(other)})
    expected = haversine_m(*centre, *other)
    if expected <= radius:
        assert key is not None
        assert math.isclose(key, expected, rel_tol=1e-9, abs_tol=1e-6)
    else:
        assert key is None


def _candidate(stored: list[int], box: tuple[float, float, float, float]) -> bool:
    wanted = candidate_filter("loc", box)["gc.loc"]["$in"]
    return bool(set(stored) & set(wanted))


def _box(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float, float, float]:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[0], b[0]), max(a[1], b[1])


def _meets(one: tuple[float, ...], two: tuple[float, ...]) -> bool:
    return one[0] <= two[2] and two[0] <= one[2] and one[1] <= two[3] and two[1] <= one[3]


@given(corner1=coordinate, corner2=coordinate, q1=coordinate, q2=coordinate)
def test_every_geometry_whose_box_meets_the_query_box_is_a_candidate(
    corner1: tuple[float, float],
    corner2: tuple[float, float],
    q1: tuple[float, float],
    q2: tuple[float, float],
) -> None:
    west, south, east, north = _box(corner1, corner2)
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    geometry = {"type": "Polygon", "coordinates": [ring]}
    query_box = _box(q1, q2)
    if _meets(bbox_of(geometry["coordinates"]), query_box):
        assert _candidate(geometry_cells(geometry), query_box)


@given(point=coordinate, q1=coordinate, q2=coordinate)
def test_a_point_inside_the_query_box_is_always_a_candidate(
    point: tuple[float, float], q1: tuple[float, float], q2: tuple[float, float]
) -> None:
    box = _box(q1, q2)
    stored = geometry_cells({"type": "Point", "coordinates": list(point)})
    assert len(stored) == len(LEVELS) + 1
    if _meets((*point, *point), box):
        assert _candidate(stored, box)


def _selects(filters: list[dict[str, object]], key: int) -> bool:
    for lookup in filters:
        (condition,) = lookup.values()
        assert isinstance(condition, dict)
        if "$in" in condition and key in condition["$in"]:
            return True
        if "$gte" in condition and condition["$gte"] <= key < condition["$lt"]:
            return True
    return False


@given(point=coordinate, q1=coordinate, q2=coordinate)
def test_a_point_inside_the_query_box_is_selected_by_its_key(
    point: tuple[float, float], q1: tuple[float, float], q2: tuple[float, float]
) -> None:
    box = _box(q1, q2)
    filters = point_filters("loc", box)
    assert 1 <= len(filters) <= 4
    assert all(list(lookup) == ["gp.loc"] for lookup in filters)
    if _meets((*point, *point), box):
        assert _selects(filters, point_key(point))


@given(point=coordinate, other=coordinate)
def test_a_coarser_cell_holds_one_range_of_point_keys(
    point: tuple[float, float], other: tuple[float, float]
) -> None:
    """The Hilbert curve: two points share a level-L cell iff their keys agree above it."""
    for level in (4, 9, 14):
        shift = 2 * (KEY_LEVEL - level)
        same_cell = all(
            int((a + offset) / span * 2**level) == int((b + offset) / span * 2**level)
            for a, b, offset, span in (
                (point[0], other[0], 180, 360),
                (point[1], other[1], 90, 180),
            )
        )
        assert same_cell == (point_key(point) >> shift == point_key(other) >> shift)


def test_a_point_lookup_keeps_only_cells_that_meet_the_region() -> None:
    near_firenze = near(11.2558, 43.7696, max_m=500.0)
    filters = near_firenze.candidate_filters("loc")
    assert filters is not None
    (points, cells) = filters
    assert len(points["gp.loc"]["$in"]) <= 16
    assert point_key((11.2558, 43.7696)) in points["gp.loc"]["$in"]
    assert point_key((11.2758, 43.7696)) not in points["gp.loc"]["$in"]  # 1.6 km east
    assert list(cells) == ["gc.loc"]


def test_a_small_query_uses_a_fine_level_and_few_cells() -> None:
    cells, ancestors = query_cells((11.25, 43.76, 11.26, 43.77))
    assert 1 <= len(cells) <= 24
    assert cells[0] >> 40 == LEVELS[-1]
    assert {cell >> 40 for cell in ancestors} == set(LEVELS[:-1])


@pytest.mark.parametrize(
    ("georel", "stored", "expected"),
    [
        ("within", {"type": "Point", "coordinates": [0.5, 0.5]}, True),
        ("within", {"type": "Point", "coordinates": [1.5, 0.5]}, False),
        ("intersects", {"type": "LineString", "coordinates": [[-1, 0.5], [2, 0.5]]}, True),
        ("disjoint", {"type": "Point", "coordinates": [1.5, 0.5]}, True),
        (
            "contains",
            {"type": "Polygon", "coordinates": [[[-1, -1], [2, -1], [2, 2], [-1, 2], [-1, -1]]]},
            True,
        ),
        (
            "equals",
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]},
            True,
        ),
        (
            "overlaps",
            {
                "type": "Polygon",
                "coordinates": [[[0.5, 0.5], [2, 0.5], [2, 2], [0.5, 2], [0.5, 0.5]]],
            },
            True,
        ),
        ("overlaps", {"type": "Point", "coordinates": [0.5, 0.5]}, False),
    ],
)
def test_relations_follow_simple_features(
    georel: str, stored: dict[str, object], expected: bool
) -> None:
    square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
    query = GeoQuery(georel, square, "loc")
    assert (query.matches(stored) is not None) is expected
    assert query.match_all([stored, stored]) == [query.matches(stored)] * 2
