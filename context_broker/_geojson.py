"""Validation of GeoJSON geometries (RFC 7946) before they are stored: the syntax RFC 7946
asks, not OGC validity (a self-intersecting polygon is a GeoJSON geometry, clause 4.7.1)."""

from __future__ import annotations

import math
from typing import Any

from context_broker._errors import BadRequestData

GEOMETRY_TYPES = frozenset(
    {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}
)


def looks_like_geometry(value: object) -> bool:
    """True for an object shaped like a GeoJSON geometry (used to infer GeoProperty in concise)."""
    return (
        isinstance(value, dict)
        and value.get("type") in GEOMETRY_TYPES
        and "coordinates" in value
        and len(value) <= 3
    )


def check_geometry(value: object, what: str) -> dict[str, Any]:
    """Return `value` if it is a GeoJSON geometry, else raise BadRequestData saying why."""
    if not isinstance(value, dict):
        raise BadRequestData(f"{what} must be a GeoJSON geometry object; got {value!r}")
    kind = value.get("type")
    if kind not in GEOMETRY_TYPES:
        raise BadRequestData(
            f"{what} has GeoJSON type {kind!r}; expected one of {', '.join(sorted(GEOMETRY_TYPES))}"
        )
    coordinates = value.get("coordinates")
    depth = {
        "Point": 0,
        "MultiPoint": 1,
        "LineString": 1,
        "MultiLineString": 2,
        "Polygon": 2,
        "MultiPolygon": 3,
    }[kind]
    _check_nesting(coordinates, depth, what)
    if kind == "Point":
        return value
    assert isinstance(coordinates, list)  # checked by _check_nesting
    if kind in ("Polygon", "MultiPolygon"):
        polygons = [coordinates] if kind == "Polygon" else coordinates
        for rings in polygons:
            for ring in rings:
                if len(ring) < 4 or ring[0] != ring[-1]:
                    raise BadRequestData(
                        f"{what}: every polygon ring needs at least 4 positions and must end "
                        "where it starts"
                    )
    if kind in ("LineString", "MultiLineString"):
        lines = [coordinates] if kind == "LineString" else coordinates
        if any(len(line) < 2 for line in lines):
            raise BadRequestData(f"{what}: a LineString needs at least 2 positions")
    return value


def _check_nesting(coordinates: object, depth: int, what: str) -> None:
    if depth == 0:
        _check_position(coordinates, what)
        return
    if not isinstance(coordinates, list) or not coordinates:
        raise BadRequestData(f"{what}: coordinates must be a non-empty array at every level")
    for item in coordinates:
        _check_nesting(item, depth - 1, what)


def _check_position(position: object, what: str) -> None:
    if (
        not isinstance(position, list)
        or len(position) not in (2, 3)
        or not all(
            isinstance(c, int | float) and not isinstance(c, bool) and math.isfinite(c)
            for c in position
        )
    ):
        raise BadRequestData(f"{what}: a position must be [longitude, latitude]; got {position!r}")
    lon, lat = position[0], position[1]
    if not -180 <= lon <= 180 or not -90 <= lat <= 90:
        raise BadRequestData(
            f"{what}: position {position!r} is out of range (longitude -180..180, latitude -90..90)"
        )
