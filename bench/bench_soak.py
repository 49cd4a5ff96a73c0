"""Soak: does the memory of every process of `contesto up` level off under steady load?

`python -m bench.bench_soak [--minutes M] [--msgs-per-s R] [--requests-per-s R]`. A real
`contesto up` runs on free loopback ports over a fresh data directory, with its own children:
the embedded store, Mosquitto and the ingest process. For M minutes (default 60) this process
- publishes R MQTT messages/s (default 100, QoS 1) as Firenze's air-quality sensors (IoT
  Agent JSON, the demo group `contesto up` provisions), over 200 devices provisioned at the
  start, plus one new device a minute, so entities are updated and some created;
- sends R mixed HTTP requests/s (default 100) to the NGSI-LD API as tenant firenze:
  half retrievals of a sensor's entity by id, a quarter pages of a query by type, a quarter
  PATCHes of an attribute of one of 500 entities of its own, and every 1000th request a
  batch upsert of 20 of those;
- every 30 s samples the RSS and CPU time of every process of the stack.
The first 2 minutes (a third of a shorter run) are a warm-up. At the end a table per
process gives its RSS after the warm-up, at the middle of the measured window, at its end,
the peak, and the slope of a least-squares line over the window's last half (MB/hour); the
verdict is "levels off" when that line grows less than 10 MB or 5 % over the last half.
Results go to bench/results/soak.json. Exit code 1 when a process did not level off, the
stack died, or fewer than 90 % of the messages or requests were sent.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

if __package__ in {None, ""}:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import orjson

from bench._results import write_results
from contesto._demo import FIRENZE_KEY
from contesto._embedded import free_port
from sensor_ingest import MqttOptions
from sensor_ingest._mqtt import MqttPublisher

# bench/__main__.py reads this literal: the soak's own bound (75 min), not
# CONTESTO_BENCH_TIMEOUT_S.
BENCH_TIMEOUT_S = 4500

RESULTS = Path(__file__).resolve().parent / "results" / "soak.json"
API = "/ngsi-ld/v1"
TENANT = "firenze"
SENSOR_TYPE = "AirQualityObserved"
OWN_TYPE = "SoakCounter"
OWN_ENTITIES = 500
BATCH_SIZE = 20
BATCH_EVERY = 1000
FIRST_DEVICES = 200
SAMPLE_EVERY_S = 30.0
WARM_UP_S = 120.0
UP_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0
REQUEST_TIMEOUT_S = 10.0
PROVISIONING_TIMEOUT_S = 30.0
MAX_IN_FLIGHT = 32
FLAT_MB = 10.0
FLAT_FRACTION = 0.05
MIN_RATE_FRACTION = 0.9
MB = 1024 * 1024
_TICKS = os.sysconf("SC_CLK_TCK")


class SoakFailed(RuntimeError):
    """The stack could not be started or provisioned."""


# --- what levelling off means ----------------------------------------------------------------


def slope_per_hour(samples: list[tuple[float, float]]) -> float:
    """The least-squares slope of (seconds, value) samples, in value per hour."""
    if len(samples) < 2:
        return 0.0
    mean_t = sum(t for t, _ in samples) / len(samples)
    mean_v = sum(v for _, v in samples) / len(samples)
    spread = sum((t - mean_t) ** 2 for t, _ in samples)
    if spread == 0:
        return 0.0
    covariance = sum((t - mean_t) * (v - mean_v) for t, v in samples)
    return covariance / spread * 3600.0


def levels_off(last_half: list[tuple[float, float]]) -> tuple[bool, float]:
    """Whether RSS samples (seconds, MB) of a window's last half grow less than FLAT_MB or
    FLAT_FRACTION of their level over that half, by their least-squares line; and that growth
    in MB."""
    if len(last_half) < 2:
        return True, 0.0
    hours = (last_half[-1][0] - last_half[0][0]) / 3600.0
    growth = slope_per_hour(last_half) * hours
    level = max(v for _, v in last_half)
    return growth < FLAT_MB or growth < FLAT_FRACTION * level, growth


# --- the processes of the stack --------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        tree.setdefault(parent, []).append(int(entry))
    return tree


def _cmdline(pid: int) -> str:
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def role(command: str) -> str:
    """Which part of the stack a process of `contesto up` is, by its command line."""
    lowered = command.lower()
    for needle, name in (
        ("mosquitto", "mosquitto"),
        ("amqtt", "mqtt (amqtt)"),
        ("secantus", "store"),
        ("ingest", "ingest"),
        ("api", "api"),
    ):
        if needle in lowered:
            return name
    return Path(command.split(" ", 1)[0]).name or "?"


@dataclass(slots=True, frozen=True)
class Usage:
    pid: int
    rss_mb: float
    cpu_s: float


def _usage(pid: int) -> Usage | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rss_kb = next(
        (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0
    )
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu_s = (int(fields[11]) + int(fields[12])) / _TICKS
    return Usage(pid, rss_kb / 1024, cpu_s)


def stack_usage(root: int) -> dict[str, Usage]:
    """RSS and CPU time of `root` ("api": `contesto up` serves the API itself) and of every
    process below it, by role (a second process of one role gets a numbered name)."""
    tree = _children()
    found: dict[str, Usage] = {}
    pending = [(root, "api")]
    while pending:
        pid, name = pending.pop()
        usage = _usage(pid)
        if usage is not None:
            unique, n = name, 2
            while unique in found:
                unique, n = f"{name}-{n}", n + 1
            found[unique] = usage
        for child in tree.get(pid, []):
            try:
                pending.append((child, role(_cmdline(child))))
            except OSError:
                continue
    return found


# --- the stack -------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class Stack:
    pid: int
    api_url: str
    provisioning_url: str
    mqtt_port: int
    process: subprocess.Popen[bytes]


def _contesto() -> list[str]:
    beside = Path(sys.executable).parent / "contesto"
    if beside.exists():
        return [str(beside)]
    return [sys.executable, "-c", "from contesto._cli import main; main()"]


@contextmanager
def contesto_up(data_dir: Path) -> Iterator[Stack]:
    """`contesto up` with its embedded store, Mosquitto and ingest, on free loopback ports,
    until the context ends (SIGTERM, then SIGKILL after STOP_TIMEOUT_S)."""
    port, mqtt_port, provisioning_port = free_port(), free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("CONTESTO_")}
    env |= {
        "CONTESTO_HOST": "127.0.0.1",
        "CONTESTO_MQTT_HOST": "127.0.0.1",
        "CONTESTO_MQTT_PORT": str(mqtt_port),
        "CONTESTO_PROVISIONING_PORT": str(provisioning_port),
        "CONTESTO_LOG_LEVEL": "warning",
    }
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
                    raise SoakFailed(
                        f"contesto up did not come up (exit code {process.poll()}):\n"
                        + log_path.read_text(errors="replace")[-2000:]
                    )
                time.sleep(0.2)
            yield Stack(
                process.pid,
                f"http://127.0.0.1:{port}{API}",
                f"http://127.0.0.1:{provisioning_port}/iot",
                mqtt_port,
                process,
            )
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


# --- the load --------------------------------------------------------------------------------


def device_id(n: int) -> str:
    return f"aq-soak-{n:04d}"


def _device(n: int) -> dict[str, Any]:
    rng = random.Random(n)
    point = [round(11.20 + rng.uniform(0, 0.1), 5), round(43.75 + rng.uniform(0, 0.05), 5)]
    return {
        "device_id": device_id(n),
        "apikey": FIRENZE_KEY,
        "static_attributes": [
            {
                "name": "location",
                "type": "GeoProperty",
                "value": {"type": "Point", "coordinates": point},
            }
        ],
    }


@dataclass(slots=True)
class Load:
    """What the generators did, shared between the MQTT thread and the HTTP loop."""

    devices: int = FIRST_DEVICES
    provisioning_errors: int = 0
    messages: int = 0
    message_errors: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=dict)
    request_errors: int = 0
    behind: int = 0
    first_error: str = ""


def publish(stack: Stack, load: Load, rate: float, stop: threading.Event) -> None:
    """R messages/s, QoS 1, over the provisioned devices in turn, until `stop`."""
    interval = 1.0 / rate
    rng = random.Random(17)
    with MqttPublisher(MqttOptions(host="127.0.0.1", port=stack.mqtt_port)) as publisher:
        started = time.monotonic()
        n = 0
        while not stop.is_set():
            device = device_id(n % load.devices)
            body = {
                "t": round(rng.uniform(5, 30), 2),
                "h": round(rng.uniform(40, 80), 1),
                "pm10": round(rng.uniform(5, 40), 1),
                "pm25": round(rng.uniform(2, 25), 1),
                "no2": round(rng.uniform(5, 60), 1),
            }
            try:
                publisher.publish(
                    f"/json/{FIRENZE_KEY}/{device}/attrs", orjson.dumps(body), wait=False
                )
                load.messages += 1
            except Exception as exc:
                load.message_errors += 1
                load.first_error = load.first_error or f"MQTT: {exc}"
            n += 1
            stop.wait(max(0.0, started + n * interval - time.monotonic()))
        publisher.flush(30.0)


def _own(n: int) -> str:
    return f"urn:ngsi-ld:{OWN_TYPE}:soak-{n:04d}"


def _own_entity(n: int, value: int) -> dict[str, Any]:
    return {
        "id": _own(n),
        "type": OWN_TYPE,
        "count": {"type": "Property", "value": value},
        "state": {"type": "Property", "value": "running"},
    }


class Requests:
    """The mixed HTTP requests, one per call of `one()`."""

    def __init__(self, http: httpx.AsyncClient, load: Load) -> None:
        self._http = http
        self._load = load
        self._rng = random.Random(29)
        self._n = 0

    async def one(self) -> None:
        self._n += 1
        pick = self._rng.random()
        if self._n % BATCH_EVERY == 0:
            kind, call = "batch upsert", self._batch_upsert()
        elif pick < 0.5:
            kind, call = "retrieve", self._retrieve()
        elif pick < 0.75:
            kind, call = "query page", self._query()
        else:
            kind, call = "patch", self._patch()
        sent = time.monotonic()
        try:
            status = await call
        except httpx.HTTPError as exc:
            self._load.request_errors += 1
            self._load.first_error = self._load.first_error or f"{kind}: {exc!r}"
            return
        self._load.requests[kind] += 1
        self._load.seconds[kind] = self._load.seconds.get(kind, 0.0) + time.monotonic() - sent
        self._load.statuses[str(status)] += 1
        if status >= 500 and not self._load.first_error:
            self._load.first_error = f"{kind}: HTTP {status}"

    async def _retrieve(self) -> int:
        eid = f"urn:ngsi-ld:{SENSOR_TYPE}:{device_id(self._rng.randrange(FIRST_DEVICES))}"
        return (await self._http.get(f"/entities/{eid}")).status_code

    async def _query(self) -> int:
        params = {"type": SENSOR_TYPE, "limit": "20", "offset": str(self._rng.randrange(0, 100))}
        return (await self._http.get("/entities", params=params)).status_code

    async def _patch(self) -> int:
        n = self._rng.randrange(OWN_ENTITIES)
        body = {"type": "Property", "value": self._n}
        return (await self._http.patch(f"/entities/{_own(n)}/attrs/count", json=body)).status_code

    async def _batch_upsert(self) -> int:
        first = self._rng.randrange(0, OWN_ENTITIES - BATCH_SIZE)
        body = [_own_entity(n, self._n) for n in range(first, first + BATCH_SIZE)]
        return (await self._http.post("/entityOperations/upsert", json=body)).status_code


async def _provision(stack: Stack, first: int, count: int) -> None:
    headers = {"fiware-service": TENANT, "fiware-servicepath": "/"}
    devices = [_device(n) for n in range(first, first + count)]
    async with httpx.AsyncClient(timeout=PROVISIONING_TIMEOUT_S) as http:
        answer = await http.post(
            f"{stack.provisioning_url}/devices", json={"devices": devices}, headers=headers
        )
    if answer.status_code != 201:
        raise SoakFailed(f"provisioning answered {answer.status_code}: {answer.text[:500]}")


async def _requests(
    http: httpx.AsyncClient, load: Load, rate: float, until: float, stop: threading.Event
) -> None:
    """R requests/s, at most MAX_IN_FLIGHT at once (a request due beyond that is counted as
    behind and not sent), until `until` on the monotonic clock."""
    requests = Requests(http, load)
    in_flight: set[asyncio.Task[None]] = set()
    interval = 1.0 / rate
    started = time.monotonic()
    n = 0
    while time.monotonic() < until and not stop.is_set():
        n += 1
        if len(in_flight) < MAX_IN_FLIGHT:
            task = asyncio.create_task(requests.one())
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        else:
            load.behind += 1
        await asyncio.sleep(max(0.0, started + n * interval - time.monotonic()))
    if in_flight:
        await asyncio.wait(in_flight, timeout=REQUEST_TIMEOUT_S)


async def _add_devices(stack: Stack, load: Load, until: float) -> None:
    """One more device a minute, which the publisher then feeds (its entity is created); a
    failed provisioning is counted and tried again the next minute."""
    while time.monotonic() + 60 < until:
        await asyncio.sleep(60)
        try:
            await _provision(stack, load.devices, 1)
        except (httpx.HTTPError, SoakFailed) as exc:
            load.provisioning_errors += 1
            load.first_error = load.first_error or f"provisioning: {exc!r}"
            continue
        load.devices += 1


@dataclass(slots=True)
class Sample:
    at_s: float
    usage: dict[str, Usage]
    ingest: dict[str, float]


INGEST_FIGURES = {
    "contesto_ingest_messages_total": "ingested",
    "contesto_dead_letters_total": "dead_letters",
    "contesto_ingest_lag_seconds": "lag_s",
    "contesto_outbox_depth": "outbox",
}


def ingest_figures(exposition: str) -> dict[str, float]:
    """Messages ingested, dead letters (each summed over its labels), lag and outbox depth
    from the stack's /metrics."""
    figures = dict.fromkeys(INGEST_FIGURES.values(), 0.0)
    for line in exposition.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in INGEST_FIGURES and not line.startswith("#"):
            figures[INGEST_FIGURES[name]] += float(line.rsplit(" ", 1)[1])
    return figures


