"""Cost of API-side validation (`apiValidation`): `enforce` against `off`, over real HTTP.

`python -m bench.bench_api_validation [--count N] [--concurrency N] [--rounds N]`.
`contesto up` on an embedded store; two tenants onboarded with the model
`toscana/AirQualityObserved`, one left `off`, one set to `enforce`. In each round and for
each tenant, in rotating order: N Create Entity of valid AirQualityObserved entities, then
N Partial Attribute Updates of `pm10` (the sensor hot path, which under `enforce` reads
the entity, checks it merged and writes it back). Reported: operations/s per tenant and
operation (the best round), and enforce's rate as a fraction of off's. Results go to
bench/results/api_validation.json.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

if __package__ in {None, ""}:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench._results import RESULTS_DIR, write_results
from bench.bench_broker import contesto_up
from contesto import EmbeddedStore

RESULTS = RESULTS_DIR / "api_validation.json"
MODES = ("off", "enforce")
MODEL = "toscana/AirQualityObserved"


def _entity(entity_id: str, pm10: float) -> dict[str, Any]:
    return {
        "id": entity_id,
        "type": "AirQualityObserved",
        "dateObserved": {"type": "Property", "value": "2026-01-01T00:00:00Z"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [11, 43.8]}},
        "pm10": {"type": "Property", "value": pm10, "unitCode": "GQ"},
        "pm25": {"type": "Property", "value": 10, "unitCode": "GQ"},
        "no2": {"type": "Property", "value": 30, "unitCode": "GQ"},
    }


async def _timed(count: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> float:
    """Operations per second of `count` calls of `one`, `concurrency` in flight."""
    queue = iter(range(count))

    async def worker() -> None:
        for index in queue:
            await one(index)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - started)


async def _onboard(http: httpx.AsyncClient, slug: str, mode: str) -> None:
    answer = await http.post(
        "/admin/tenants", json={"slug": slug, "kind": "utility", "models": [MODEL]}
    )
    answer.raise_for_status()
    answer = await http.put(f"/admin/tenants/{slug}/api-validation", json={"apiValidation": mode})
    answer.raise_for_status()


async def measure(url: str, count: int, concurrency: int, rounds: int) -> dict[str, Any]:
    tenants = {mode: f"bench{mode}{secrets.token_hex(3)}" for mode in MODES}
    best: dict[str, dict[str, float]] = {mode: {"create": 0.0, "update": 0.0} for mode in MODES}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30.0, limits=limits) as http:
        for mode, slug in tenants.items():
            await _onboard(http, slug, mode)
        for round_number in range(rounds):
            order = MODES if round_number % 2 == 0 else tuple(reversed(MODES))
            for mode in order:
                headers = {"NGSILD-Tenant": tenants[mode]}
                prefix = f"urn:ngsi-ld:AirQualityObserved:r{round_number}-"

                async def create(
                    index: int, headers: dict[str, str] = headers, prefix: str = prefix
                ) -> None:
                    body = _entity(f"{prefix}{index}", 20)
                    answer = await http.post("/ngsi-ld/v1/entities", json=body, headers=headers)
                    if answer.status_code != 201:
                        raise RuntimeError(f"create answered {answer.status_code}: {answer.text}")

                async def update(
                    index: int, headers: dict[str, str] = headers, prefix: str = prefix
                ) -> None:
                    path = f"/ngsi-ld/v1/entities/{prefix}{index}/attrs/pm10"
                    body = {"type": "Property", "value": 21 + index % 50}
                    answer = await http.patch(path, json=body, headers=headers)
                    if answer.status_code != 204:
                        raise RuntimeError(f"update answered {answer.status_code}: {answer.text}")

                rates = best[mode]
                rates["create"] = max(rates["create"], await _timed(count, concurrency, create))
                rates["update"] = max(rates["update"], await _timed(count, concurrency, update))
    ratio = {
        operation: round(best["enforce"][operation] / best["off"][operation], 2)
        for operation in ("create", "update")
    }
    return {
        "per_second": {m: {k: round(v) for k, v in r.items()} for m, r in best.items()},
        "enforce_rate_over_off": ratio,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=500, help="operations per phase")
    parser.add_argument("--concurrency", type=int, default=8, help="operations in flight")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the best counts")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args(argv if argv is not None else [])
    with tempfile.TemporaryDirectory(prefix="bench-api-validation-") as tmp:
        data_dir = Path(tmp)
        with (
            EmbeddedStore(data_dir / "db", log_path=data_dir / "secantus.log") as store,
            contesto_up(store.url, data_dir, "warning") as up,
        ):
            figures = asyncio.run(measure(up.url, args.count, args.concurrency, args.rounds))
    figures |= {"count": args.count, "concurrency": args.concurrency, "rounds": args.rounds}
    for mode, rates in figures["per_second"].items():
        print(f"{mode:8} creates/s {rates['create']:6}  pm10 updates/s {rates['update']:6}")
    print(f"enforce's rate over off's: {figures['enforce_rate_over_off']}")
    write_results(args.output, "bench_api_validation", figures, argv)
    print(f"results in {args.output}")


if __name__ == "__main__":
    main(sys.argv[1:])
