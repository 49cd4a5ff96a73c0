"""Geo-queries (clause 4.10): parsing of georel/geometry/coordinates/geoproperty and the
exact test of a stored geometry against them.

Predicates follow the OGC simple-features relations on the GeoJSON coordinates as
RFC 7946 defines them (straight lines in longitude/latitude); distances for `near` are
great-circle metres (haversine) to the nearest point of the stored geometry.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import shapely
from shapely import Geometry, prepare
from shapely.affinity import scale as scaled
from shapely.geometry import Point, shape
from shapely.ops import nearest_points

from context_broker._errors import BadRequestData
from context_broker._geojson import check_geometry
from context_broker._query._cells import (
    BBox,
    bbox_of,
    candidate_filter,
    point_filters,
)

EARTH_RADIUS_M = 6_371_008.8
GEORELS = ("near", "within", "contains", "intersects", "disjoint", "equals", "overlaps")
_METRES_PER_DEGREE = math.pi * EARTH_RADIUS_M / 180.0


@dataclass(frozen=True)
class GeoQuery:
    """A parsed geoQ: the relation, the reference geometry and the GeoProperty (expanded)."""

    georel: str
    geometry: dict[str, Any]
    geoproperty: str
    max_distance: float | None = None
    min_distance: float | None = None

    @property
    def shape(self) -> Geometry:
        return _shape(self.geometry)

    def search_box(self) -> BBox | None:
        """The box every match lies in, or None when matches may lie anywhere."""
        if self.georel == "disjoint":
            return None
        box = bbox_of(self.geometry["coordinates"])
        if self.georel != "near":
            return box
        if self.max_distance is None:
            return None
        west, south, east, north = box
        dlat = self.max_distance / _METRES_PER_DEGREE
        widest = max(abs(south - dlat), abs(north + dlat))
        if widest >= 89.0:
            return (-180.0, max(-90.0, south - dlat), 180.0, min(90.0, north + dlat))
        dlon = dlat / math.cos(math.radians(widest))
        if dlon >= 180.0:
            return (-180.0, south - dlat, 180.0, north + dlat)
        return (west - dlon, south - dlat, east + dlon, north + dlat)

    def candidate_filters(self, field: str) -> list[dict[str, Any]] | None:
        """One-field filters whose union holds every entity whose GeoProperty `field` may
        match: key ranges for points, then a cell lookup for other geometries. None when
        matches may lie anywhere."""
        box = self.search_box()
        if box is None:
            return None
        return [
            *point_filters(field, box, self._meets_region),
            candidate_filter(field, box, self._meets_region),
        ]

    def _meets_region(self, cells: Sequence[BBox]) -> list[bool]:
        """Whether each grid cell may hold part of a match (used to trim the covering)."""
        if self.georel == "near":
            if self.geometry["type"] != "Point":
                return [True] * len(cells)  # the search box around the reference bounds it
            lon, lat = self.geometry["coordinates"][:2]
            limit = self.max_distance if self.max_distance is not None else math.inf
            return [
                haversine_m(lon, lat, min(max(lon, west), east), min(max(lat, south), north))
                <= limit
                for west, south, east, north in cells
            ]
        boxes = shapely.box(*zip(*cells, strict=True)) if cells else []
        return [bool(meets) for meets in shapely.intersects(self._prepared, boxes)]

    @cached_property
    def _prepared(self) -> Geometry:
        reference = self.shape
        prepare(reference)
        return reference

    def matches(self, stored: dict[str, Any]) -> float | None:
        """None if `stored` does not satisfy the query; else its sort key (distance in
        metres for near, 0 otherwise)."""
        if self.georel == "near":
            if self.geometry["type"] == "Point" and stored["type"] == "Point":
                lon, lat = self.geometry["coordinates"][:2]
                distance = haversine_m(lon, lat, *stored["coordinates"][:2])
            else:
                distance = distance_m(self._prepared, _shape(stored))
            if self.max_distance is not None and distance > self.max_distance:
                return None
            if self.min_distance is not None and distance < self.min_distance:
                return None
            return distance
        entity = Point(stored["coordinates"]) if stored["type"] == "Point" else _shape(stored)
        # The relation seen from the prepared reference: entity R reference.
        return 0.0 if _CONVERSE[self.georel](self._prepared, entity) else None

    def match_all(self, stored: Sequence[dict[str, Any]]) -> list[float | None]:
        """`matches` of each geometry; points are tested together where the relation allows."""
        test = _POINTS_TEST.get(self.georel)
        points = [i for i, geometry in enumerate(stored) if geometry["type"] == "Point"]
        if test is None or len(points) < 2:
            return [self.matches(geometry) for geometry in stored]
        keys: list[float | None] = [
            None if geometry["type"] == "Point" else self.matches(geometry) for geometry in stored
        ]
        xs = [float(stored[i]["coordinates"][0]) for i in points]
        ys = [float(stored[i]["coordinates"][1]) for i in points]
        for i, hit in zip(points, test(self._prepared, xs, ys), strict=True):
            keys[i] = 0.0 if hit else None
        return keys


_CONVERSE: dict[str, Callable[[Geometry, Geometry], bool]] = {
    "within": lambda reference, entity: bool(reference.contains(entity)),
    "contains": lambda reference, entity: bool(reference.within(entity)),
    "intersects": lambda reference, entity: bool(reference.intersects(entity)),
    "disjoint": lambda reference, entity: bool(reference.disjoint(entity)),
    "equals": lambda reference, entity: bool(reference.equals(entity)),
    "overlaps": lambda reference, entity: bool(reference.overlaps(entity)),
}


# Relations of points (given as coordinates) to the reference, vectorized: a Point is within
# or intersects the reference when the reference contains or intersects it.
_POINTS_TEST: dict[str, Callable[[Geometry, list[float], list[float]], Any]] = {
    "within": shapely.contains_xy,
    "intersects": shapely.intersects_xy,
    "disjoint": lambda reference, xs, ys: [
        not hit for hit in shapely.intersects_xy(reference, xs, ys)
    ],
}


def _shape(geometry: dict[str, Any]) -> Geometry:
    return shape(geometry)


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def distance_m(reference: Geometry, entity: Geometry) -> float:
    """Great-circle metres between the nearest points of two geometries (0 if they meet)."""
    if entity.intersects(reference):
        return 0.0
    if isinstance(reference, Point) and isinstance(entity, Point):
        return haversine_m(reference.x, reference.y, entity.x, entity.y)
    # The nearest pair is found in a local plane scaled at the reference latitude; their
    # distance is then measured on the sphere.
    scale = math.cos(math.radians(reference.centroid.y))
    near_ref, near_entity = nearest_points(
        scaled(reference, xfact=scale, yfact=1.0, origin=(0, 0)),
        scaled(entity, xfact=scale, yfact=1.0, origin=(0, 0)),
    )
    return haversine_m(near_ref.x / scale, near_ref.y, near_entity.x / scale, near_entity.y)


@dataclass(frozen=True)
class DistanceFrom:
    """The reference geometry of an order by distance (clause 4.23): great-circle metres
    (haversine) from it to the nearest point of an entity's GeoProperty."""

    geometry: dict[str, Any]

    @cached_property
    def _prepared(self) -> Geometry:
        reference = _shape(self.geometry)
        prepare(reference)
        return reference

    def metres_to(self, stored: dict[str, Any]) -> float:
        if self.geometry["type"] == "Point" and stored["type"] == "Point":
            lon, lat = self.geometry["coordinates"][:2]
            return haversine_m(lon, lat, *stored["coordinates"][:2])
        return distance_m(self._prepared, _shape(stored))


