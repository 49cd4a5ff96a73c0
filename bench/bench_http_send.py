"""Notification sender harness: POSTs/s and the sender's CPU per POST to one HTTP sink.

`python -m bench.bench_http_send [--posts N] [--in-flight 4,16]`. The sink is a minimal
HTTP/1.1 server answering 204 in a process of its own, so the figure is the sender's, not
the sink's; this process sends N notifications through the broker's `HttpSender` with the
given numbers in flight (after a warm-up of N). Goal: the sender can feed >= 2,000
notifications/s to one endpoint (the fan-out goal of bench/bench_notifications.py) on a
fraction of a core. Results go to bench/results/http_send.json.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in {None, ""}:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bson import ObjectId

from bench._results import write_results
from context_broker._delivery import HttpSender, Queued

RESULTS = Path(__file__).parent / "results" / "http_send.json"
SINK = r"""
import asyncio

async def serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()

async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""
BODY = (
    b'{"id":"urn:ngsi-ld:Notification:0123456789abcdef0123456789abcdef","type":"Notification",'
    b'"subscriptionId":"urn:ngsi-ld:Subscription:bench","notifiedAt":"2026-12-03T12:00:00.000Z",'
    b'"data":[{"id":"urn:ngsi-ld:BenchSensor:000","type":"BenchSensor","seq":1}]}'
)
LINK = (
    "<https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld>; "
    'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
)


def notification(port: int) -> Queued:
    return Queued(
        id=ObjectId(),
        tenant=None,
        subscription_id="urn:ngsi-ld:Subscription:bench",
        endpoint=f"http://127.0.0.1:{port}/notify",
        headers={"Content-Type": "application/json", "Link": LINK},
        body=BODY,
        notifier_info={},
        attempts=0,
        queued_at=datetime.now(UTC),
        claim="bench",
    )


async def measure(port: int, posts: int, in_flight: int) -> dict[str, Any]:
    sender = HttpSender(5.0)
    record = notification(port)
    verdicts: dict[str, int] = {}

    async def send_all() -> None:
        pending = iter(range(posts))

        async def worker() -> None:
            for _ in pending:
                verdict = (await sender.send(record)).verdict
                verdicts[verdict] = verdicts.get(verdict, 0) + 1

        await asyncio.gather(*(worker() for _ in range(in_flight)))

    try:
        await send_all()  # warm-up: connections open
        verdicts.clear()
        cpu, started = time.process_time(), time.perf_counter()
        await send_all()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await sender.aclose()
    return {
        "in_flight": in_flight,
        "posts_per_s": round(posts / wall),
        "sender_cpu_us_per_post": round(cpu / posts * 1e6),
        "verdicts": verdicts,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--posts", type=int, default=4000, help="POSTs per measurement")
    parser.add_argument(
        "--in-flight",
        default="4,16",
        type=lambda text: [int(n) for n in text.split(",")],
        help="numbers of POSTs in flight (comma list)",
    )
    args = parser.parse_args(argv)
    sink = subprocess.Popen([sys.executable, "-c", SINK], stdout=subprocess.PIPE)
    try:
        assert sink.stdout is not None
        port = int(sink.stdout.readline())
        rows = []
        for in_flight in args.in_flight:
            row = asyncio.run(measure(port, args.posts, in_flight))
            print(row, flush=True)
            rows.append(row)
    finally:
        sink.kill()
        sink.wait(10)
    write_results(RESULTS, "bench_http_send", {"runs": rows})
    best = max(row["posts_per_s"] for row in rows)
    print(f"goal: {best} POST/s to one sink (>= 2,000)")


if __name__ == "__main__":
    main()
