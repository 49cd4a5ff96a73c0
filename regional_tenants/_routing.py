"""Which comuni a location lies in: a grid of precomputed cells over an STRtree.

The grid is precomputed once: a cell whose (slightly enlarged) box lies properly inside one
boundary, or touches none, holds its answer; only cells crossed by a border keep candidate
boundaries and run a point-in-polygon test on prepared geometries.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import compress
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.errors import ShapelyError
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from ._comuni import load_comuni

DEFAULT_CELL_DEGREES = 0.005  # about 400 m x 550 m in Toscana
_SPLIT = 4  # the grid is built coarse-to-fine: a crossed cell splits into 4 x 4
_LEVELS = 3
_COARSE: int = _SPLIT ** (_LEVELS - 1)  # fine cells across a coarsest cell
_EPSILON = 1e-9  # degrees (0.1 mm) added around each cell box: float-rounding margin

IntArray = NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class Routed:
    """The names (tenant slugs) of the boundaries a location lies in or touches, in index order."""

    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NotInRegion:
    """A location no boundary contains, or no location at all: a reason for the dead letters."""

    reason: str


@dataclass(frozen=True, slots=True)
class GridStats:
    """The size of the lookup grid: cells in all, crossed by a border, inside some boundary."""

    cell_degrees: float
    cells: int
    border: int
    inside: int


class _Border:
    """A cell crossed by a border: its candidate boundaries, tested exactly."""

    __slots__ = ("geometries", "names")

    def __init__(self, names: tuple[str, ...], geometries: NDArray[np.object_]) -> None:
        self.names = names
        self.geometries = geometries

    def resolve(self, longitude: float, latitude: float) -> tuple[str, ...]:
        hits = shapely.intersects_xy(self.geometries, longitude, latitude)
        return tuple(compress(self.names, hits.tolist()))


_Cell = tuple[str, ...] | _Border


class BoundaryIndex:
    """Named boundaries (the comuni of Toscana by default) with point and geometry lookups."""

    __slots__ = (
        "_cells",
        "_geometries",
        "_inverse",
        "_names",
        "_nx",
        "_ny",
        "_stats",
        "_tree",
        "_x0",
        "_y0",
        "label",
    )

    def __init__(
        self,
        boundaries: Mapping[str, BaseGeometry] | None = None,
        *,
        label: str = "comune of Toscana",
        cell_degrees: float = DEFAULT_CELL_DEGREES,
    ) -> None:
        """Index `boundaries` (name -> polygon); about 0.5 s for the 273 comuni."""
        if boundaries is None:
            boundaries = load_comuni().boundaries()
        if not boundaries:
            raise ValueError("a BoundaryIndex needs at least one boundary")
        if not cell_degrees > 0:
            raise ValueError("cell_degrees must be positive")
        self.label = label
        self._names = tuple(boundaries)
        self._geometries: NDArray[np.object_] = np.array(list(boundaries.values()), dtype=object)
        shapely.prepare(self._geometries)
        self._tree = shapely.STRtree(self._geometries)
        minx, miny, maxx, maxy = (float(v) for v in shapely.total_bounds(self._geometries))
        coarse = cell_degrees * _COARSE
        self._x0 = minx - cell_degrees
        self._y0 = miny - cell_degrees
        self._inverse = 1.0 / cell_degrees
        ncx = math.ceil((maxx - self._x0) / coarse) + 1
        ncy = math.ceil((maxy - self._y0) / coarse) + 1
        self._nx = ncx * _COARSE
        self._ny = ncy * _COARSE
        cells, self._stats = self._build(cell_degrees, ncx, ncy)
        self._cells: list[_Cell] = cells

    @property
    def names(self) -> tuple[str, ...]:
        """The indexed names, in index order."""
        return self._names

    @property
    def stats(self) -> GridStats:
        """How many grid cells there are and how many need a polygon test."""
        return self._stats

    def comuni_at(self, longitude: float, latitude: float) -> tuple[str, ...]:
        """Names whose boundary contains or touches the point; usually one, none outside."""
        col = (longitude - self._x0) * self._inverse
        row = (latitude - self._y0) * self._inverse
        if 0.0 <= col < self._nx and 0.0 <= row < self._ny:  # False for NaN too
            cell = self._cells[int(row) * self._nx + int(col)]
            if isinstance(cell, tuple):
                return cell
            return cell.resolve(longitude, latitude)
        return ()

    def comuni_for(self, geometry: Mapping[str, Any]) -> tuple[str, ...]:
        """Names for a GeoJSON geometry: containing a Point, intersecting anything else.

        Raises ValueError when `geometry` is not a GeoJSON geometry.
        """
        if isinstance(geometry, Mapping) and geometry.get("type") == "Point":
            longitude, latitude = _position(geometry.get("coordinates"))
            return self.comuni_at(longitude, latitude)
        return self._intersecting(_shape(geometry))

    def route(self, geometry: Mapping[str, Any]) -> Routed | NotInRegion:
        """Where an entity's location belongs, or why it belongs nowhere (never raises)."""
        try:
            if isinstance(geometry, Mapping) and geometry.get("type") == "Point":
                longitude, latitude = _position(geometry.get("coordinates"))
                names = self.comuni_at(longitude, latitude)
                if names:
                    return Routed(names)
                return NotInRegion(
                    f"the point ({longitude:g}, {latitude:g}) lies outside every {self.label}"
                )
            found = _shape(geometry)
        except ValueError as exc:
            return NotInRegion(f"the location is not a GeoJSON geometry: {exc}")
        if found.is_empty:
            return NotInRegion(f"the {found.geom_type} is empty")
        names = self._intersecting(found)
        if names:
            return Routed(names)
        bounds = ", ".join(f"{v:g}" for v in found.bounds)
        return NotInRegion(
            f"the {found.geom_type} with bounds ({bounds}) lies outside every {self.label}"
        )

    def _intersecting(self, geometry: BaseGeometry) -> tuple[str, ...]:
        hits = self._tree.query(geometry, predicate="intersects")
        return tuple(self._names[i] for i in sorted(hits.tolist()))

    def _build(self, step: float, ncx: int, ncy: int) -> tuple[list[_Cell], GridStats]:
        """Classify cells coarse to fine; only cells a border crosses are split further."""
        geometries = self._geometries
        singles: list[_Cell] = [(), *((name,) for name in self._names)]
        extra: dict[tuple[int, ...], int] = {}
        values: list[_Cell] = list(singles)
        codes = np.zeros((self._ny, self._nx), dtype=np.int32)

        def code_of(members: tuple[int, ...], border: bool) -> int:
            key = (-1, *members) if border else members
            if not border and len(members) == 1:
                return members[0] + 1
            if key not in extra:
                names = tuple(self._names[i] for i in members)
                extra[key] = len(values)
                values.append(_Border(names, geometries[list(members)]) if border else names)
            return extra[key]

        ys, xs = np.divmod(np.arange(ncx * ncy), ncx)
        cells_x, cells_y = xs.astype(np.intp), ys.astype(np.intp)
        pairs: tuple[IntArray, IntArray] | None = None
        border_cells = 0
        for level in reversed(range(_LEVELS)):
            size: int = _SPLIT**level
            cell = step * size
            boxes = shapely.box(
                self._x0 + cells_x * cell - _EPSILON,
                self._y0 + cells_y * cell - _EPSILON,
                self._x0 + (cells_x + 1) * cell + _EPSILON,
                self._y0 + (cells_y + 1) * cell + _EPSILON,
            )
            if pairs is None:
                box_of, geom_of = self._tree.query(boxes)
            else:
                box_of, geom_of = pairs
            hit = shapely.intersects(geometries[geom_of], boxes[box_of])
            box_of, geom_of = box_of[hit], geom_of[hit]
            order = np.lexsort((geom_of, box_of))
            box_of, geom_of = box_of[order], geom_of[order]
            inside = shapely.contains_properly(geometries[geom_of], boxes[box_of])
            touching = np.bincount(box_of, minlength=len(boxes))
            containing = np.bincount(box_of[inside], minlength=len(boxes))
            resolved = touching == containing
            last = level == 0
            cell_codes = np.zeros(len(boxes), dtype=np.int32)
            single = resolved & (touching == 1)
            first = np.searchsorted(box_of, np.arange(len(boxes)))
            cell_codes[single] = geom_of[first[single]] + 1
            todo = np.flatnonzero((resolved & (touching > 1)) | (~resolved if last else False))
            starts = np.searchsorted(box_of, todo)
            ends = np.searchsorted(box_of, todo, side="right")
            for index, start, end in zip(
                todo.tolist(), starts.tolist(), ends.tolist(), strict=True
            ):
                members = tuple(geom_of[start:end].tolist())
                cell_codes[index] = code_of(members, border=not resolved[index])
            if last:
                codes[cells_y, cells_x] = cell_codes
                border_cells = int((~resolved).sum())
                break
            for index in np.flatnonzero(resolved).tolist():
                x, y = int(cells_x[index]) * size, int(cells_y[index]) * size
                codes[y : y + size, x : x + size] = cell_codes[index]
            parents = np.flatnonzero(~resolved)
            cells_x, cells_y, pairs = _split(parents, cells_x, cells_y, box_of, geom_of)
        flat = codes.ravel()
        cells = [values[code] for code in flat.tolist()]
        answered = np.array([type(value) is tuple and bool(value) for value in values])
        stats = GridStats(step, int(flat.size), border_cells, int(answered[flat].sum()))
        return cells, stats


