"""A hierarchical lon/lat grid for geo-query candidates, kept in each entity document.

A cell of level L is one of 2^L x 2^L equal lon/lat rectangles; its id packs the level
and the column/row into one integer. Each GeoProperty value stores in `gc.<name>` the
cells covering its bounding box at every level where at most `_MAX_OWN` cells do, plus
those of the finest such level again marked with `OWN`. A region query covered by cells
Q of level Lq finds every candidate with one `$in` on that array: Q (geometries at least
as fine as Lq) and OWN-marked ancestors of Q (coarser geometries). One `$in` on one
multikey index, because the embedded store answers an `$or` with a collection scan.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

LEVELS = (4, 6, 8, 10, 12, 14, 16)
OWN = 1 << 48
_MAX_OWN = 4
_MAX_QUERY = 128
BBox = tuple[float, float, float, float]  # west, south, east, north


def cell_id(level: int, column: int, row: int) -> int:
    return (level << 40) | (column << 20) | row


def _span(bbox: BBox, level: int) -> tuple[int, int, int, int]:
    n = 1 << level
    west, south, east, north = bbox
    col0 = min(max(int((west + 180.0) / 360.0 * n), 0), n - 1)
    col1 = min(max(int((east + 180.0) / 360.0 * n), 0), n - 1)
    row0 = min(max(int((south + 90.0) / 180.0 * n), 0), n - 1)
    row1 = min(max(int((north + 90.0) / 180.0 * n), 0), n - 1)
    return col0, col1, row0, row1


def _count(bbox: BBox, level: int) -> int:
    col0, col1, row0, row1 = _span(bbox, level)
    return (col1 - col0 + 1) * (row1 - row0 + 1)


def covering(bbox: BBox, level: int) -> list[int]:
    col0, col1, row0, row1 = _span(bbox, level)
    return [
        cell_id(level, col, row) for col in range(col0, col1 + 1) for row in range(row0, row1 + 1)
    ]


def bbox_of(coordinates: Any) -> BBox:
    """The bounding box of a GeoJSON coordinates array of any nesting."""
    west, south, east, north = math.inf, math.inf, -math.inf, -math.inf
    stack = [coordinates]
    while stack:
        item = stack.pop()
        if item and isinstance(item[0], int | float):
            lon, lat = float(item[0]), float(item[1])
            west, east = min(west, lon), max(east, lon)
            south, north = min(south, lat), max(north, lat)
        else:
            stack.extend(item)
    return west, south, east, north


def geometry_cells(geometry: dict[str, Any]) -> list[int]:
    """The `gc` entry of one stored GeoJSON geometry."""
    bbox = bbox_of(geometry["coordinates"])
    stored: list[int] = []
    own: list[int] = []
    for level in LEVELS:
        if _count(bbox, level) > _MAX_OWN:
            break
        own = covering(bbox, level)
        stored.extend(own)
    if not own:  # wider than four cells even at the coarsest level
        own = covering(bbox, LEVELS[0])
        stored = list(own)
    return stored + [cell | OWN for cell in own]


def cell_box(cell: int) -> BBox:
    """The lon/lat rectangle of a cell."""
    level, column, row = cell >> 40, (cell >> 20) & 0xFFFFF, cell & 0xFFFFF
    width, height = 360.0 / (1 << level), 180.0 / (1 << level)
    west, south = column * width - 180.0, row * height - 90.0
    return west, south, west + width, south + height


def query_cells(
    bbox: BBox, meets: Callable[[BBox], bool] | None = None
) -> tuple[list[int], list[int]]:
    """Cells covering a query region at the finest level that keeps the list short (only
    those that `meets` the region, when given) and their ancestors at coarser levels."""
    level = LEVELS[0]
    for candidate in LEVELS:
        if _count(bbox, candidate) > _MAX_QUERY:
            break
        level = candidate
    cells = covering(bbox, level)
    if meets is not None:
        cells = [cell for cell in cells if meets(cell_box(cell))]
    ancestors = {
        cell_id(coarser, *_ancestor(cell, coarser))
        for cell in cells
        for coarser in LEVELS
        if coarser < level
    }
    return cells, sorted(ancestors)


def _ancestor(cell: int, level: int) -> tuple[int, int]:
    shift = (cell >> 40) - level
    return ((cell >> 20) & 0xFFFFF) >> shift, (cell & 0xFFFFF) >> shift


def candidate_filter(
    field: str, bbox: BBox, meets: Callable[[BBox], bool] | None = None
) -> dict[str, Any]:
    """A MongoDB filter on `gc.<field>` matching every stored geometry that may meet the
    query region: its box meets `bbox` in a cell that `meets` the region."""
    cells, ancestors = query_cells(bbox, meets)
    return {f"gc.{field}": {"$in": cells + [cell | OWN for cell in ancestors]}}
