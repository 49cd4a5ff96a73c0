"""Notification harness: what subscriptions cost writes, and how fast notifications arrive.

`python -m bench.bench_notifications [--subscriptions 0,1,100,1000,10000] [--seconds S]`.
An embedded store and the broker's API (one process, its notifier inside) run as child
processes on loopback; this process writes through the API and is the notifications' sink
(a minimal HTTP/1.1 server that answers 204). A tenant holds 100 `BenchSensor` entities.
For each number K of subscriptions in the tenant (one selects `BenchSensor`, the others
other types, so the matcher has to find the one among K):
- writes/s: attribute updates (PATCH) in a closed loop, 8 in flight, for S seconds, and
  their ratio to the writes/s with no subscription (goal at 1,000: >= 0.7);
- latency: updates at a steady 100/s for S seconds, each value a sequence number, from the
  write's acknowledgement to the notification's arrival at the sink, p50 and p99 (goal
  p50 < 50 ms at 1,000 subscriptions);
- notifications/s received during the closed loop;
- the API's and the store's CPU time per write, and the store's commands per write (its
  `serverStatus` opcounters), which other load on the machine does not change.
Then fan-out: 100 subscriptions selecting the same entities, W updates, the notifications
the sink receives per second (goal >= 2,000), with the CPU time and store commands per
notification. Results go to bench/results/notifications.json.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in {None, ""}:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import httpx
import orjson
import pymongo
from _servers import ApiProcess

from bench._results import write_results
from bench.bench_broker import cpu_seconds
from contesto import EmbeddedStore

API = "/ngsi-ld/v1"
ENTITIES = 100
IN_FLIGHT = 8
STEADY_RATE = 100
RESULTS = Path(__file__).parent / "results" / "notifications.json"


@dataclass(slots=True)
class Sink:
    """Counts the notifications it receives, and when each sequence number arrived."""

    received: int = 0
    arrivals: dict[int, float] = field(default_factory=dict)
    last_at: float = 0.0
    port: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                now = time.perf_counter()
                self.received += 1
                self.last_at = now
                for entity in orjson.loads(body)["data"]:
                    sequence = entity.get("seq")
                    if isinstance(sequence, int):
                        self.arrivals.setdefault(sequence, now)
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            writer.close()  # a client gone, or the bench over (its server closing)

    async def wait_quiet(self, quiet_s: float = 1.0, timeout_s: float = 120.0) -> None:
        """Until nothing arrived for `quiet_s` (the queue is drained)."""
        deadline = time.perf_counter() + timeout_s
        seen = -1
        while time.perf_counter() < deadline:
            if self.received == seen:
                return
            seen = self.received
            await asyncio.sleep(quiet_s)


def subscription(sink: Sink, entity_type: str) -> dict[str, Any]:
    return {
        "type": "Subscription",
        "entities": [{"type": entity_type}],
        "notification": {
            "format": "keyValues",
            "attributes": ["seq"],
            "endpoint": {"uri": f"http://127.0.0.1:{sink.port}/notify"},
        },
    }


async def add_subscriptions(
    http: httpx.AsyncClient, bodies: list[dict[str, Any]], in_flight: int = 32
) -> None:
    pending = iter(bodies)

    async def worker() -> None:
        for body in pending:
            answer = await http.post("/subscriptions", json=body)
            if answer.status_code != 201:
                raise SystemExit(f"subscription refused: {answer.status_code} {answer.text}")

    await asyncio.gather(*(worker() for _ in range(in_flight)))


class Writer:
    """Attribute updates of the tenant's entities, each a new sequence number."""

    def __init__(self, http: httpx.AsyncClient, entities: int = ENTITIES) -> None:
        self.http = http
        self.entities = entities
        self.sequence = 0
        self.acknowledged: dict[int, float] = {}

    async def update(self) -> None:
        self.sequence += 1
        sequence = self.sequence
        entity = f"urn:ngsi-ld:BenchSensor:{sequence % self.entities:03d}"
        answer = await self.http.patch(
            f"/entities/{entity}/attrs/seq", json={"type": "Property", "value": sequence}
        )
        if answer.status_code != 204:
            raise SystemExit(f"update refused: {answer.status_code} {answer.text}")
        self.acknowledged[sequence] = time.perf_counter()

    async def closed_loop(self, seconds: float) -> float:
        """Writes/s with IN_FLIGHT updates at once."""
        deadline = time.perf_counter() + seconds
        started, done = time.perf_counter(), 0

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                await self.update()
                done += 1

        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
        return done / (time.perf_counter() - started)

    async def steady(self, seconds: float) -> list[int]:
        """Updates at STEADY_RATE per second; the sequence numbers written."""
        first = self.sequence + 1
        tasks = []
        started = time.perf_counter()
        for index in range(int(seconds * STEADY_RATE)):
            await asyncio.sleep(max(0.0, started + index / STEADY_RATE - time.perf_counter()))
            tasks.append(asyncio.create_task(self.update()))
        await asyncio.gather(*tasks)
        return list(range(first, self.sequence + 1))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


