"""`contesto backup` and `contesto restore` of one tenant on the embedded store: time, peak
memory and archive size at growing sizes, to show memory stays flat (both stream).

For each size a tenant of N entities (about 1 KB each, varied text) is written into a fresh
embedded store, backed up and restored under another name by the `contesto` command in its
own process; its peak RSS comes from getrusage of that child. A last run measures how fast
the embedded store drops a tenant's database, which `restore --replace` does first.
Results go to bench/results/backup.json.

    .venv/bin/python -m bench.bench_backup [--sizes 2000 20000 60000] [--drop 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from contesto import EmbeddedStore

RESULTS = Path(__file__).parent / "results" / "backup.json"
CONTESTO = Path(sys.executable).with_name("contesto")


def _entities(count: int) -> list[dict[str, Any]]:
    return [
        {
            "_id": f"urn:ngsi-ld:Sensor:{i}",
            "type": ["Sensor"],
            "attrs": {"note": {"value": secrets.token_hex(400)}, "n": {"value": i}},
        }
        for i in range(count)
    ]


# The peak RSS of a process survives exec: forked from this process, which holds the
# entities it wrote, the child would report this process's size. A small launcher forks it.
_LAUNCH = (
    "import os, sys\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.execv(sys.argv[1], sys.argv[1:])\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)\n"
)


def _timed(args: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Seconds and peak RSS (KB on Linux) of one `contesto` command in its own process."""
    started = time.perf_counter()
    launched = subprocess.run(
        [sys.executable, "-c", _LAUNCH, str(CONTESTO), *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    status, peak_kb = map(int, launched.stdout.split()[-2:])
    if status != 0:
        raise SystemExit(f"contesto {' '.join(args)} failed: {launched.stderr}")
    return time.perf_counter() - started, peak_kb


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000, 60000])
    parser.add_argument("--drop", type=int, default=20000, help="entities of the drop run")
    options = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        store = EmbeddedStore(Path(scratch) / "db", log_path=Path(scratch) / "secantus.log")
        store.start()
        try:
            client: MongoClient[dict[str, Any]] = MongoClient(store.url)
            for size in options.sizes:
                prefix = f"b{secrets.token_hex(3)}"
                entities = _entities(size)
                for start in range(0, size, 5000):
                    client[f"{prefix}_lab"]["entities"].insert_many(entities[start : start + 5000])
                client[f"{prefix}__platform"]["tenants"].insert_one({"_id": "lab"})
                env = {**os.environ, "CONTESTO_MONGO_URL": store.url}
                env["CONTESTO_DATABASE_PREFIX"] = prefix
                archive = Path(scratch) / f"{prefix}.zip"
                backup_s, backup_kb = _timed(
                    ["backup", "--tenant", "lab", "--out", str(archive)], env
                )
                restore_s, restore_kb = _timed(["restore", str(archive), "--as", "lab2"], env)
                rows.append(
                    {
                        "entities": size,
                        "archive_bytes": archive.stat().st_size,
                        "backup_s": round(backup_s, 2),
                        "backup_peak_rss_mb": round(backup_kb / 1024, 1),
                        "restore_s": round(restore_s, 2),
                        "restore_peak_rss_mb": round(restore_kb / 1024, 1),
                    }
                )
                print(rows[-1], flush=True)
            prefix = f"d{secrets.token_hex(3)}"
            client[f"{prefix}_lab"]["entities"].insert_many(_entities(options.drop))
            started = time.perf_counter()
            client.drop_database(f"{prefix}_lab")
            drop_s = time.perf_counter() - started
            print({"dropped_entities": options.drop, "drop_s": round(drop_s, 2)}, flush=True)
        finally:
            store.stop()
    results = {
        "runs": rows,
        "drop": {"entities": options.drop, "seconds": round(drop_s, 2)},
        "command": "python -m bench.bench_backup " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "date": datetime.now(UTC).date().isoformat(),
        "peak_rss_of": "the contesto process alone (wait4 of a child forked by a launcher)",
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
