"""Run every `bench/bench_*.py` module's `main()` in turn, each in its own process, bounded.

`python -m bench [NAME ...]` runs the named ones only (`bench_entities` or `entities`);
CONTESTO_BENCH_TIMEOUT_S bounds each (default 600 s), unless the module states its own
bound, a number literal `BENCH_TIMEOUT_S = <seconds>` (the hour-long soak does). What each
prints is also stored in bench/results/NAME.txt after its command, machine and date
(docs/benchmarks.md cites them).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench._results import RESULTS_DIR, provenance

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


def _own_timeout(name: str) -> float | None:
    """The module's `BENCH_TIMEOUT_S = <seconds>`, read without importing it."""
    source = (Path(__file__).parent / f"{name}.py").read_text(encoding="utf-8")
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and [
            getattr(target, "id", None) for target in node.targets
        ] == ["BENCH_TIMEOUT_S"]:
            return float(ast.literal_eval(node.value))
    return None


def _run_printing(name: str, root: str, timeout_s: float) -> tuple[int, list[str]]:
    """Run `bench.<name>`, echoing its output as it comes and keeping it."""
    output: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-u", "-c", _RUN_ONE, f"bench.{name}"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        # A bench that hangs silently must be stopped too, not only one that prints.
        killer = threading.Timer(timeout_s, child.kill)
        killer.start()
        try:
            assert child.stdout is not None
            for line in child.stdout:
                print(line, end="", flush=True)
                output.append(line)
            returncode = child.wait()
        finally:
            killer.cancel()
        if killer.finished.is_set() and returncode < 0:
            raise subprocess.TimeoutExpired(name, timeout_s)
        return returncode, output


def _store_output(name: str, output: list[str]) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    header = [f"{key}: {value}\n" for key, value in provenance(name, []).items()]
    (RESULTS_DIR / f"{name}.txt").write_text("".join([*header, "\n", *output]), encoding="utf-8")


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
            bound = _own_timeout(name) or timeout_s
            returncode, output = _run_printing(name, root, bound)
        except subprocess.TimeoutExpired:
            print(f"!! {name}: stopped after {bound:g} s", flush=True)
            failed.append(name)
            continue
        elapsed = time.monotonic() - started
        if returncode != 0:
            print(f"!! {name}: exit code {returncode} after {elapsed:.1f} s", flush=True)
            failed.append(name)
        else:
            _store_output(name, output)
            print(f"== {name}: done in {elapsed:.1f} s", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
