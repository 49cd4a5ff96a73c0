"""Cost of the request telemetry middleware (request id, request counter and histogram).

`python -m bench.bench_telemetry [--requests N] [--repeats N]`. In one process, an ASGI
app that answers at once (recording the Retrieve Entity route, as routing does) is called
N times directly and N times through `RequestTelemetry`; the best of `repeats` runs of
each is kept, and the difference is the middleware's cost per request. Results go to
bench/results/telemetry.json. Goal (reported as met or missed): at most 25 us per request,
a few percent of the broker's CPU per retrieval by id.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in {None, ""}:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.routing import APIRoute

from bench._results import provenance
from context_broker._http._entities import retrieve_entity, router
from context_broker._http._telemetry import RequestTelemetry
from context_broker._metrics import BrokerMetrics

RESULTS = Path(__file__).resolve().parent / "results" / "telemetry.json"
GOAL_US = 25.0
TENANT = b"bench"

_ROUTE = next(r for r in router.routes if isinstance(r, APIRoute) and r.endpoint is retrieve_entity)
_START = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"x")]}
_BODY = {"type": "http.response.body", "body": b"{}"}

Asgi = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


async def _answer_at_once(scope: dict[str, Any], receive: Any, send: Any) -> None:
    scope["route"] = _ROUTE
    await send(dict(_START))
    await send(_BODY)


async def _send(message: Any) -> None:
    pass


async def _receive() -> dict[str, Any]:
    return {"type": "http.request"}


def _scope() -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": "/ngsi-ld/v1/entities/urn:ngsi-ld:BenchSensor:1",
        "headers": [(b"host", b"127.0.0.1"), (b"ngsild-tenant", TENANT), (b"accept", b"*/*")],
    }


async def _per_request_us(app: Asgi, requests: int) -> float:
    started = time.perf_counter()
    for _ in range(requests):
        await app(_scope(), _receive, _send)
    return (time.perf_counter() - started) / requests * 1e6


async def measure(requests: int, repeats: int) -> dict[str, float]:
    metrics = BrokerMetrics()
    metrics.tenant_known = lambda tenant: tenant == TENANT.decode()
    wrapped = RequestTelemetry(_answer_at_once, metrics)  # type: ignore[arg-type]
    bare = min([await _per_request_us(_answer_at_once, requests) for _ in range(repeats)])
    full = min([await _per_request_us(wrapped, requests) for _ in range(repeats)])
    return {"bare_us": round(bare, 2), "with_telemetry_us": round(full, 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=100_000, help="requests per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each; the best counts")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args(argv if argv is not None else [])
    figures = asyncio.run(measure(args.requests, args.repeats))
    cost = round(figures["with_telemetry_us"] - figures["bare_us"], 2)
    met = cost <= GOAL_US
    print(
        f"bare app {figures['bare_us']} us/request, through RequestTelemetry "
        f"{figures['with_telemetry_us']} us/request: {cost} us per request "
        f"(goal <= {GOAL_US:g} us: {'met' if met else 'MISSED'})"
    )
    report = {
        **provenance("bench_telemetry", argv),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "requests": args.requests,
        "repeats": args.repeats,
        **figures,
        "cost_us": cost,
        "goal_us": GOAL_US,
        "goal_met": met,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