async def _scrape(http: httpx.AsyncClient, stack: Stack) -> dict[str, float]:
    try:
        answer = await http.get(stack.api_url.removesuffix(API) + "/metrics")
    except httpx.HTTPError:
        return {}
    return ingest_figures(answer.text) if answer.status_code == 200 else {}


async def _sample(
    http: httpx.AsyncClient,
    stack: Stack,
    load: Load,
    started: float,
    until: float,
    samples: list[Sample],
) -> None:
    while True:
        now = time.monotonic()
        usage = stack_usage(stack.pid)
        ingest = await _scrape(http, stack)
        samples.append(Sample(now - started, usage, ingest))
        rss = "  ".join(f"{name} {u.rss_mb:.0f}" for name, u in sorted(usage.items()))
        elapsed = max(now - started, 1.0)
        print(
            f"[{(now - started) / 60:5.1f} min] RSS MB: {rss} | "
            f"{load.messages / elapsed:.0f} msgs/s, {sum(load.requests.values()) / elapsed:.0f} "
            f"req/s, devices {load.devices}, statuses {dict(sorted(load.statuses.items()))}, "
            f"errors {load.message_errors + load.request_errors}, behind {load.behind} | "
            f"ingest {ingest}",
            flush=True,
        )
        if stack.process.poll() is not None:
            raise SoakFailed(f"contesto up exited with {stack.process.returncode}")
        if now >= until:
            return
        await asyncio.sleep(min(SAMPLE_EVERY_S, max(0.0, until - time.monotonic())))