@dataclass(slots=True, frozen=True)
class Processes:
    api: int
    store: int
    store_url: str

    def cpu(self) -> tuple[float, float]:
        return cpu_seconds(self.api), cpu_seconds(self.store)

    def store_commands(self) -> int:
        """Commands the store has served so far (every kind), less this reading's own."""
        with pymongo.MongoClient(self.store_url, directConnection=True) as client:
            counters = client.admin.command("serverStatus")["opcounters"]
        return sum(int(value) for value in counters.values())


@dataclass(slots=True)
class Costs:
    """The API's and the store's CPU time and the store's commands over a phase."""

    processes: Processes
    api: float = 0.0
    store: float = 0.0
    commands: int = 0

    def start(self) -> Costs:
        self.api, self.store = self.processes.cpu()
        self.commands = self.processes.store_commands()
        return self

    def per(self, operations: int, label: str) -> dict[str, float]:
        api, store = self.processes.cpu()
        commands = self.processes.store_commands() - self.commands
        count = max(1, operations)
        return {
            f"api_cpu_ms_per_{label}": round((api - self.api) * 1000 / count, 3),
            f"store_cpu_ms_per_{label}": round((store - self.store) * 1000 / count, 3),
            f"store_commands_per_{label}": round(commands / count, 3),
        }


async def measure(base: str, processes: Processes, args: argparse.Namespace) -> dict[str, Any]:
    sink = Sink()
    server = await asyncio.start_server(sink.serve, "127.0.0.1", 0)
    sink.port = server.sockets[0].getsockname()[1]
    tenant = f"bench{secrets.token_hex(3)}"
    results: dict[str, Any] = {"by_subscriptions": {}}
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(
        base_url=base + API, headers={"NGSILD-Tenant": tenant}, timeout=120, limits=limits
    ) as http:
        entities = [
            {"id": f"urn:ngsi-ld:BenchSensor:{n:03d}", "type": "BenchSensor", "seq": 0}
            for n in range(ENTITIES)
        ]
        created = await http.post("/entityOperations/create", json=entities)
        assert created.status_code == 201, created.text
        writer = Writer(http)
        await writer.closed_loop(1.0)  # warm-up
        present = 0
        baseline = 0.0
        for wanted in args.subscriptions:
            bodies = [subscription(sink, "BenchSensor")] if present == 0 and wanted else []
            bodies += [
                subscription(sink, f"Other{n}") for n in range(present + len(bodies), wanted)
            ]
            started = time.perf_counter()
            await add_subscriptions(http, bodies)
            made_s = time.perf_counter() - started
            present = wanted
            await sink.wait_quiet()
            received_before = sink.received
            costs = Costs(processes).start()
            written_before = writer.sequence
            writes_per_s = await writer.closed_loop(args.seconds)
            await sink.wait_quiet()
            writes = writer.sequence - written_before
            per_write = costs.per(writes, "write")
            loop_received = sink.received - received_before
            loop_started_last = sink.last_at
            await sink.wait_quiet()
            baseline = baseline or writes_per_s
            row: dict[str, Any] = {
                "writes_per_s": round(writes_per_s, 1),
                "write_ratio": round(writes_per_s / baseline, 3),
                "subscriptions_created_s": round(made_s, 1),
                **per_write,
            }
            if wanted:
                drain_s = max(0.0, sink.last_at - loop_started_last)
                row["notifications_per_s"] = round(loop_received / args.seconds, 1)
                row["drain_after_loop_s"] = round(drain_s, 2)
                written = await writer.steady(args.seconds)
                await sink.wait_quiet()
                latencies = [
                    (sink.arrivals[n] - writer.acknowledged[n]) * 1000
                    for n in written
                    if n in sink.arrivals
                ]
                row["latency_p50_ms"] = round(percentile(latencies, 0.5), 1)
                row["latency_p99_ms"] = round(percentile(latencies, 0.99), 1)
                row["notified"] = f"{len(latencies)}/{len(written)}"
            results["by_subscriptions"][str(wanted)] = row
            print(f"{wanted:>6} subscriptions: {row}", flush=True)
    results["fan_out"] = await fan_out(base, sink, processes, args)
    print(f"fan-out: {results['fan_out']}", flush=True)
    server.close()
    return results


