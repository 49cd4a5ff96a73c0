"""Routing locations to comuni: the cell grid agrees with shapely's brute force, at borders too."""

from __future__ import annotations

import doctest
import math
from typing import Any

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import Point, box

import regional_tenants
from regional_tenants import BoundaryIndex, Comune, NotInRegion, Routed, load_comuni

METRES_PER_DEGREE = 111_320.0
COMUNI = load_comuni()
GEOMETRIES = np.array([c.geometry for c in COMUNI], dtype=object)
SLUGS = tuple(c.slug for c in COMUNI)
MIN_X, MIN_Y, MAX_X, MAX_Y = (float(v) for v in shapely.total_bounds(GEOMETRIES))


@pytest.fixture(scope="module")
def index() -> BoundaryIndex:
    return BoundaryIndex()


def brute_force(longitude: float, latitude: float) -> tuple[str, ...]:
    """Every comune whose boundary contains or touches the point, by testing all 273."""
    hits = shapely.intersects_xy(GEOMETRIES, longitude, latitude)
    return tuple(slug for slug, hit in zip(SLUGS, hits.tolist(), strict=True) if hit)


def point(longitude: float, latitude: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [longitude, latitude]}


@pytest.mark.parametrize(
    ("latitude", "longitude", "slug"),
    [
        (43.7696, 11.2558, "firenze"),
        (43.8777, 11.1022, "prato"),
        (43.7228, 10.4017, "pisa"),
        (43.5485, 10.3106, "livorno"),
    ],
)
def test_the_data_readme_check_points(
    index: BoundaryIndex, latitude: float, longitude: float, slug: str
) -> None:
    assert index.comuni_at(longitude, latitude) == (slug,)
    assert index.route(point(longitude, latitude)) == Routed((slug,))


def test_bologna_is_not_in_the_region(index: BoundaryIndex) -> None:
    assert index.comuni_at(11.3426, 44.4949) == ()
    assert index.route(point(11.3426, 44.4949)) == NotInRegion(
        "the point (11.3426, 44.4949) lies outside every comune of Toscana"
    )


def test_the_frassinoro_enclave_inside_lucca_province_is_not_in_the_region(
    index: BoundaryIndex,
) -> None:
    assert index.comuni_at(10.4812, 44.1901) == brute_force(10.4812, 44.1901) == ()


def test_points_far_away_or_not_finite_lie_nowhere(index: BoundaryIndex) -> None:
    for longitude, latitude in [(0.0, 0.0), (-170.0, -80.0), (1e300, 43.0), (11.0, math.inf)]:
        assert index.comuni_at(longitude, latitude) == ()
    assert index.comuni_at(math.nan, 43.77) == ()
    assert index.comuni_at(11.25, math.nan) == ()


def sides_of_border(a: Comune, b: Comune, metres: float) -> tuple[Point, Point, Point]:
    """A vertex on the shared border, and two points `metres` from the border on either side.

    The points are offset along the normal of the longest segment of the shared border, from
    its middle, in a local frame where a degree of longitude is shortened by cos(latitude).
    """
    shared = shapely.line_merge(a.geometry.boundary.intersection(b.geometry.boundary))
    coordinates = shapely.get_coordinates(shared)
    lengths = np.hypot(*np.diff(coordinates, axis=0).T)
    i = int(np.argmax(lengths))
    (x1, y1), (x2, y2) = coordinates[i], coordinates[i + 1]
    scale = math.cos(math.radians((y1 + y2) / 2))
    dx, dy = (x2 - x1) * scale, y2 - y1
    norm = math.hypot(dx, dy)
    nx, ny = -dy / norm, dx / norm  # unit normal in the local metric frame
    step = metres / METRES_PER_DEGREE
    mx, my = (x1 + x2) / 2, (y1 + y2) / 2
    left = Point(mx + nx * step / scale, my + ny * step)
    right = Point(mx - nx * step / scale, my - ny * step)
    return Point(x1, y1), left, right


