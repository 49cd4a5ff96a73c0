"""GeoJSON geometry validation (RFC 7946) of GeoProperty values."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from context_broker._errors import BadRequestData
from context_broker._geojson import check_geometry, looks_like_geometry

longitudes = st.floats(min_value=-180, max_value=180, allow_nan=False)
latitudes = st.floats(min_value=-90, max_value=90, allow_nan=False)


@given(longitudes, latitudes)
def test_every_point_in_range_is_valid(lon: float, lat: float) -> None:
    point = {"type": "Point", "coordinates": [lon, lat]}
    assert check_geometry(point, "location") is point


@given(
    st.one_of(
        st.floats(min_value=180, exclude_min=True, allow_infinity=False),
        st.floats(max_value=-180, exclude_max=True, allow_infinity=False),
    ),
    latitudes,
)
def test_longitudes_out_of_range_are_rejected(lon: float, lat: float) -> None:
    with pytest.raises(BadRequestData, match="out of range"):
        check_geometry({"type": "Point", "coordinates": [lon, lat]}, "location")


@given(longitudes, st.floats(min_value=90, exclude_min=True, allow_infinity=False))
def test_latitudes_out_of_range_are_rejected(lon: float, lat: float) -> None:
    with pytest.raises(BadRequestData, match="out of range"):
        check_geometry({"type": "Point", "coordinates": [lon, lat]}, "location")


@given(
    st.floats(min_value=-179, max_value=178),
    st.floats(min_value=-89, max_value=88),
    st.floats(min_value=0.001, max_value=1),
    st.floats(min_value=0.001, max_value=1),
)
def test_closed_rectangles_are_valid_polygons(x: float, y: float, w: float, h: float) -> None:
    ring = [[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]
    polygon = {"type": "Polygon", "coordinates": [ring]}
    assert check_geometry(polygon, "area") is polygon
    assert check_geometry({"type": "MultiPolygon", "coordinates": [[ring]]}, "area")


@given(
    st.lists(st.tuples(longitudes, latitudes), min_size=3, max_size=8, unique=True).filter(
        lambda points: points[0] != points[-1]
    )
)
def test_rings_that_do_not_close_are_rejected(points: list[tuple[float, float]]) -> None:
    ring = [list(p) for p in points]
    with pytest.raises(BadRequestData, match="end where it starts"):
        check_geometry({"type": "Polygon", "coordinates": [ring]}, "area")


@given(st.floats(min_value=0.01, max_value=10))
def test_self_intersecting_polygons_are_geojson(size: float) -> None:
    """RFC 7946 asks a syntax, not OGC validity (clause 4.7.1): a bowtie is a Polygon."""
    bowtie = {
        "type": "Polygon",
        "coordinates": [[[0, 0], [size, size], [size, 0], [0, size], [0, 0]]],
    }
    assert check_geometry(bowtie, "area") == bowtie


@pytest.mark.parametrize(
    "value",
    [
        None,
        "POINT(1 2)",
        {"type": "Point"},
        {"type": "Point", "coordinates": []},
        {"type": "Point", "coordinates": [1, 2, 3, 4]},
        {"type": "Point", "coordinates": [True, 2]},
        {"type": "Point", "coordinates": [float("nan"), 2]},
        {"type": "LineString", "coordinates": [[1, 2]]},
        {"type": "MultiPoint", "coordinates": [1, 2]},
        {"type": "GeometryCollection", "geometries": []},
        {"type": "Feature", "coordinates": [1, 2]},
    ],
)
def test_malformed_geometries_are_rejected(value: object) -> None:
    with pytest.raises(BadRequestData):
        check_geometry(value, "location")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"type": "Point", "coordinates": [1, 2]}, True),
        ({"type": "Polygon", "coordinates": [], "bbox": [0, 0, 1, 1]}, True),
        ({"type": "Point", "coordinates": [1, 2], "a": 1, "b": 2}, False),
        ({"type": "Property", "value": 1}, False),
        ({"coordinates": [1, 2]}, False),
        ([1, 2], False),
    ],
)
def test_geometry_shape_is_recognised(value: Any, expected: bool) -> None:
    assert looks_like_geometry(value) is expected