async def fan_out(
    base: str, sink: Sink, processes: Processes, args: argparse.Namespace
) -> dict[str, Any]:
    """100 subscriptions selecting one entity each write: notifications/s at the sink."""
    tenant = f"fan{secrets.token_hex(3)}"
    async with httpx.AsyncClient(
        base_url=base + API, headers={"NGSILD-Tenant": tenant}, timeout=120
    ) as http:
        entity = {"id": "urn:ngsi-ld:BenchSensor:000", "type": "BenchSensor", "seq": 0}
        assert (await http.post("/entities", json=entity)).status_code == 201
        await add_subscriptions(http, [subscription(sink, "BenchSensor") for _ in range(100)])
        await sink.wait_quiet()
        before = sink.received
        writer = Writer(http, entities=1)
        costs = Costs(processes).start()
        started = time.perf_counter()
        for _ in range(args.fan_out_writes):
            await writer.update()
        await sink.wait_quiet(quiet_s=3.0)
        received = sink.received - before
        elapsed = sink.last_at - started
        await asyncio.sleep(1.5)  # the delivery status, written once a second
        per_notification = costs.per(received, "notification")
        listed = (await http.get("/subscriptions", params={"limit": "100"})).json()
        sent = sum(each["notification"].get("timesSent", 0) for each in listed)
        failed = sum(each["notification"].get("timesFailed", 0) for each in listed)
    return {
        "sent": sent,
        "failed": failed,
        "subscriptions": 100,
        "writes": args.fan_out_writes,
        "notifications": received,
        "notifications_per_s": round(received / elapsed, 1),
        **per_notification,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--subscriptions",
        default="0,1,100,1000,10000",
        type=lambda text: [int(n) for n in text.split(",")],
        help="numbers of subscriptions in the tenant, increasing (comma list)",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--fan-out-writes", type=int, default=100, help="writes of the fan-out")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="contesto-bench-notify-") as tmp:
        data_dir = Path(tmp)
        with EmbeddedStore(data_dir / "db", log_path=data_dir / "secantus.log") as store:
            env = {"CONTESTO_MONGO_URL": store.url, "CONTESTO_LOG_LEVEL": "warning"}
            with ApiProcess(env, str(data_dir / "broker.log")) as api:
                pids = Processes(api.pid, store.pid or 0, store.url)
                results = asyncio.run(measure(api.url, pids, args))
    write_results(RESULTS, "bench_notifications", results, argv)
    rows = results["by_subscriptions"]
    at_1000 = rows.get("1000")
    if at_1000:
        print(
            f"goals at 1,000 subscriptions: write ratio {at_1000['write_ratio']} (>= 0.7), "
            f"latency p50 {at_1000['latency_p50_ms']} ms (< 50)"
        )
    print(f"goal fan-out: {results['fan_out']['notifications_per_s']} notifications/s (>= 2,000)")


if __name__ == "__main__":
    main()
