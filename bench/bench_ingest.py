"""End-to-end ingest: MQTT publish -> entity visible over NGSI-LD, on the whole stack.

`contesto up` runs as in `make run` (embedded store, Mosquitto, ingest process, broker
API) on free ports; 200 devices in 2 tenants publish IoT Agent JSON messages as fast as
paho can. Throughput runs from the first publish to the moment every device's entity
shows its last message. Latency is the broker's `modifiedAt` minus the message's
`TimeInstant` (its publish time), sampled by polling the entities during the run.
With `--rate R --seconds S`, R*S messages are published at a steady R messages/s instead.
The store's CPU time per message (user + system of the `secantusd-py` process, from the
first publish until every message arrived) is reported, and that of the whole stack.

    .venv/bin/python -m bench.bench_ingest [--messages 20000] [--devices 200]
    .venv/bin/python -m bench.bench_ingest --rate 500 --seconds 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.bench_broker import cpu_seconds
from contesto._embedded import free_port
from sensor_ingest._mqtt import MqttOptions, MqttPublisher

TENANTS = ("bench-firenze", "bench-prato")
NGSI_LD = "/ngsi-ld/v1"


def _descendants(pid: int) -> list[int]:
    """`pid` and every process below it, from /proc."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += _descendants(int(child))
    return found