@pytest.mark.parametrize(
    ("first", "second"),
    [("firenze", "sesto-fiorentino"), ("pisa", "san-giuliano-terme")],
)
@pytest.mark.parametrize("metres", [3.0, 0.5])
def test_points_a_few_metres_either_side_of_a_border_route_to_each_side(
    index: BoundaryIndex, first: str, second: str, metres: float
) -> None:
    a, b = COMUNI.by_slug(first), COMUNI.by_slug(second)
    vertex, left, right = sides_of_border(a, b, metres)
    found = {index.comuni_at(p.x, p.y) for p in (left, right)}
    assert found == {(first,), (second,)}
    for p in (left, right):
        assert index.comuni_at(p.x, p.y) == brute_force(p.x, p.y)
        assert p.distance(a.geometry.boundary) * METRES_PER_DEGREE < 2 * metres
    # A vertex on the shared border touches both comuni.
    assert set(index.comuni_at(vertex.x, vertex.y)) >= {first, second}
    assert index.comuni_at(vertex.x, vertex.y) == brute_force(vertex.x, vertex.y)


@pytest.mark.parametrize("slug", ["firenze", "sesto-fiorentino", "pisa", "portoferraio", "lucca"])
def test_every_boundary_vertex_routes_as_brute_force_does(index: BoundaryIndex, slug: str) -> None:
    for x, y in shapely.get_coordinates(COMUNI.by_slug(slug).geometry).tolist():
        found = index.comuni_at(x, y)
        assert slug in found
        assert found == brute_force(x, y)


def test_every_representative_point_routes_to_its_comune(index: BoundaryIndex) -> None:
    for comune in COMUNI:
        inner = comune.geometry.representative_point()
        assert index.comuni_at(inner.x, inner.y) == (comune.slug,)


@given(
    comune=st.sampled_from(COMUNI.items),
    u=st.floats(0.0, 1.0),
    v=st.floats(0.0, 1.0),
)
def test_points_in_a_comune_route_to_it(
    index: BoundaryIndex, comune: Comune, u: float, v: float
) -> None:
    minx, miny, maxx, maxy = comune.geometry.bounds
    x, y = minx + u * (maxx - minx), miny + v * (maxy - miny)
    found = index.comuni_at(x, y)
    assert found == brute_force(x, y)
    if comune.geometry.contains(Point(x, y)):
        assert comune.slug in found


@settings(max_examples=500)
@given(
    longitude=st.floats(MIN_X - 0.05, MAX_X + 0.05),
    latitude=st.floats(MIN_Y - 0.05, MAX_Y + 0.05),
)
def test_random_points_in_the_region_bbox_agree_with_brute_force(
    index: BoundaryIndex, longitude: float, latitude: float
) -> None:
    found = index.comuni_at(longitude, latitude)
    assert found == brute_force(longitude, latitude)
    contains = [
        s for s, g in zip(SLUGS, GEOMETRIES, strict=True) if g.contains(Point(longitude, latitude))
    ]
    assert set(contains) <= set(found)


@given(
    comune=st.sampled_from(COMUNI.items),
    fraction=st.floats(0.0, 1.0),
    dx=st.floats(-2e-5, 2e-5),
    dy=st.floats(-2e-5, 2e-5),
)
def test_points_within_a_few_metres_of_a_border_agree_with_brute_force(
    index: BoundaryIndex, comune: Comune, fraction: float, dx: float, dy: float
) -> None:
    anchor = comune.geometry.boundary.interpolate(fraction, normalized=True)
    x, y = anchor.x + dx, anchor.y + dy
    assert index.comuni_at(x, y) == brute_force(x, y)


def test_many_random_points_agree_with_brute_force(index: BoundaryIndex) -> None:
    rng = np.random.default_rng(20240514)
    xs = rng.uniform(MIN_X, MAX_X, 20_000)
    ys = rng.uniform(MIN_Y, MAX_Y, 20_000)
    tree = shapely.STRtree(GEOMETRIES)
    which, hit = tree.query(shapely.points(xs, ys), predicate="intersects")
    expected: list[list[str]] = [[] for _ in xs]
    for i, j in sorted(zip(which.tolist(), hit.tolist(), strict=True)):
        expected[i].append(SLUGS[j])
    found = [index.comuni_at(x, y) for x, y in zip(xs.tolist(), ys.tolist(), strict=True)]
    assert found == [tuple(e) for e in expected]
    assert sum(1 for f in found if f) > 5_000