def parse_distance_from(geometry: object, coordinates: object) -> DistanceFrom:
    """The reference of an order by distance: `coordinates` (a JSON array, or its text in a
    URL) of a `geometry` (Point by default; any GeoJSON type but GeometryCollection)."""
    if coordinates is None:
        raise BadRequestData(
            "ordering by distance (dist-asc, dist-desc) needs the coordinates of the "
            "reference geometry: orderFrom in the URL, coordinates in a Query's ordering"
        )
    if geometry is not None and not isinstance(geometry, str):
        raise BadRequestData(f"the ordering geometry must be a GeoJSON type; got {geometry!r}")
    if isinstance(coordinates, str):
        try:
            coordinates = json.loads(coordinates)
        except ValueError:
            raise BadRequestData(
                f"orderFrom must be a JSON array such as [11.2558,43.7696]; got {coordinates!r}"
            ) from None
    if not isinstance(coordinates, list):
        raise BadRequestData(f"the ordering coordinates must be a JSON array; got {coordinates!r}")
    value = check_geometry(
        {"type": geometry or "Point", "coordinates": coordinates}, "the ordering geometry"
    )
    return DistanceFrom(value)


def parse_geo_query(
    georel: str | None,
    geometry: str | None,
    coordinates: str | object | None,
    geoproperty: str | None,
    expand: Callable[[str], str],
) -> GeoQuery | None:
    """The geoQ of a request (GET parameters or a Query's geoQ member); None if absent."""
    if georel is None and geometry is None and coordinates is None:
        if geoproperty is not None:
            raise BadRequestData("geoproperty needs georel, geometry and coordinates")
        return None
    if georel is None or geometry is None or coordinates is None:
        raise BadRequestData("a geo-query needs all of georel, geometry and coordinates")
    relation, max_distance, min_distance = _parse_georel(georel)
    if isinstance(coordinates, str):
        try:
            coordinates = json.loads(coordinates)
        except ValueError:
            raise BadRequestData(
                f"coordinates must be a JSON array such as [11.2558,43.7696]; got {coordinates!r}"
            ) from None
    value = check_geometry({"type": geometry, "coordinates": coordinates}, "the geo-query geometry")
    return GeoQuery(
        georel=relation,
        geometry=value,
        geoproperty=expand(geoproperty or "location"),
        max_distance=max_distance,
        min_distance=min_distance,
    )


def _parse_georel(georel: str) -> tuple[str, float | None, float | None]:
    relation, *modifiers = georel.split(";")
    if relation not in GEORELS:
        raise BadRequestData(f"georel must be one of {', '.join(GEORELS)}; got {relation!r}")
    if relation != "near":
        if modifiers:
            raise BadRequestData(f"georel {relation} takes no distance; got {georel!r}")
        return relation, None, None
    distances: dict[str, float] = {}
    for modifier in modifiers:
        name, sep, number = modifier.partition("==")
        if not sep or name not in ("maxDistance", "minDistance") or name in distances:
            raise BadRequestData(
                "georel near takes maxDistance==<metres> and/or minDistance==<metres>; "
                f"got {georel!r}"
            )
        try:
            distances[name] = float(number)
        except ValueError:
            raise BadRequestData(f"{name} must be a number of metres; got {number!r}") from None
        if not math.isfinite(distances[name]) or distances[name] < 0:
            raise BadRequestData(f"{name} must be a non-negative number of metres")
    if len(distances) != 1:
        raise BadRequestData(
            "georel near needs one of maxDistance==<metres> or minDistance==<metres>"
        )
    return relation, distances.get("maxDistance"), distances.get("minDistance")