async def soak(stack: Stack, args: argparse.Namespace) -> tuple[Load, list[Sample], float]:
    load = Load()
    await _provision(stack, 0, FIRST_DEVICES)
    headers = {"NGSILD-Tenant": TENANT}
    async with httpx.AsyncClient(
        base_url=stack.api_url, headers=headers, timeout=REQUEST_TIMEOUT_S
    ) as http:
        created = await http.post(
            "/entityOperations/upsert", json=[_own_entity(n, 0) for n in range(OWN_ENTITIES)]
        )
        if created.status_code not in (201, 204):
            raise SoakFailed(f"creating the soak's entities: {created.status_code} {created.text}")
        stop = threading.Event()
        started = time.monotonic()
        until = started + args.minutes * 60
        publisher = threading.Thread(
            target=publish, args=(stack, load, args.msgs_per_s, stop), daemon=True
        )
        publisher.start()
        samples: list[Sample] = []
        tasks = [
            asyncio.create_task(_requests(http, load, args.requests_per_s, until, stop)),
            asyncio.create_task(_add_devices(stack, load, until)),
        ]
        try:
            await _sample(http, stack, load, started, until, samples)
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.to_thread(publisher.join, 40.0)
        elapsed = time.monotonic() - started
        return load, samples, elapsed


