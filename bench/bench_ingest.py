"""End-to-end ingest: MQTT publish -> entity visible over NGSI-LD, on the whole stack.

`contesto up` runs as in `make run` (embedded store, Mosquitto, ingest process, broker
API) on free ports; 200 devices in 2 tenants publish IoT Agent JSON messages as fast as
paho can. Throughput runs from the first publish to the moment every device's entity
shows its last message. Latency is the broker's `modifiedAt` minus the message's
`TimeInstant` (its publish time), sampled by polling the entities during the run.

    .venv/bin/python -m bench.bench_ingest [--messages 20000] [--devices 200]
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

from contesto._embedded import free_port
from sensor_ingest._mqtt import MqttOptions, MqttPublisher

TENANTS = ("bench-firenze", "bench-prato")
NGSI_LD = "/ngsi-ld/v1"


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


def run(count: int, devices: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp, stack(Path(tmp)) as ports:
        for tenant in TENANTS:
            provision(ports["provisioning"], tenant)
        last = (count - 1) // devices
        samples: list[float] = []
        started = time.monotonic()
        with MqttPublisher(MqttOptions(port=ports["mqtt"])) as mqtt:
            next_poll = started + 1.0
            for key, device, sequence in messages(count, devices):
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
    samples.sort()
    return {
        "messages": count,
        "publish_s": published,
        "end_to_end_s": elapsed,
        "messages_per_s": count / elapsed,
        "latency_p50_ms": statistics.median(samples) if samples else float("nan"),
        "latency_p99_ms": samples[int(len(samples) * 0.99)] if samples else float("nan"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--devices", type=int, default=200)
    args = parser.parse_args(argv)
    result = run(args.messages, args.devices)
    print(
        f"{result['messages']} messages, {args.devices} devices, 2 tenants: "
        f"{result['messages_per_s']:.0f} messages/s end to end "
        f"({result['end_to_end_s']:.1f} s; publishing took {result['publish_s']:.1f} s); "
        f"latency p50 {result['latency_p50_ms']:.0f} ms, p99 {result['latency_p99_ms']:.0f} ms"
    )


if __name__ == "__main__":
    main()
