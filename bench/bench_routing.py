"""Point-to-comune lookups per second on one core: regional_tenants' cell grid vs an STRtree.

`python -m bench.bench_routing [--points N] [--cell-degrees D]` (or `python bench/bench_routing.py`
with the same options).
Point sets (seeded): N random points in the bounding box of Toscana (about 43% fall in a
comune) and N random points inside comuni. Columns, each the best of 3 passes:
- grid: `BoundaryIndex.comuni_at(lon, lat)` (cells answered without a polygon test, else a
  prepared point-in-polygon test on the cell's candidates);
- route: `BoundaryIndex.route({"type": "Point", ...})` (GeoJSON in, Routed/NotInRegion out);
- STRtree: the scalar baseline, `tree.query(Point(lon, lat), predicate="intersects")` with
  prepared comuni (on N/10 points);
- batch: the same query vectorized over the whole array (an upper bound for a bulk API).
It also checks that the grid's answers equal the STRtree's on every point.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

if __package__ in {None, ""}:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import shapely
from shapely.geometry import Point

from regional_tenants import BoundaryIndex, load_comuni

TARGET = 100_000
SEED = 20240514


def _best_rate(run: Callable[[], object], count: int, passes: int = 3) -> float:
    best = float("inf")
    for _ in range(passes):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return count / best


def _points_inside(
    tree: shapely.STRtree, bounds: Sequence[float], count: int, rng: np.random.Generator
) -> tuple[list[float], list[float]]:
    xs: list[float] = []
    ys: list[float] = []
    while len(xs) < count:
        x = rng.uniform(bounds[0], bounds[2], count)
        y = rng.uniform(bounds[1], bounds[3], count)
        inside = np.unique(tree.query(shapely.points(x, y), predicate="intersects")[0])
        xs += x[inside].tolist()
        ys += y[inside].tolist()
    return xs[:count], ys[:count]


def _strtree_answers(
    tree: shapely.STRtree, names: Sequence[str], xs: list[float], ys: list[float]
) -> list[tuple[str, ...]]:
    which, hit = tree.query(shapely.points(xs, ys), predicate="intersects")
    found: list[list[int]] = [[] for _ in xs]
    for i, j in zip(which.tolist(), hit.tolist(), strict=True):
        found[i].append(j)
    return [tuple(names[j] for j in sorted(js)) for js in found]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--points", type=int, default=100_000, help="points per set")
    parser.add_argument("--cell-degrees", type=float, default=0.005, help="grid cell size")
    args = parser.parse_args(argv if argv is not None else [])

    started = time.perf_counter()
    comuni = load_comuni()
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    index = BoundaryIndex(cell_degrees=args.cell_degrees)
    built = time.perf_counter() - started
    stats = index.stats
    geometries = np.array([c.geometry for c in comuni], dtype=object)
    names = [c.slug for c in comuni]
    tree = shapely.STRtree(geometries)  # comuni are prepared by the index already
    bounds = [float(v) for v in shapely.total_bounds(geometries)]
    rng = np.random.default_rng(SEED)
    box_x = rng.uniform(bounds[0], bounds[2], args.points).tolist()
    box_y = rng.uniform(bounds[1], bounds[3], args.points).tolist()
    sets = {
        "bbox of Toscana": (box_x, box_y),
        "inside comuni": _points_inside(tree, bounds, args.points, rng),
    }

    print(f"point lookups/s on one core ({os.cpu_count()} cores here), best of 3 passes")
    print(
        f"comuni: {len(comuni)} loaded in {loaded:.2f} s; grid of {stats.cell_degrees:g} deg "
        f"built in {built:.2f} s: {stats.cells:,} cells, {stats.inside:,} inside one comune, "
        f"{stats.border:,} crossed by a border"
    )
    print(f"target >= {TARGET:,}/s")
    head = (
        f"{'points':<16} {'n':>8} {'in comune':>9} {'grid':>10} {'route':>10} "
        f"{'STRtree':>9} {'batch':>10}"
    )
    print(head)
    print("-" * len(head))
    identical = True
    slowest = float("inf")
    for label, (xs, ys) in sets.items():
        pairs = list(zip(xs, ys, strict=True))
        geojson = [{"type": "Point", "coordinates": [x, y]} for x, y in pairs]
        answers = [index.comuni_at(x, y) for x, y in pairs]
        identical &= answers == _strtree_answers(tree, names, xs, ys)
        grid = _best_rate(lambda p=pairs, at=index.comuni_at: [at(x, y) for x, y in p], len(pairs))
        routed = _best_rate(
            lambda g=geojson, route=index.route: [route(point) for point in g], len(geojson)
        )
        sample = pairs[: max(1, len(pairs) // 10)]
        scalar = _best_rate(
            lambda s=sample: [tree.query(Point(x, y), predicate="intersects") for x, y in s],
            len(sample),
        )
        array = shapely.points(xs, ys)
        batch = _best_rate(lambda a=array: tree.query(a, predicate="intersects"), len(xs))
        hits = sum(1 for a in answers if a) / len(answers)
        slowest = min(slowest, grid)
        print(
            f"{label:<16} {len(pairs):>8,} {hits:>9.0%} {grid:>10,.0f} {routed:>10,.0f} "
            f"{scalar:>9,.0f} {batch:>10,.0f}",
            flush=True,
        )
    print(f"grid answers identical to the STRtree's: {'yes' if identical else 'NO'}")
    print(f"slowest grid rate {slowest:,.0f}/s: {'meets' if slowest >= TARGET else 'BELOW'} target")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