# --- the report ------------------------------------------------------------------------------


def _at(series: list[tuple[float, float]], t: float) -> float:
    return min(series, key=lambda point: abs(point[0] - t))[1]


def summarize(samples: list[Sample], warm_up_s: float) -> dict[str, dict[str, Any]]:
    """Per process: RSS after the warm-up, at the window's middle and end, peak, the last
    half's slope and growth, the verdict, CPU seconds over the window, restarts (PIDs seen)."""
    window = [s for s in samples if s.at_s >= warm_up_s] or samples[-1:]
    start, end = window[0].at_s, window[-1].at_s
    middle = (start + end) / 2
    names = sorted({name for s in window for name in s.usage})
    table: dict[str, dict[str, Any]] = {}
    for name in names:
        series = [(s.at_s, s.usage[name].rss_mb) for s in window if name in s.usage]
        last_half = [(t, v) for t, v in series if t >= middle]
        flat, growth = levels_off(last_half)
        cpu = [s.usage[name].cpu_s for s in window if name in s.usage]
        pids = {s.usage[name].pid for s in samples if name in s.usage}
        table[name] = {
            "rss_start_mb": round(series[0][1], 1),
            "rss_middle_mb": round(_at(series, middle), 1),
            "rss_end_mb": round(series[-1][1], 1),
            "rss_peak_mb": round(max(v for _, v in series), 1),
            "last_half_slope_mb_per_h": round(slope_per_hour(last_half), 1),
            "last_half_growth_mb": round(growth, 1),
            "levels_off": flat,
            "cpu_s_in_window": round(cpu[-1] - cpu[0], 1),
            "restarts": len(pids) - 1,
        }
    return table


