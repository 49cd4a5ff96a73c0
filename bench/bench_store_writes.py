"""The cost of journaled writes on the embedded store, side by side with the unjournaled ones.

For each durability setting a fresh embedded store is started and the same writes go over
the wire with PyMongo: N single inserts (one round trip and one commit each, as a lone
POST /entities) and N bulk writes of 100 upserts (one commit for 100 entities, as
ingest's outbox and the bridge's batch upserts). Reported: writes/s and the store's CPU time
per document (from /proc). Settings:
- unjournaled: neither the store's --sync-on-commit nor the client's j (the opt-in
  CONTESTO_STORE_UNJOURNALED_WRITES_RISK_LOSS);
- client j: the write concern {w: majority, j: true} only;
- sync-on-commit: the store's flag only;
- both: the default of `contesto up`.

    .venv/bin/python -m bench.bench_store_writes [--writes 300] [--bulk 100]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from pymongo import MongoClient, UpdateOne

from bench.bench_broker import cpu_seconds
from contesto import EmbeddedStore
from store_edge import write_concern

SETTINGS = {
    "unjournaled": (False, False),
    "client j": (False, True),
    "sync-on-commit": (True, False),
    "both (default)": (True, True),
}
BULK_SIZE = 100


def measure(sync_on_commit: bool, client_j: bool, writes: int, bulks: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        store = EmbeddedStore(Path(tmp) / "db", journaled=sync_on_commit)
        with store:
            assert store.pid is not None
            options = write_concern(store.url, journaled=client_j)
            client: MongoClient[dict[str, object]] = MongoClient(store.url, **options)
            with client:
                singles = client.bench.singles
                singles.insert_one({"_id": "warm-up"})
                cpu, started = cpu_seconds(store.pid), time.perf_counter()
                for n in range(writes):
                    singles.insert_one({"_id": n, "type": "Sensor", "temperature": 20.5})
                single_s, single_cpu = time.perf_counter() - started, cpu_seconds(store.pid) - cpu
                upserts = client.bench.upserts
                cpu, started = cpu_seconds(store.pid), time.perf_counter()
                for b in range(bulks):
                    upserts.bulk_write(
                        [
                            UpdateOne(
                                {"_id": (b * BULK_SIZE + i) % 1000},
                                {"$set": {"type": "Sensor", "temperature": b}},
                                upsert=True,
                            )
                            for i in range(BULK_SIZE)
                        ],
                        ordered=False,
                    )
                bulk_s, bulk_cpu = time.perf_counter() - started, cpu_seconds(store.pid) - cpu
    documents = bulks * BULK_SIZE
    return {
        "single_per_s": writes / single_s,
        "single_cpu_ms": single_cpu * 1000 / writes,
        "bulk_docs_per_s": documents / bulk_s,
        "bulk_cpu_ms": bulk_cpu * 1000 / documents,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=300, help="single inserts per setting")
    parser.add_argument("--bulk", type=int, default=100, help="bulk writes of 100 upserts")
    args = parser.parse_args(argv)
    print(
        "| setting | single inserts/s | store CPU ms/insert | bulk-upserted docs/s "
        "| store CPU ms/doc (bulk) |"
    )
    print("|---|---:|---:|---:|---:|")
    for name, (sync_on_commit, client_j) in SETTINGS.items():
        result = measure(sync_on_commit, client_j, args.writes, args.bulk)
        print(
            f"| {name} | {result['single_per_s']:.0f} | {result['single_cpu_ms']:.2f} "
            f"| {result['bulk_docs_per_s']:.0f} | {result['bulk_cpu_ms']:.3f} |"
        )


if __name__ == "__main__":
    main()
