"""Fairness benchmark: one tenant's ordinary reads, alone and while another tenant runs its
heaviest allowed queries in a loop.

`python -m bench.bench_fairness [--entities 30000] [--reads 150] [--workers 4] [--quick]
[--switch-intervals 0,0.5]`. An embedded store runs as a child process, restarted on the
same data for each of `--switch-intervals` (its interpreter's switch interval in ms; 0:
Python's own 5 ms; default: the embedded store's); the heavy tenant gets `--entities`
AirQualityObserved entities and the light one 1,000, seeded straight into the store (as
bench_query does; with `--store-dir` they are kept and reused). For each configuration
(`--configurations`; `ungated`: no per-tenant read limit, `gated`: the defaults of
BrokerSettings, `two`: two reads per tenant, `turns`: one read in the store at a time,
given to the tenants in turn, `strict`: that and a 150 ms budget) the broker
serves the API from a child process (uvicorn); the light tenant reads (a page by type, an
entity by id, in turn, one at a time) first alone, then while `--workers` clients of the
heavy tenant, in a process of their own (as another tenant's clients would be: their
answers never hold up the light client's loop), loop over: type only with count, q over
every entity with count, within a polygon holding about a tenth of the entities, ordered
by an unindexed attribute. It prints
p50/p99 of the light reads in both phases and the ratio of the p99s (the aim: <= 2), and
what the heavy queries answered. Every phase stops after `--phase-s` seconds at most.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from pathlib import Path

if __package__ in {None, ""}:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.bench_query import API, broker, seed
from contesto import EmbeddedStore
from contesto._embedded import SWITCH_INTERVAL_MS

LIGHT_ENTITIES = 1000
# A box of about a tenth of Tuscany's bounding box: many candidates, under the bound.
TENTH = "[[[10.5,43.0],[11.35,43.0],[11.35,43.7],[10.5,43.7],[10.5,43.0]]]"
HEAVY = (
    {"type": "AirQualityObserved", "count": "true", "limit": "100"},
    {"type": "AirQualityObserved", "q": "no2>=0", "count": "true", "limit": "100"},
    {
        "type": "AirQualityObserved",
        "georel": "within",
        "geometry": "Polygon",
        "coordinates": TENTH,
        "count": "true",
        "limit": "100",
    },
    {"type": "AirQualityObserved", "orderBy": "pm10", "limit": "100"},
)
CONFIGURATIONS = {
    "ungated": {"CONTESTO_TENANT_READ_SLOTS": "100000"},
    "gated": {},
    "two": {"CONTESTO_TENANT_READ_SLOTS": "2"},
    "turns": {"CONTESTO_TENANT_READ_SLOTS": "1", "CONTESTO_STORE_READ_SLOTS": "1"},
    "strict": {
        "CONTESTO_TENANT_READ_SLOTS": "1",
        "CONTESTO_STORE_READ_SLOTS": "1",
        "CONTESTO_QUERY_TIME_BUDGET_MS": "150",
    },
}


@dataclass(slots=True)
class Phase:
    """The light tenant's read latencies in one phase, and the heavy tenant's answers."""

    latencies: list[float] = field(default_factory=list)
    refused: int = 0
    heavy: Counter[int] = field(default_factory=Counter)
    heavy_latencies: list[float] = field(default_factory=list)

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000


async def _light_reads(http: httpx.AsyncClient, reads: int, deadline: float) -> Phase:
    phase = Phase()
    requests: tuple[tuple[str, dict[str, str]], ...] = (
        ("/entities", {"type": "AirQualityObserved", "limit": "20"}),
        ("/entities/urn:ngsi-ld:AirQualityObserved:bench-000042", {}),
    )
    for index in range(reads):
        if time.monotonic() > deadline:
            break
        path, params = requests[index % len(requests)]
        started = time.perf_counter()
        answer = await http.get(path, params=params)
        phase.latencies.append(time.perf_counter() - started)
        phase.refused += answer.is_error
        await asyncio.sleep(0.01)
    return phase


async def _heavy_loop(http: httpx.AsyncClient, phase: Phase, stop: float) -> None:
    index = 0
    while time.monotonic() < stop:
        started = time.perf_counter()
        answer = await http.get("/entities", params=HEAVY[index % len(HEAVY)])
        phase.heavy_latencies.append(time.perf_counter() - started)
        phase.heavy[answer.status_code] += 1
        index += 1


async def _heavy_clients(base: str, tenant: str, workers: int, seconds: float) -> Phase:
    phase = Phase()
    stop = time.monotonic() + seconds
    async with httpx.AsyncClient(
        base_url=base + API,
        headers={"NGSILD-Tenant": tenant},
        timeout=120,
        limits=httpx.Limits(max_connections=workers + 4),
    ) as heavy:
        await asyncio.gather(*(_heavy_loop(heavy, phase, stop) for _ in range(workers)))
    return phase


def _heavy_process(
    base: str, tenant: str, workers: int, seconds: float, answers: Queue[Phase]
) -> None:
    answers.put(asyncio.run(_heavy_clients(base, tenant, workers, seconds)))


async def measure(
    base: str, heavy_tenant: str, light_tenant: str, args: argparse.Namespace
) -> tuple[Phase, Phase]:
    async with (
        httpx.AsyncClient(
            base_url=base + API, headers={"NGSILD-Tenant": light_tenant}, timeout=120
        ) as light,
        httpx.AsyncClient(
            base_url=base + API, headers={"NGSILD-Tenant": heavy_tenant}, timeout=120
        ) as heavy,
    ):
        for params in HEAVY:  # warm-up: the indexes the queries ask for are built once
            await heavy.get("/entities", params=params)
        await _light_reads(light, 10, time.monotonic() + args.phase_s)
        alone = await _light_reads(light, args.reads, time.monotonic() + args.phase_s)
        context = multiprocessing.get_context("spawn")
        answers: Queue[Phase] = context.Queue()
        # The heavy clients stop by themselves once the light phase is surely over.
        heavy_s = args.phase_s + 2.0
        clients = context.Process(
            target=_heavy_process, args=(base, heavy_tenant, args.workers, heavy_s, answers)
        )
        clients.start()
        try:
            await asyncio.sleep(2.0)
            loaded = await _light_reads(light, args.reads, time.monotonic() + args.phase_s)
            heavy_phase = await asyncio.to_thread(answers.get, True, heavy_s + 180)
        finally:
            clients.join(timeout=heavy_s + 180)
            if clients.is_alive():
                clients.kill()
    loaded.heavy, loaded.heavy_latencies = heavy_phase.heavy, heavy_phase.heavy_latencies
    return alone, loaded


def report(name: str, alone: Phase, loaded: Phase) -> None:
    ratio = loaded.percentile(0.99) / alone.percentile(0.99)
    heavy_ms = statistics.median(loaded.heavy_latencies) * 1000 if loaded.heavy_latencies else 0
    answers = ", ".join(f"{status}: {n}" for status, n in sorted(loaded.heavy.items()))
    print(
        f"{name:14} light reads alone p50 {alone.percentile(0.5):7.1f} ms p99 "
        f"{alone.percentile(0.99):7.1f} ms ({len(alone.latencies)}) | under load p50 "
        f"{loaded.percentile(0.5):7.1f} ms p99 {loaded.percentile(0.99):7.1f} ms "
        f"({len(loaded.latencies)}, {loaded.refused} refused) | p99 ratio {ratio:5.2f} | "
        f"heavy p50 {heavy_ms:.0f} ms, "
        f"answers {answers}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=30_000, help="of the heavy tenant")
    parser.add_argument("--reads", type=int, default=150, help="light reads per phase")
    parser.add_argument("--workers", type=int, default=4, help="heavy clients at once")
    parser.add_argument("--phase-s", type=float, default=60.0, help="bound of each phase")
    parser.add_argument(
        "--configurations",
        default="ungated,gated",
        help=f"comma list of: {', '.join(CONFIGURATIONS)}",
    )
    parser.add_argument(
        "--switch-intervals",
        default=f"{SWITCH_INTERVAL_MS:g}",
        help="comma list of the store's interpreter switch intervals in ms (0: Python's 5 ms)",
    )
    parser.add_argument("--quick", action="store_true", help="10,000 entities, 60 reads")
    parser.add_argument("--store-dir", type=Path, help="keep and reuse the seeded store here")
    args = parser.parse_args(argv)
    if args.quick:
        args.entities, args.reads = 10_000, 60
    intervals = [float(ms) for ms in args.switch_intervals.split(",")]
    with tempfile.TemporaryDirectory(prefix="contesto-bench-fairness-") as tmp:
        data_dir = Path(tmp)
        store_dir = args.store_dir.absolute() if args.store_dir else data_dir / "db"
        suffix = "" if args.store_dir else f"x{secrets.token_hex(2)}"
        heavy_tenant, light_tenant = f"heavy{args.entities}{suffix}", f"light{suffix}"
        for round_, interval in enumerate(intervals):
            with EmbeddedStore(
                store_dir, log_path=data_dir / "secantus.log", switch_interval_ms=interval or None
            ) as store:
                reuse = args.store_dir is not None or round_ > 0
                asyncio.run(seed(store.url, heavy_tenant, args.entities, reuse=reuse))
                asyncio.run(seed(store.url, light_tenant, LIGHT_ENTITIES, reuse=reuse))
                for name in args.configurations.split(","):
                    saved = dict(os.environ)
                    os.environ.update(CONFIGURATIONS[name])
                    try:
                        with broker(store.url, data_dir) as base:
                            alone, loaded = asyncio.run(
                                measure(base, heavy_tenant, light_tenant, args)
                            )
                    finally:
                        os.environ.clear()
                        os.environ.update(saved)
                    report(f"{name} {interval:g} ms", alone, loaded)


if __name__ == "__main__":
    main()