def _table(table: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        f"{'process':<14}{'start':>8}{'middle':>8}{'end':>8}{'peak':>8}"
        f"{'MB/h (2nd half)':>17}{'growth':>8}  verdict",
    ]
    for name, row in table.items():
        verdict = "levels off" if row["levels_off"] else "GROWS"
        lines.append(
            f"{name:<14}{row['rss_start_mb']:>8.1f}{row['rss_middle_mb']:>8.1f}"
            f"{row['rss_end_mb']:>8.1f}{row['rss_peak_mb']:>8.1f}"
            f"{row['last_half_slope_mb_per_h']:>17.1f}{row['last_half_growth_mb']:>8.1f}  {verdict}"
        )
    return lines


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=60.0, help="length of the soak")
    parser.add_argument("--msgs-per-s", type=float, default=100.0, help="MQTT messages/s")
    parser.add_argument("--requests-per-s", type=float, default=100.0, help="HTTP requests/s")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    arguments = argv if argv is not None else []
    args = parser.parse_args(arguments)
    signal.signal(signal.SIGTERM, _terminate)
    warm_up_s = min(WARM_UP_S, args.minutes * 60 / 3)
    with (
        tempfile.TemporaryDirectory(prefix="bench-soak-") as directory,
        contesto_up(Path(directory)) as stack,
    ):
        print(
            f"contesto up (PID {stack.pid}) at {stack.api_url}, MQTT port {stack.mqtt_port}; "
            f"{args.minutes:g} min of {args.msgs_per_s:g} msgs/s and "
            f"{args.requests_per_s:g} requests/s, warm-up {warm_up_s:g} s, a sample every "
            f"{SAMPLE_EVERY_S:g} s",
            flush=True,
        )
        load, samples, elapsed = asyncio.run(soak(stack, args))
        cache = next(
            (
                line.strip()
                for line in (Path(directory) / "contesto-up.log").read_text().splitlines()
                if "cache" in line
            ),
            "",
        )
    table = summarize(samples, warm_up_s)
    requests = sum(load.requests.values())
    rates = {
        "msgs_per_s": round(load.messages / elapsed, 1),
        "requests_per_s": round(requests / elapsed, 1),
    }
    latency_ms = {
        kind: round(load.seconds[kind] / count * 1000, 1) for kind, count in load.requests.items()
    }
    lines = _table(table)
    print(
        "\n".join(["", f"RSS in MB over {elapsed / 60:.1f} min, warm-up {warm_up_s:g} s:", *lines])
    )
    print(
        f"sent {load.messages} messages ({rates['msgs_per_s']}/s, {load.message_errors} errors), "
        f"{requests} requests ({rates['requests_per_s']}/s: {dict(load.requests)}; statuses "
        f"{dict(sorted(load.statuses.items()))}; {load.request_errors} errors; {load.behind} "
        f"not sent, {MAX_IN_FLIGHT} in flight already); mean latency ms {latency_ms}; "
        f"{load.devices} devices; {cache}"
    )
    figures = {
        "minutes": args.minutes,
        "warm_up_s": warm_up_s,
        "elapsed_s": round(elapsed, 1),
        "target_msgs_per_s": args.msgs_per_s,
        "target_requests_per_s": args.requests_per_s,
        "achieved": rates,
        "messages": load.messages,
        "message_errors": load.message_errors,
        "requests": dict(load.requests),
        "mean_latency_ms": latency_ms,
        "statuses": dict(sorted(load.statuses.items())),
        "request_errors": load.request_errors,
        "requests_not_sent": load.behind,
        "devices": load.devices,
        "provisioning_errors": load.provisioning_errors,
        "ingest_at_end": samples[-1].ingest,
        "first_error": load.first_error,
        "store": cache,
        "verdict_rule": (
            f"levels off: the least-squares line over the last half of the measured window "
            f"grows < {FLAT_MB:g} MB or < {FLAT_FRACTION:.0%} of the peak RSS"
        ),
        "processes": table,
        "samples": [
            {
                "at_s": round(s.at_s, 1),
                "rss_mb": {n: round(u.rss_mb, 1) for n, u in s.usage.items()},
                "cpu_s": {n: round(u.cpu_s, 1) for n, u in s.usage.items()},
                "ingest": s.ingest,
            }
            for s in samples
        ],
    }
    write_results(args.output, "bench_soak", figures, arguments)
    print(f"results in {args.output}")
    problems = [f"{name} grows" for name, row in table.items() if not row["levels_off"]]
    for what, rate, target in (
        ("messages", rates["msgs_per_s"], args.msgs_per_s),
        ("requests", rates["requests_per_s"], args.requests_per_s),
    ):
        if rate < MIN_RATE_FRACTION * target:
            problems.append(f"{what} at {rate}/s, under {MIN_RATE_FRACTION:.0%} of {target:g}/s")
    if problems:
        print("FAILED: " + "; ".join(problems))
        raise SystemExit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