class CpuMeter:
    """CPU seconds used by the store and by the whole stack (`contesto up` and its children)."""

    def __init__(self, stack_pid: int) -> None:
        self._pids = _descendants(stack_pid)
        stores = [
            pid for pid in self._pids if b"secantusd" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        if len(stores) != 1:
            raise SystemExit("cannot find the embedded store's process of the stack")
        self._store = stores[0]

    def read(self) -> tuple[float, float]:
        """(store CPU s, stack CPU s) so far."""
        return cpu_seconds(self._store), sum(cpu_seconds(pid) for pid in self._pids)


@contextmanager
def stack(data_dir: Path) -> Iterator[dict[str, int]]:
    ports = {"api": free_port(), "mqtt": free_port(), "provisioning": free_port()}
    env = {
        **os.environ,
        "CONTESTO_DATA_DIR": str(data_dir),
        "CONTESTO_PORT": str(ports["api"]),
        "CONTESTO_MQTT_PORT": str(ports["mqtt"]),
        "CONTESTO_PROVISIONING_PORT": str(ports["provisioning"]),
        "CONTESTO_DEMO_TENANTS": "false",
        "CONTESTO_LOG_LEVEL": "warning",
    }
    env.pop("CONTESTO_MONGO_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "contesto", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if "Contesto is up" in line:
                break
        else:
            raise SystemExit("contesto up did not start")
        ports["pid"] = process.pid
        yield ports
    finally:
        process.terminate()
        process.wait(60)


def provision(port: int, tenant: str) -> None:
    group = {
        "apikey": f"key-{tenant}",
        "entity_type": "AirQualityObserved",
        "resource": "/iot/json",
        "autoprovision": True,
        "explicitAttrs": True,
        "model": "AirQualityObserved",
        "attributes": [
            {
                "object_id": "t",
                "name": "temperature",
                "type": "Number",
                "metadata": {"unitCode": {"type": "Text", "value": "CEL"}},
            },
            {"object_id": "pm10", "name": "pm10", "type": "Number"},
            {"object_id": "n", "name": "sequence", "type": "Number"},
        ],
        "static_attributes": [
            {
                "name": "location",
                "type": "geo:json",
                "value": {"type": "Point", "coordinates": [11.25, 43.77]},
            },
        ],
    }
    answer = httpx.post(
        f"http://127.0.0.1:{port}/iot/services",
        json={"services": [group]},
        headers={"fiware-service": tenant, "fiware-servicepath": "/"},
    )
    assert answer.status_code in (201, 409), answer.text


def messages(count: int, devices: int) -> Iterator[tuple[str, int, int]]:
    """(tenant key, device index, sequence number) in publish order."""
    for n in range(count):
        device = n % devices
        yield f"key-{TENANTS[device % 2]}", device, n // devices


def poll(api_port: int, devices: int, last: int, samples: list[float]) -> bool:
    """Sample latencies; True once every device shows sequence `last`."""
    done = 0
    with httpx.Client(base_url=f"http://127.0.0.1:{api_port}{NGSI_LD}", timeout=60) as http:
        for tenant in TENANTS:
            answer = http.get(
                "/entities",
                params={
                    "type": "AirQualityObserved",
                    "attrs": "sequence",
                    "limit": "1000",
                    "options": "sysAttrs",
                },
                headers={"NGSILD-Tenant": tenant},
            )
            if answer.status_code != 200:
                continue
            for entity in answer.json():
                sequence = entity.get("sequence", {})
                observed = _instant(sequence.get("observedAt"))
                modified = _instant(sequence.get("modifiedAt"))
                if observed and modified:
                    samples.append((modified - observed) * 1000)
                if sequence.get("value") == last:
                    done += 1
    return done == devices


def _instant(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def run(count: int, devices: int, rate: float | None = None) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp, stack(Path(tmp)) as ports:
        for tenant in TENANTS:
            provision(ports["provisioning"], tenant)
        meter = CpuMeter(ports["pid"])
        last = (count - 1) // devices
        samples: list[float] = []
        store_cpu, stack_cpu = meter.read()
        started = time.monotonic()
        with MqttPublisher(MqttOptions(port=ports["mqtt"])) as mqtt:
            next_poll = started + 1.0
            for n, (key, device, sequence) in enumerate(messages(count, devices)):
                if rate is not None:
                    ahead = started + n / rate - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
                stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
                payload = {
                    "t": 20.0 + sequence % 10,
                    "pm10": 12.5,
                    "n": sequence,
                    "TimeInstant": stamp,
                }
                mqtt.publish(
                    f"/json/{key}/dev-{device:04d}/attrs", orjson.dumps(payload), wait=False
                )
                if time.monotonic() > next_poll:
                    next_poll = time.monotonic() + 1.0
            mqtt.flush()
        published = time.monotonic() - started
        deadline = time.monotonic() + 600
        while not poll(ports["api"], devices, last, samples):
            if time.monotonic() > deadline:
                raise SystemExit("not every message arrived within 600 s")
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        store_end, stack_end = meter.read()
    samples.sort()
    return {
        "messages": count,
        "publish_s": published,
        "end_to_end_s": elapsed,
        "messages_per_s": count / elapsed,
        "latency_p50_ms": statistics.median(samples) if samples else float("nan"),
        "latency_p99_ms": samples[int(len(samples) * 0.99)] if samples else float("nan"),
        "store_cpu_ms_per_message": (store_end - store_cpu) * 1000 / count,
        "stack_cpu_ms_per_message": (stack_end - stack_cpu) * 1000 / count,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--rate", type=float, help="publish at this many messages/s")
    parser.add_argument("--seconds", type=float, default=20.0, help="for this long (with --rate)")
    args = parser.parse_args(argv)
    count = round(args.rate * args.seconds) if args.rate else args.messages
    result = run(count, args.devices, args.rate)
    pace = f"at {args.rate:g}/s" if args.rate else "at full speed"
    print(
        f"{result['messages']} messages {pace}, {args.devices} devices, 2 tenants: "
        f"{result['messages_per_s']:.0f} messages/s end to end "
        f"({result['end_to_end_s']:.1f} s; publishing took {result['publish_s']:.1f} s); "
        f"latency p50 {result['latency_p50_ms']:.0f} ms, p99 {result['latency_p99_ms']:.0f} ms; "
        f"store CPU {result['store_cpu_ms_per_message']:.3f} ms/message, "
        f"whole stack {result['stack_cpu_ms_per_message']:.3f} ms/message"
    )


if __name__ == "__main__":
    main()