def _split(
    parents: IntArray, cells_x: IntArray, cells_y: IntArray, box_of: IntArray, geom_of: IntArray
) -> tuple[IntArray, IntArray, tuple[IntArray, IntArray]]:
    """The 4 x 4 children of each parent cell, with the parents' boundaries as candidates."""
    offset_y, offset_x = np.divmod(np.arange(_SPLIT * _SPLIT), _SPLIT)
    child_x = (cells_x[parents, None] * _SPLIT + offset_x).ravel()
    child_y = (cells_y[parents, None] * _SPLIT + offset_y).ravel()
    slot = np.full(len(cells_x), -1, dtype=np.intp)
    slot[parents] = np.arange(len(parents))
    keep = slot[box_of] >= 0
    parent_slot, candidate = slot[box_of[keep]], geom_of[keep]
    per_child = np.arange(_SPLIT * _SPLIT)
    child_of = (parent_slot[:, None] * _SPLIT * _SPLIT + per_child).ravel()
    geom_of_child = np.repeat(candidate, _SPLIT * _SPLIT)
    return child_x, child_y, (child_of, geom_of_child)


def _position(coordinates: object) -> tuple[float, float]:
    if not isinstance(coordinates, list | tuple) or len(coordinates) not in (2, 3):
        raise ValueError("a Point needs coordinates [longitude, latitude]")
    longitude, latitude = coordinates[0], coordinates[1]
    for value in (longitude, latitude):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ValueError(f"coordinate {value!r} is not a finite number")
    return float(longitude), float(latitude)


def _shape(geometry: object) -> BaseGeometry:
    if not isinstance(geometry, Mapping) or not isinstance(geometry.get("type"), str):
        raise ValueError("expected an object with a GeoJSON geometry `type`")
    if geometry["type"] in {"Feature", "FeatureCollection"}:
        raise ValueError(f"expected a geometry, not a {geometry['type']}")
    try:
        found = shape(geometry)
        if not found.is_valid:
            found = shapely.make_valid(found)
    except (ShapelyError, KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise ValueError(f"{geometry['type']}: {exc or type(exc).__name__}") from None
    if not isinstance(found, BaseGeometry):
        raise ValueError(f"unsupported geometry type {geometry['type']!r}")
    return found