def test_geometries_route_to_the_comuni_they_intersect(index: BoundaryIndex) -> None:
    firenze = COMUNI.by_slug("firenze").geometry.representative_point()
    sesto = COMUNI.by_slug("sesto-fiorentino").geometry.representative_point()
    line = {"type": "LineString", "coordinates": [[firenze.x, firenze.y], [sesto.x, sesto.y]]}
    assert {"firenze", "sesto-fiorentino"} <= set(index.comuni_for(line))
    multipoint = {"type": "MultiPoint", "coordinates": [[firenze.x, firenze.y], [sesto.x, sesto.y]]}
    assert index.comuni_for(multipoint) == ("firenze", "sesto-fiorentino")
    square = shapely.geometry.mapping(firenze.buffer(0.001, cap_style="square"))
    assert index.comuni_for(square) == ("firenze",)
    assert index.route(square) == Routed(("firenze",))
    bologna = {
        "type": "Polygon",
        "coordinates": [[[11.3, 44.4], [11.4, 44.4], [11.4, 44.5], [11.3, 44.4]]],
    }
    routed = index.route(bologna)
    assert isinstance(routed, NotInRegion)
    assert routed.reason == (
        "the Polygon with bounds (11.3, 44.4, 11.4, 44.5) lies outside every comune of Toscana"
    )


def test_a_whole_province_sized_polygon_reaches_many_comuni(index: BoundaryIndex) -> None:
    around_florence = shapely.geometry.mapping(box(11.0, 43.6, 11.5, 43.9))
    found = index.comuni_for(around_florence)
    assert "firenze" in found
    assert len(found) > 10
    assert list(found) == [s for s in SLUGS if s in found]  # index (ISTAT) order


@pytest.mark.parametrize(
    ("geometry", "message"),
    [
        (None, "expected an object"),
        ({"coordinates": [11.2, 43.7]}, "expected an object"),
        ({"type": "Point"}, "coordinates"),
        ({"type": "Point", "coordinates": ["11.2", 43.7]}, "not a finite number"),
        ({"type": "Point", "coordinates": [math.nan, 43.7]}, "not a finite number"),
        ({"type": "Point", "coordinates": [True, 43.7]}, "not a finite number"),
        ({"type": "Polygon", "coordinates": [[11.2, 43.7]]}, "Polygon"),
        ({"type": "Circle", "coordinates": [11.2, 43.7]}, "Circle"),
        ({"type": "Feature", "geometry": None}, "not a Feature"),
    ],
)
def test_malformed_geometries_are_refused_and_route_to_a_reason(
    index: BoundaryIndex, geometry: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        index.comuni_for(geometry)
    routed = index.route(geometry)
    assert isinstance(routed, NotInRegion)
    assert routed.reason.startswith("the location is not a GeoJSON geometry")


def test_an_invalid_bow_tie_polygon_is_repaired_not_refused(index: BoundaryIndex) -> None:
    inner = COMUNI.by_slug("prato").geometry.representative_point()
    x, y, d = inner.x, inner.y, 0.001
    bow_tie = [[x - d, y - d], [x + d, y + d], [x + d, y - d], [x - d, y + d], [x - d, y - d]]
    assert "prato" in index.comuni_for({"type": "Polygon", "coordinates": [bow_tie]})


def test_an_index_over_other_named_boundaries() -> None:
    squares = {"west": box(0, 0, 1, 1), "east": box(1, 0, 2, 1), "overlap": box(0.5, 0.5, 1.5, 2)}
    index = BoundaryIndex(squares, label="district of the test", cell_degrees=0.1)
    assert index.names == ("west", "east", "overlap")
    assert index.comuni_at(0.25, 0.25) == ("west",)
    assert index.comuni_at(1.0, 0.25) == ("west", "east")  # on the shared edge
    assert index.comuni_at(0.75, 0.75) == ("west", "overlap")
    assert index.comuni_at(1.25, 1.75) == ("overlap",)
    assert index.route(point(5, 5)) == NotInRegion(
        "the point (5, 5) lies outside every district of the test"
    )
    assert index.stats.cells > index.stats.border > 0
    with pytest.raises(ValueError, match="at least one boundary"):
        BoundaryIndex({})


def test_the_default_grid_answers_most_points_inside_comuni_without_a_polygon_test(
    index: BoundaryIndex,
) -> None:
    stats = index.stats
    assert stats.cell_degrees == 0.005
    assert stats.inside > 4 * stats.border


def test_the_package_docstring_example_runs() -> None:
    results = doctest.testmod(regional_tenants, raise_on_error=False)
    assert results.attempted > 0
    assert results.failed == 0
