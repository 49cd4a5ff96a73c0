"""Broker load harness: `contesto up` over HTTP vs the same operations straight to its store.

`python -m bench.bench_broker [--count N] [--batches N] [--concurrency N] [--phase-seconds S]`.
An embedded store and `contesto up` (pointed at it by CONTESTO_MONGO_URL) run as child
processes on loopback; this process is the load generator, with a fixed number of operations
in flight. Each phase runs three sides in turn on the same documents: the broker through
httpx.AsyncClient, the broker through a minimal asyncio HTTP/1.1 client (httpx costs the
generator more CPU per request than the broker spends, which on a small machine is taken
from the broker and the store), and PyMongo's async client straight to the store (the
broker's tenant database is `ctx_<tenant>`; the raw driver writes `ctx_<tenant>_raw`, with
the broker's indexes):
- creates: POST /entities vs insert_one of the document the broker stores;
- updates: PATCH /entities/{id}/attrs/temperature vs the update_one the broker makes;
- retrievals: GET /entities/{id} vs find_one;
- batch upserts of 100 entities: POST /entityOperations/upsert vs bulk_write of 100 upserts,
  in entities/s, and their speed-up over single creates.
Each phase and side stops after N operations or S seconds. CPU time per operation of the
generator, the broker and the store is reported beside the rates. Results go to
bench/results/broker.json. Goals (reported as met or missed): broker/raw >= 0.8 for updates
and retrievals; batch upserts >= 5x the entities/s of single creates. Exit code 1 only when
an operation failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

if __package__ in {None, ""}:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import orjson
from pymongo import ASCENDING, AsyncMongoClient, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from bench._results import provenance
from contesto import EmbeddedStore
from contesto._embedded import free_port

API = "/ngsi-ld/v1"
VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"
ENTITY_TYPE = "BenchSensor"
BATCH_SIZE = 100
RATIO_GOAL = 0.8
SPEEDUP_GOAL = 5.0
UP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
REQUEST_TIMEOUT_S = 30.0
OBSERVED_AT = "2026-01-31T12:00:00.000Z"
RESULTS = Path(__file__).resolve().parent / "results" / "broker.json"

Document = dict[str, Any]
Operation = Callable[[int], Awaitable[None]]


def _field(name: str) -> str:
    """The stored field of an attribute of the default @context ('.' encoded as '=')."""
    return (VOCAB + name).replace(".", "=")


TEMPERATURE = _field("temperature")


# --- the documents both sides write ----------------------------------------------------------


def entity_id(prefix: str, index: int) -> str:
    return f"urn:ngsi-ld:{ENTITY_TYPE}:{prefix}-{index:07d}"


def payload(eid: str, index: int) -> Document:
    """The normalized NGSI-LD entity the broker is sent (JSON, default @context)."""
    return {
        "id": eid,
        "type": ENTITY_TYPE,
        "temperature": {
            "type": "Property",
            "value": 15 + index % 200 / 10,
            "unitCode": "CEL",
            "observedAt": OBSERVED_AT,
        },
        "humidity": {"type": "Property", "value": 40 + index % 50},
        "operatingMode": {"type": "Property", "value": "auto"},
        "refDevice": {"type": "Relationship", "object": f"urn:ngsi-ld:Device:bench-{index % 10}"},
    }


def stored(eid: str, index: int, now: datetime) -> Document:
    """The document the broker stores for `payload(eid, index)` (context_broker/_entities.py)."""
    observed = datetime.fromisoformat(OBSERVED_AT)
    times = {"createdAt": now, "modifiedAt": now}
    attrs = {
        _field("temperature"): {
            "type": "Property",
            "value": 15 + index % 200 / 10,
            "observedAt": observed,
            "unitCode": "CEL",
            **times,
        },
        _field("humidity"): {"type": "Property", "value": 40 + index % 50, **times},
        _field("operatingMode"): {"type": "Property", "value": "auto", **times},
        _field("refDevice"): {
            "type": "Relationship",
            "object": f"urn:ngsi-ld:Device:bench-{index % 10}",
            **times,
        },
    }
    return {
        "_id": eid,
        "type": [VOCAB + ENTITY_TYPE],
        "createdAt": now,
        "modifiedAt": now,
        "v": 1,
        "an": [VOCAB + name for name in ("temperature", "humidity", "operatingMode", "refDevice")],
        "attrs": attrs,
    }


def upsert_operation(doc: Document) -> UpdateOne:
    """The write the broker's batch upsert (replace mode) makes for one entity."""
    return UpdateOne(
        {"_id": doc["_id"]},
        {
            "$setOnInsert": {"createdAt": doc["createdAt"]},
            "$inc": {"v": 1},
            "$set": {
                "modifiedAt": doc["modifiedAt"],
                "type": doc["type"],
                "an": doc["an"],
                "attrs": doc["attrs"],
                "ds": {},
            },
        },
        upsert=True,
    )


