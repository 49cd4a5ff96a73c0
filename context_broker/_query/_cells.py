"""A hierarchical lon/lat grid for geo-query candidates, kept in each entity document.

A cell of level L is one of 2^L x 2^L equal lon/lat rectangles.

Points, the common case, store one integer in `gp.<name>`: the position of their cell of
the finest level (16) along a Hilbert curve. The curve runs through each coarser cell in
one piece, so a large query region becomes a few ranges of those keys, each a range scan
of a single-valued index; a small one asks for its few cells with one `$in`. (A `$in` on a
multikey array costs the embedded store, which re-tests each document it fetches, up to
values x array length comparisons per document: most of a large query's time.)

Other geometries store in `gc.<name>` the cells covering their bounding box at every level
where at most `_MAX_OWN` cells do, plus those of the finest such level again marked with
`OWN`; a cell id packs the level and the column/row into one integer. A region query
covered by cells Q of level Lq finds every candidate with one `$in` on that array: Q
(geometries at least as fine as Lq) and OWN-marked ancestors of Q (coarser geometries).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

LEVELS = (4, 6, 8, 10, 12, 14, 16)
OWN = 1 << 48
KEY_LEVEL = LEVELS[-1]
_MAX_OWN = 4
# Cells of a `gc` lookup: each is an index probe, and the embedded store compares every
# candidate with each of them; geometries other than points are few, so a coarse covering.
_MAX_QUERY = 16
_MAX_KEY_CELLS = 128
# A point lookup asks for at most this many cells of the finest level with one `$in`;
# beyond, for key ranges, each one query: past _MAX_RANGES, the closest ranges are joined
# (a few more candidates cost less than another round trip).
_MAX_IN = 16
_MAX_RANGES = 4
# Cell boxes are widened this much (degrees, about 0.1 mm) before they are tested against
# a region, so that float rounding of their corners never drops a point on their edge.
_EPSILON = 1e-9
BBox = tuple[float, float, float, float]  # west, south, east, north
Meets = Callable[[Sequence[BBox]], Sequence[bool]]
"""Which of the cells (as boxes) may hold part of a match."""


def cell_id(level: int, column: int, row: int) -> int:
    return (level << 40) | (column << 20) | row


def _column(lon: float, level: int) -> int:
    # (lon + 180) / 360 is scaled by a power of two, which is exact: a point's column at a
    # coarser level is its finer column shifted right, as the key ranges assume.
    n = 1 << level
    return min(max(int((lon + 180.0) / 360.0 * n), 0), n - 1)


def _row(lat: float, level: int) -> int:
    n = 1 << level
    return min(max(int((lat + 90.0) / 180.0 * n), 0), n - 1)


def _span(bbox: BBox, level: int) -> tuple[int, int, int, int]:
    west, south, east, north = bbox
    return _column(west, level), _column(east, level), _row(south, level), _row(north, level)


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


def point_key(coordinates: Sequence[float]) -> int:
    """The `gp` entry of a stored Point: its finest cell's position on the Hilbert curve."""
    lon, lat = coordinates[0], coordinates[1]
    return _hilbert(_column(lon, KEY_LEVEL), _row(lat, KEY_LEVEL), KEY_LEVEL)


def _hilbert(column: int, row: int, level: int) -> int:
    """The distance of a cell along the Hilbert curve over the 2^level x 2^level grid.

    The curve visits the four quarters of each cell one after the other, so the cells of
    a coarser cell, at any finer level, are contiguous on it (unlike the row order).
    """
    n = 1 << level
    x, y, distance = column, row, 0
    s = n >> 1
    while s:
        rx = 1 if x & s else 0
        ry = 1 if y & s else 0
        distance += s * s * ((3 * rx) ^ ry)
        if not ry:  # rotate the quarter so that the curve inside it starts where it enters
            if rx:
                x, y = n - 1 - x, n - 1 - y
            x, y = y, x
        s >>= 1
    return distance


def point_filters(field: str, bbox: BBox, meets: Meets | None = None) -> list[dict[str, Any]]:
    """MongoDB filters on `gp.<field>` whose union holds every stored Point in a cell of
    `bbox` that `meets` the query region: one `$in`, or one filter per key range."""
    level = 0
    while level < KEY_LEVEL and _count(bbox, level + 1) <= _MAX_KEY_CELLS:
        level += 1
    col0, col1, row0, row1 = _span(bbox, level)
    cells = [(col, row) for col in range(col0, col1 + 1) for row in range(row0, row1 + 1)]
    if meets is not None:
        kept = meets([_widened(cell_box(cell_id(level, *cell))) for cell in cells])
        cells = [cell for cell, keep in zip(cells, kept, strict=True) if keep]
    positions = sorted(_hilbert(col, row, level) for col, row in cells)
    if not positions:
        return []
    if level == KEY_LEVEL and len(positions) <= _MAX_IN:
        return [{f"gp.{field}": {"$in": positions}}]
    runs: list[list[int]] = []  # [first, last] positions of consecutive cells
    for position in positions:
        if runs and runs[-1][1] + 1 == position:
            runs[-1][1] = position
        else:
            runs.append([position, position])
    while len(runs) > _MAX_RANGES:
        gaps = [after[0] - before[1] for before, after in pairwise(runs)]
        closest = gaps.index(min(gaps))
        runs[closest][1] = runs.pop(closest + 1)[1]
    shift = 2 * (KEY_LEVEL - level)
    return [
        {f"gp.{field}": {"$gte": first << shift, "$lt": (last + 1) << shift}}
        for first, last in runs
    ]


def _widened(box: BBox) -> BBox:
    west, south, east, north = box
    return west - _EPSILON, south - _EPSILON, east + _EPSILON, north + _EPSILON


def geometry_cells(geometry: dict[str, Any]) -> list[int]:
    """The `gc` entry of one stored GeoJSON geometry other than a Point."""
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


def query_cells(bbox: BBox, meets: Meets | None = None) -> tuple[list[int], list[int]]:
    """Cells covering a query region at the finest level that keeps the list short (only
    those that `meets` the region, when given) and their ancestors at coarser levels."""
    level = LEVELS[0]
    for candidate in LEVELS:
        if _count(bbox, candidate) > _MAX_QUERY:
            break
        level = candidate
    cells = covering(bbox, level)
    if meets is not None:
        kept = meets([_widened(cell_box(cell)) for cell in cells])
        cells = [cell for cell, keep in zip(cells, kept, strict=True) if keep]
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


def candidate_filter(field: str, bbox: BBox, meets: Meets | None = None) -> dict[str, Any]:
    """A MongoDB filter on `gc.<field>` matching every stored geometry other than a Point
    that may meet the query region: its box meets `bbox` in a cell that `meets` the region."""
    cells, ancestors = query_cells(bbox, meets)
    return {f"gc.{field}": {"$in": cells + [cell | OWN for cell in ancestors]}}
