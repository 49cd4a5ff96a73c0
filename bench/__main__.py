"""Run every `bench/bench_*.py` module's `main()` in turn, each in its own process, bounded.

`python -m bench [NAME ...]` runs the named ones only (`bench_entities` or `entities`);
CONTESTO_BENCH_TIMEOUT_S bounds each (default 600 s).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

_RUN_ONE = (
    "import asyncio, importlib, inspect, sys\n"
    "module, sys.argv = sys.argv[1], sys.argv[:1]\n"
    "result = importlib.import_module(module).main()\n"
    "if inspect.isawaitable(result):\n"
    "    asyncio.run(result)\n"
)


def _modules(wanted: list[str]) -> list[str]:
    names = sorted(path.stem for path in Path(__file__).parent.glob("bench_*.py"))
    if not wanted:
        return names
    chosen = [name if name.startswith("bench_") else f"bench_{name}" for name in wanted]
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        raise SystemExit(f"no such benchmark: {', '.join(unknown)} (have: {', '.join(names)})")
    return chosen


def main(argv: list[str]) -> int:
    timeout_s = float(os.environ.get("CONTESTO_BENCH_TIMEOUT_S", "600"))
    modules = _modules(argv)
    if not modules:
        print("no benchmarks in bench/ yet")
        return 0
    root = str(Path(__file__).resolve().parent.parent)
    failed: list[str] = []
    for name in modules:
        print(f"== {name}", flush=True)
        started = time.monotonic()
        try:
            completed = subprocess.run(
                [sys.executable, "-c", _RUN_ONE, f"bench.{name}"],
                cwd=root,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            print(f"!! {name}: stopped after {timeout_s:g} s", flush=True)
            failed.append(name)
            continue
        elapsed = time.monotonic() - started
        if completed.returncode != 0:
            print(f"!! {name}: exit code {completed.returncode} after {elapsed:.1f} s", flush=True)
            failed.append(name)
        else:
            print(f"== {name}: done in {elapsed:.1f} s", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