def new_temperature(index: int) -> float:
    return -5 + index % 400 / 10


def utc_now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


# --- measurement -----------------------------------------------------------------------------


class OperationFailed(RuntimeError):
    """An operation did not get the answer it expects."""


@dataclass(slots=True)
class Sample:
    """One side of one phase: operations done, time taken, failures, latencies."""

    ops: int = 0
    items: int = 0
    seconds: float = 0.0
    errors: int = 0
    first_error: str | None = None
    latencies: list[float] = field(default_factory=list)
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    def add(self, other: Sample) -> None:
        """Fold in the sample of another round of the same side and phase."""
        self.ops += other.ops
        self.items += other.items
        self.seconds += other.seconds
        self.errors += other.errors
        self.first_error = self.first_error or other.first_error
        self.latencies += other.latencies
        for name, seconds in other.cpu_seconds.items():
            self.cpu_seconds[name] = self.cpu_seconds.get(name, 0.0) + seconds

    @property
    def per_second(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def quantile(q: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

        return {
            "operations": self.ops,
            "items": self.items,
            "seconds": round(self.seconds, 3),
            "per_second": round(self.per_second, 1),
            "errors": self.errors,
            "first_error": self.first_error,
            "latency_ms": {"p50": quantile(0.5), "p99": quantile(0.99)} if ordered else None,
            "cpu_ms_per_op": {
                name: round(seconds * 1000 / self.ops, 3) if self.ops else None
                for name, seconds in self.cpu_seconds.items()
            },
        }


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far; 0 where /proc is not there."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_phase(
    operation: Operation,
    count: int,
    concurrency: int,
    seconds: float,
    items_per_op: int = 1,
    processes: dict[str, int] | None = None,
) -> Sample:
    """`count` operations with `concurrency` in flight, stopping early after `seconds`.

    `processes` (name: pid) get their CPU time over the phase recorded.
    """
    sample = Sample()
    processes = processes or {}
    cpu_before = {name: cpu_seconds(pid) for name, pid in processes.items()}
    next_index = 0
    started = time.perf_counter()
    stop_at = started + seconds

    async def worker() -> None:
        nonlocal next_index
        while next_index < count and time.perf_counter() < stop_at:
            index = next_index
            next_index += 1
            begun = time.perf_counter()
            try:
                await operation(index)
            except Exception as error:  # any failure is counted and reported, not fatal here
                sample.errors += 1
                if sample.first_error is None:
                    sample.first_error = f"{type(error).__name__}: {error}"
            else:
                sample.items += items_per_op
            sample.latencies.append(time.perf_counter() - begun)
            sample.ops += 1

    async with asyncio.timeout(seconds + 2 * REQUEST_TIMEOUT_S):
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    sample.seconds = time.perf_counter() - started
    sample.cpu_seconds = {
        name: cpu_seconds(pid) - cpu_before[name] for name, pid in processes.items()
    }
    return sample


Send = Callable[[str, str, bytes | None], Awaitable[tuple[int, bytes]]]


class HttpxClient:
    """httpx.AsyncClient on the NGSI-LD API, what a Python application would use."""

    def __init__(self, base_url: str, tenant: str, concurrency: int) -> None:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self.http = httpx.AsyncClient(
            base_url=base_url + API,
            headers={"NGSILD-Tenant": tenant},
            limits=limits,
            timeout=REQUEST_TIMEOUT_S,
        )

    async def send(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        headers = None if body is None else {"Content-Type": "application/json"}
        response = await self.http.request(method, path, content=body, headers=headers)
        return response.status_code, response.content

    async def aclose(self) -> None:
        await self.http.aclose()


class PlainHttpClient:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams, one connection per operation
    in flight: it costs the load generator a fraction of httpx's CPU, so on a small machine
    the broker, not the client, is what gets measured."""

    def __init__(self, base_url: str, tenant: str, concurrency: int) -> None:
        address = httpx.URL(base_url)
        self.host, self.port = address.host, address.port or 80
        self.head = f"Host: {self.host}:{self.port}\r\nNGSILD-Tenant: {tenant}\r\n"
        self.concurrency = concurrency
        self.idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None] = (
            asyncio.Queue()
        )
        for _ in range(concurrency):
            self.idle.put_nowait(None)

    async def send(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        request = f"{method} {API}{path} HTTP/1.1\r\n{self.head}"
        if body is not None:
            request += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        message = request.encode() + b"\r\n" + (body or b"")
        connection = await self.idle.get()
        try:
            if connection is not None and connection[0].at_eof():
                connection[1].close()  # the server closed it while idle (keep-alive timeout)
                connection = None
            if connection is None:
                connection = await asyncio.open_connection(self.host, self.port)
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                status, content = await self._exchange(*connection, message)
        except BaseException:
            if connection is not None:
                connection[1].close()
            self.idle.put_nowait(None)
            raise
        self.idle.put_nowait(connection)
        return status, content

    @staticmethod
    async def _exchange(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, message: bytes
    ) -> tuple[int, bytes]:
        writer.write(message)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
            elif name.strip().lower() == b"transfer-encoding":
                raise OperationFailed("the broker answered with a chunked body")
        content = await reader.readexactly(length) if length else b""
        return int(head[9:12]), content

    async def aclose(self) -> None:
        while not self.idle.empty():
            connection = self.idle.get_nowait()
            if connection is not None:
                connection[1].close()
                await connection[1].wait_closed()


def _expect(method: str, path: str, answer: tuple[int, bytes], *statuses: int) -> None:
    status, content = answer
    if status not in statuses:
        raise OperationFailed(f"{method} {path}: {status} {content[:300].decode(errors='replace')}")


class Side:
    """One way of running the operations; updates and retrievals go to entities it created."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.created: list[int] = []

    def existing(self, index: int) -> str:
        if not self.created:
            raise OperationFailed("no entity was created to update or retrieve")
        return entity_id(self.prefix, self.created[index % len(self.created)])

    async def create(self, index: int) -> None:
        raise NotImplementedError

    async def update(self, index: int) -> None:
        raise NotImplementedError

    async def retrieve(self, index: int) -> None:
        raise NotImplementedError

    async def batch_upsert(self, index: int) -> None:
        raise NotImplementedError


class BrokerSide(Side):
    """The operations over the NGSI-LD API, as a client application issues them."""

    def __init__(self, send: Send, prefix: str) -> None:
        super().__init__(prefix)
        self.send = send

    async def _call(self, method: str, path: str, body: Any, *statuses: int) -> None:
        content = None if body is None else orjson.dumps(body)
        _expect(method, path, await self.send(method, path, content), *statuses)

    async def create(self, index: int) -> None:
        eid = entity_id(self.prefix, index)
        await self._call("POST", "/entities", payload(eid, index), 201)
        self.created.append(index)

    async def update(self, index: int) -> None:
        path = f"/entities/{self.existing(index)}/attrs/temperature"
        await self._call("PATCH", path, {"value": new_temperature(index)}, 204)

    async def retrieve(self, index: int) -> None:
        await self._call("GET", f"/entities/{self.existing(index)}", None, 200)

    async def batch_upsert(self, index: int) -> None:
        first = index * BATCH_SIZE
        body = [
            payload(entity_id(self.prefix + "b", i), i) for i in range(first, first + BATCH_SIZE)
        ]
        await self._call("POST", "/entityOperations/upsert", body, 201, 204)


class RawSide(Side):
    """The same operations straight to the store with PyMongo (the store's own ceiling)."""

    def __init__(self, entities: AsyncCollection[Document], prefix: str) -> None:
        super().__init__(prefix)
        self.entities = entities

    async def prepare(self) -> None:
        """The indexes the broker keeps in every tenant (context_broker/_store.py)."""
        for key in ("type", "modifiedAt", "an"):
            await self.entities.create_index([(key, ASCENDING)])

    async def create(self, index: int) -> None:
        await self.entities.insert_one(stored(entity_id(self.prefix, index), index, utc_now()))
        self.created.append(index)

    async def update(self, index: int) -> None:
        now = utc_now()
        result = await self.entities.update_one(
            {"_id": self.existing(index), f"attrs.{TEMPERATURE}.type": "Property"},
            {
                "$set": {
                    f"attrs.{TEMPERATURE}.type": "Property",
                    f"attrs.{TEMPERATURE}.value": new_temperature(index),
                    f"attrs.{TEMPERATURE}.modifiedAt": now,
                    "modifiedAt": now,
                },
                "$inc": {"v": 1},
            },
        )
        if result.matched_count != 1:
            raise OperationFailed(f"update of {self.existing(index)} matched nothing")

    async def retrieve(self, index: int) -> None:
        if await self.entities.find_one({"_id": self.existing(index)}) is None:
            raise OperationFailed(f"{self.existing(index)} not found")

    async def batch_upsert(self, index: int) -> None:
        first = index * BATCH_SIZE
        now = utc_now()
        operations = [
            upsert_operation(stored(entity_id(self.prefix + "b", i), i, now))
            for i in range(first, first + BATCH_SIZE)
        ]
        await self.entities.bulk_write(operations, ordered=False)


@dataclass(slots=True, frozen=True)
class Phase:
    key: str
    label: str
    unit: str
    goal: str | None


PHASES = (
    Phase("create", "single creates", "entities/s", None),
    Phase("update", "attribute updates", "updates/s", f"ratio >= {RATIO_GOAL}"),
    Phase("retrieve", "retrievals", "retrievals/s", f"ratio >= {RATIO_GOAL}"),
    Phase("batch_upsert", "batch upserts (100)", "entities/s", f"speed-up >= {SPEEDUP_GOAL:g}x"),
)


def _offset(operation: Operation, first: int) -> Operation:
    async def shifted(index: int) -> None:
        await operation(first + index)

    return shifted


def _shape(value: Any) -> Any:
    """A document with its times and counters blanked, to compare what both sides store."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items() if key != "_id"}
    if isinstance(value, datetime):
        return "<datetime>"
    return value


SIDES = ("httpx", "plain_http", "raw_driver")
BROKER_SIDES = ("httpx", "plain_http")
SIDE_LABELS = {
    "httpx": "broker/httpx",
    "plain_http": "broker/plain",
    "raw_driver": "raw driver",
}


async def measure(
    args: argparse.Namespace, broker: Up, store: EmbeddedStore, tenant: str
) -> dict[str, Any]:
    """Warm every side up, then run each phase: over HTTP with each client, then raw."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        store.url, tz_aware=True, serverSelectionTimeoutMS=5000, connectTimeoutMS=3000
    )
    httpx_client = HttpxClient(broker.url, tenant, args.concurrency)
    plain_client = PlainHttpClient(broker.url, tenant, args.concurrency)
    try:
        raw = RawSide(client[f"ctx_{tenant}_raw"]["entities"], "r")
        await raw.prepare()
        sides: dict[str, Side] = {
            "httpx": BrokerSide(httpx_client.send, "h"),
            "plain_http": BrokerSide(plain_client.send, "p"),
            "raw_driver": raw,
        }
        warm_ups = (
            BrokerSide(httpx_client.send, "wh"),
            BrokerSide(plain_client.send, "wp"),
            RawSide(raw.entities, "wr"),
        )
        for warm_up in warm_ups:
            for step in (warm_up.create, warm_up.retrieve):
                warmed = await run_phase(
                    step, args.concurrency * 4, args.concurrency, args.phase_seconds
                )
                if warmed.errors:
                    raise OperationFailed(f"warm-up failed: {warmed.first_error}")

        processes = {"generator": os.getpid(), "broker": broker.pid, "store": store.pid or 0}
        results: dict[str, Any] = {}
        for phase in PHASES:
            batched = phase.key == "batch_upsert"
            count = args.batches if batched else args.count
            row: dict[str, Any] = {"label": phase.label, "unit": phase.unit}
            samples = {name: Sample() for name in sides}
            # Rounds in rotating order: the store slows as it fills and works in the
            # background, and no side should always come last.
            chunk = -(-count // args.rounds)
            for round_ in range(args.rounds):
                first = round_ * chunk
                order = list(sides)[round_ % len(sides) :] + list(sides)[: round_ % len(sides)]
                for name in order:
                    samples[name].add(
                        await run_phase(
                            _offset(getattr(sides[name], phase.key), first),
                            min(chunk, count - first),
                            args.concurrency,
                            args.phase_seconds / args.rounds,
                            BATCH_SIZE if batched else 1,
                            processes,
                        )
                    )
            for name, sample in samples.items():
                row[name] = sample.summary()
                cpu = row[name]["cpu_ms_per_op"]
                print(
                    f"  {phase.label:<20} {SIDE_LABELS[name]:<13} {sample.per_second:8.1f} "
                    f"{phase.unit:<12} {sample.ops} ops in {sample.seconds:.1f} s, "
                    f"{sample.errors} errors; CPU ms/op: generator {cpu['generator']}, "
                    f"broker {cpu['broker']}, store {cpu['store']}",
                    flush=True,
                )
            results[phase.key] = row
            if phase.key == "create":
                broker_doc = await client[f"ctx_{tenant}"]["entities"].find_one(
                    {"_id": entity_id("h", 0)}
                )
                raw_doc = await raw.entities.find_one({"_id": entity_id("r", 0)})
                results["same_documents"] = _shape(broker_doc) == _shape(raw_doc)
        return results
    finally:
        await httpx_client.aclose()
        await plain_client.aclose()
        await client.close()


def evaluate(results: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The report's lines and the goals missed; adds ratios and speed-ups to `results`."""
    missed: list[str] = []
    lines = [
        f"{'operation':<20} {'unit':<12} {'broker/httpx':>12} {'broker/plain':>12} "
        f"{'raw driver':>10} {'ratio httpx':>11} {'ratio plain':>11}  goal",
    ]
    for phase in PHASES:
        row = results[phase.key]
        rates = {side: row[side]["per_second"] for side in SIDES}
        ratios = {
            side: rates[side] / rates["raw_driver"] if rates["raw_driver"] else 0.0
            for side in BROKER_SIDES
        }
        row["ratio"] = {side: round(ratio, 3) for side, ratio in ratios.items()}
        verdicts = []
        if phase.goal is not None and phase.goal.startswith("ratio"):
            row["goal"] = {"target": phase.goal}
            for side, ratio in ratios.items():
                met = ratio >= RATIO_GOAL
                row["goal"][side] = met
                verdicts.append(f"{side}: {'met' if met else 'GOAL MISSED'}")
                if not met:
                    missed.append(f"{phase.label} with {side}: ratio {ratio:.2f} < {RATIO_GOAL}")
        lines.append(
            f"{phase.label:<20} {phase.unit:<12} {rates['httpx']:>12.1f} "
            f"{rates['plain_http']:>12.1f} {rates['raw_driver']:>10.1f} "
            f"{ratios['httpx']:>11.2f} {ratios['plain_http']:>11.2f}  "
            + (f"{phase.goal}: {', '.join(verdicts)}" if verdicts else "")
        )
    speedups = {
        side: results["batch_upsert"][side]["per_second"] / results["create"][side]["per_second"]
        if results["create"][side]["per_second"]
        else 0.0
        for side in SIDES
    }
    results["batch_speedup"] = {
        "target": f">= {SPEEDUP_GOAL:g}x",
        **{side: round(speedup, 2) for side, speedup in speedups.items()},
    }
    verdicts = []
    for side in BROKER_SIDES:
        met = speedups[side] >= SPEEDUP_GOAL
        verdicts.append(f"{side}: {'met' if met else 'GOAL MISSED'}")
        if not met:
            missed.append(f"batch speed-up with {side}: {speedups[side]:.1f}x < {SPEEDUP_GOAL:g}x")
    lines.append(
        "batch speed-up (batch upsert entities/s / single creates/s): "
        + ", ".join(f"{SIDE_LABELS[side]} {speedups[side]:.1f}x" for side in SIDES)
        + f"; goal >= {SPEEDUP_GOAL:g}x: {', '.join(verdicts)}"
    )
    lines += ["", "CPU ms per operation (generator / broker / store):"]
    for phase in PHASES:
        cells = []
        for side in SIDES:
            cpu = results[phase.key][side]["cpu_ms_per_op"]
            cells.append(
                f"{SIDE_LABELS[side]} {cpu['generator']:.2f} / {cpu['broker']:.2f} / "
                f"{cpu['store']:.2f}"
            )
        lines.append(f"{phase.label:<20} " + ";  ".join(cells))
    if not results.get("same_documents", False):
        lines.append(
            "WARNING: the raw driver's documents differ from the broker's; update stored() "
            "to the broker's layout before trusting the ratios"
        )
    return lines, missed


# --- the stack under test --------------------------------------------------------------------


def _contesto() -> list[str]:
    beside = Path(sys.executable).parent / "contesto"
    if beside.exists():
        return [str(beside)]
    return [sys.executable, "-c", "from contesto._cli import main; main()"]


@dataclass(slots=True, frozen=True)
class Up:
    url: str
    pid: int


@contextmanager
def contesto_up(
    store_url: str, data_dir: Path, log_level: str, temporal: str = "on"
) -> Iterator[Up]:
    """`contesto up` on a free port over the given store, until the context ends;
    `temporal` is its CONTESTO_TEMPORAL (history recorded on every write, or not)."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("CONTESTO_")}
    env |= {"CONTESTO_MONGO_URL": store_url, "CONTESTO_LOG_LEVEL": log_level}
    env |= {"CONTESTO_TEMPORAL": temporal}
    # Its MQTT and provisioning ports too: another stack on the machine must not stop it.
    env |= {"CONTESTO_MQTT_PORT": str(free_port()), "CONTESTO_PROVISIONING_PORT": str(free_port())}
    log_path = data_dir / "contesto-up.log"
    command = [*_contesto(), "up", "--port", str(port), "--data-dir", str(data_dir)]
    with log_path.open("w+b") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
        )
        try:
            deadline = time.monotonic() + UP_TIMEOUT_S
            while b"Contesto is up." not in log_path.read_bytes():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise OperationFailed(
                        f"contesto up did not come up (exit code {process.poll()}):\n"
                        + log_path.read_text(errors="replace")[-2000:]
                    )
                time.sleep(0.1)
            yield Up(f"http://127.0.0.1:{port}", process.pid)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=2000, help="operations per phase and side")
    parser.add_argument(
        "--batches", type=int, default=60, help="batch upserts (of 100 entities) per side"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="operations in flight")
    parser.add_argument(
        "--rounds", type=int, default=4, help="rounds per phase, the sides in rotating order"
    )
    parser.add_argument(
        "--phase-seconds", type=float, default=20.0, help="time bound of each phase and side"
    )
    parser.add_argument(
        "--log-level", default="info", help="contesto up's log level (info: as shipped)"
    )
    parser.add_argument(
        "--temporal",
        choices=("on", "off"),
        default="on",
        help="CONTESTO_TEMPORAL of the broker: record history on every write (as shipped)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args(argv if argv is not None else [])
    signal.signal(signal.SIGTERM, _terminate)
    tenant = f"bench{secrets.token_hex(4)}"
    with ExitStack() as stack:
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-broker-")))
        store = stack.enter_context(
            EmbeddedStore(data_dir / "db", log_path=data_dir / "secantus.log")
        )
        up = stack.enter_context(contesto_up(store.url, data_dir, args.log_level, args.temporal))
        print(
            f"contesto up at {up.url}, store {store.url}, tenant {tenant}; "
            f"{args.count} ops (batches: {args.batches} x {BATCH_SIZE}) per phase and side, "
            f"{args.concurrency} in flight, <= {args.phase_seconds:g} s each",
            flush=True,
        )
        results = asyncio.run(measure(args, up, store, tenant))
    lines, missed = evaluate(results)
    print("\n".join(["", *lines]))
    errors = sum(results[phase.key][side]["errors"] for phase in PHASES for side in SIDES)
    report = {
        **provenance("bench_broker", argv),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "count": args.count,
        "batches": args.batches,
        "batch_size": BATCH_SIZE,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "phase_seconds": args.phase_seconds,
        "broker_log_level": args.log_level,
        "temporal": args.temporal,
        "results": results,
        "goals_missed": missed,
        "errors": errors,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results in {args.output}")
    for goal in missed:
        print(f"goal missed: {goal}")
    if errors:
        print(f"FAILED: {errors} operations failed (see first_error in {args.output})")
        raise SystemExit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
