"""Query benchmark: GET /entities over 10k and 100k AirQualityObserved entities of a tenant.

`python -m bench.bench_query [--sizes 10000,100000] [--repeat N] [--store-dir DIR]`.
An embedded store runs as a child process, the tenants are seeded straight into it with the
broker's own document builder (seeding through the API would only measure writes; with
`--store-dir` the store is kept there and its seeded tenants are reused by later runs), and
the broker serves the NGSI-LD API from a second child process (uvicorn, as `contesto up`
runs it, without the MQTT side of the stack); this process sends the
queries one at a time and reports queries/s and the median latency of each kind:
type only (the first page, a page at offset 5000, and with count), type + q on a numeric
value, near 500 m, within the comune of Firenze, and paging through all entities within
Firenze. Entities lie uniformly over the bounding box of Tuscany. Seeded straight into the
store, a tenant has no id ranges yet: the broker counts them when it first opens it (the
first query, reported apart). Cost must stay flat from 10k to 100k for the selective
queries (the ratio column). Results go to bench/results/query.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if __package__ in {None, ""}:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from pymongo import AsyncMongoClient

from bench._results import write_results
from contesto import EmbeddedStore
from contesto._embedded import free_port
from context_broker._entities import build_document
from context_broker._jsonld import core_term_map
from context_broker._time import utc_now
from regional_tenants import MongoTenantDirectory
from tests._servers import wait_for_port

API = "/ngsi-ld/v1"
TUSCANY = (9.7, 42.3, 12.4, 44.5)
FIRENZE_CENTRE = [11.2558, 43.7696]
FIRENZE = json.loads((Path(__file__).parent / "data" / "firenze.geojson").read_text())
RESULTS = Path(__file__).resolve().parent / "results" / "query.json"
SELECTIVE = (
    "type only",
    "type only, offset 5000",
    "type only, count",
    "type + q no2>99.5",
    "near 500 m",
    "within Firenze",
)


def entity(index: int, rng: random.Random) -> dict[str, Any]:
    lon = rng.uniform(TUSCANY[0], TUSCANY[2])
    lat = rng.uniform(TUSCANY[1], TUSCANY[3])
    return {
        "id": f"urn:ngsi-ld:AirQualityObserved:bench-{index:06d}",
        "type": "AirQualityObserved",
        "no2": {"type": "Property", "value": round(rng.uniform(0, 100), 2), "unitCode": "GQ"},
        "pm10": {"type": "Property", "value": round(rng.uniform(0, 80), 1), "unitCode": "GQ"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}},
    }


def _stored_form(value: Any) -> Any:
    """A stored document without its timestamps."""
    if isinstance(value, dict):
        return {
            key: _stored_form(item)
            for key, item in value.items()
            if key not in ("createdAt", "modifiedAt")
        }
    if isinstance(value, list):
        return [_stored_form(item) for item in value]
    return value


async def _seeded(collection: Any, size: int) -> bool:
    """Whether the tenant holds the `size` entities the current broker would have written."""
    if await collection.estimated_document_count() != size:
        return False
    first = build_document(entity(0, random.Random(size)), core_term_map(), utc_now())
    stored = await collection.find_one({"_id": first["_id"]})
    return stored is not None and _stored_form(stored) == _stored_form(first)


async def seed(store_url: str, tenant: str, size: int, *, reuse: bool = False) -> float:
    """Insert `size` entities into the tenant's database; return the seconds it took.

    With `reuse`, a tenant already seeded in the same stored form is kept as it is."""
    rng = random.Random(size)
    terms, now = core_term_map(), utc_now()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(store_url, tz_aware=True)
    started = time.perf_counter()
    try:
        if reuse and await _seeded(client[f"ctx_{tenant}"]["entities"], size):
            print(f"  reusing {tenant}: {size:,} entities")
            return 0.0
        await client.drop_database(f"ctx_{tenant}")
        await MongoTenantDirectory(client, "ctx", auto_create=True).create_if_allowed(tenant)
        collection = client[f"ctx_{tenant}"]["entities"]
        for first in range(0, size, 1000):
            docs = [
                build_document(entity(i, rng), terms, now)
                for i in range(first, min(size, first + 1000))
            ]
            await collection.insert_many(docs)
            print(f"\r  seeding {tenant}: {first + len(docs):,}/{size:,}", end="", flush=True)
        print()
    finally:
        await client.close()
    return time.perf_counter() - started


def queries() -> dict[str, dict[str, str]]:
    polygon = json.dumps(FIRENZE["geometry"]["coordinates"], separators=(",", ":"))
    return {
        "type only": {"type": "AirQualityObserved"},
        "type only, offset 5000": {"type": "AirQualityObserved", "offset": "5000"},
        "type only, count": {"type": "AirQualityObserved", "count": "true"},
        "type + q no2>99.5": {"type": "AirQualityObserved", "q": "no2>99.5"},
        "near 500 m": {
            "type": "AirQualityObserved",
            "georel": "near;maxDistance==500",
            "geometry": "Point",
            "coordinates": json.dumps(FIRENZE_CENTRE),
        },
        "within Firenze": {
            "type": "AirQualityObserved",
            "georel": "within",
            "geometry": "Polygon",
            "coordinates": polygon,
            "count": "true",
        },
    }


async def measure(base: str, tenant: str, repeat: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    headers = {"NGSILD-Tenant": tenant}
    async with httpx.AsyncClient(base_url=base + API, headers=headers, timeout=900) as http:
        started = time.perf_counter()
        _check(await http.get("/entities", params={"type": "AirQualityObserved", "limit": "1"}))
        # the tenant was seeded straight into the store: the broker counts its id ranges once
        print(f"  first query of {tenant}: {(time.perf_counter() - started) * 1000:,.0f} ms")
        for params in queries().values():  # warm-up: builds the indexes a query asks for
            _check(await http.get("/entities", params=params))
        for name, params in queries().items():
            latencies: list[float] = []
            matches = 0
            for _ in range(repeat):
                started = time.perf_counter()
                answer = await http.get("/entities", params=params)
                latencies.append(time.perf_counter() - started)
                _check(answer)
                matches = int(answer.headers.get("NGSILD-Results-Count", len(answer.json())))
            results[name] = _stats(latencies, matches)
        results["page through Firenze"] = await _page_through(http, repeat)
    return results


async def _page_through(http: httpx.AsyncClient, repeat: int) -> dict[str, float]:
    """Follow the Link rel=next pages of the within-Firenze query to its end."""
    params = dict(queries()["within Firenze"], limit="100")
    params.pop("count")
    latencies: list[float] = []
    seen = 0
    for _ in range(max(1, repeat // 5)):
        started = time.perf_counter()
        seen, offset = 0, 0
        while True:
            answer = await http.get("/entities", params=dict(params, offset=str(offset)))
            _check(answer)
            page = answer.json()
            seen += len(page)
            offset += 100
            if len(page) < 100 or 'rel="next"' not in answer.headers.get("Link", ""):
                break
        latencies.append(time.perf_counter() - started)
    return _stats(latencies, seen)


def _check(answer: httpx.Response) -> None:
    if answer.is_error:
        raise SystemExit(f"{answer.request.url} answered {answer.status_code}: {answer.text}")


def _stats(latencies: list[float], matches: int) -> dict[str, float]:
    return {
        "median_ms": statistics.median(latencies) * 1000,
        "queries_per_s": len(latencies) / sum(latencies),
        "matches": matches,
    }


# The broker alone, served as `contesto up` serves it (uvicorn, no access log), without
# the rest of the stack (MQTT, ingest) that `contesto up` also starts.
_SERVE_BROKER = (
    "import sys, uvicorn\n"
    "from context_broker import BrokerSettings, create_app\n"
    "settings = BrokerSettings(mongo_url=sys.argv[1], auto_create_tenants=False)\n"
    "uvicorn.run(create_app(settings), host='127.0.0.1', port=int(sys.argv[2]),\n"
    "            log_level='warning', access_log=False)\n"
)


@contextmanager
def broker(store_url: str, data_dir: Path) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-c", _SERVE_BROKER, store_url, str(port)]
    with (data_dir / "broker.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            try:
                wait_for_port("127.0.0.1", port, 60.0)
            except TimeoutError:
                raise SystemExit(
                    "the broker did not start:\n" + (data_dir / "broker.log").read_text()
                ) from None
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=30)


def report(by_size: dict[int, dict[str, dict[str, float]]]) -> None:
    sizes = sorted(by_size)
    print(
        f"\n{'query':24}"
        + "".join(f"{f'{n:,} ms':>14}{'q/s':>9}{'matches':>9}" for n in sizes)
        + f"{'ratio':>8}"
    )
    for name in by_size[sizes[0]]:
        row = f"{name:24}"
        for size in sizes:
            cell = by_size[size][name]
            row += f"{cell['median_ms']:14.1f}{cell['queries_per_s']:9.1f}{cell['matches']:9.0f}"
        if len(sizes) > 1:
            ratio = by_size[sizes[-1]][name]["median_ms"] / by_size[sizes[0]][name]["median_ms"]
            row += f"{ratio:8.2f}"
        print(row)
    print(f"selective queries ({', '.join(SELECTIVE)}): the ratio should stay near 1")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="entities per tenant, comma list")
    parser.add_argument("--repeat", type=int, default=20, help="runs of each query")
    parser.add_argument(
        "--store-dir",
        type=Path,
        help="keep the embedded store in this directory and reuse the tenants an earlier run "
        "seeded there (reseeded when the broker's stored form of an entity changed)",
    )
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="contesto-bench-query-") as tmp:
        data_dir = Path(tmp)
        store_dir = args.store_dir.absolute() if args.store_dir else data_dir / "db"
        with EmbeddedStore(store_dir, log_path=data_dir / "secantus.log") as store:
            if args.store_dir:
                tenants = {size: f"bench{size}" for size in sizes}
            else:
                tenants = {size: f"bench{size}x{secrets.token_hex(2)}" for size in sizes}
            seconds = {
                size: asyncio.run(
                    seed(store.url, tenants[size], size, reuse=args.store_dir is not None)
                )
                for size in sizes
            }
            for size in sizes:
                if seconds[size]:
                    print(f"  seeded {size:,} entities at {size / seconds[size]:,.0f}/s")
            # `type` alone over 100k entities takes longer than a query's default time
            # budget on the embedded store: raised here, so that its cost is measured.
            os.environ.setdefault("CONTESTO_QUERY_TIME_BUDGET_MS", "120000")
            with broker(store.url, data_dir) as base:
                by_size = {
                    size: asyncio.run(measure(base, tenants[size], args.repeat)) for size in sizes
                }
    report(by_size)
    write_results(RESULTS, "bench_query", {str(k): v for k, v in by_size.items()}, argv)


if __name__ == "__main__":
    main()
