"""Where a bench run came from, stored with its figures in bench/results/.

Every results file carries `command` (how to run it again), `machine` (architecture,
cores, Python, load average at the end) and `date` (UTC), so that docs/benchmarks.md can
cite it and a reader can judge it.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def provenance(module: str, argv: list[str] | None = None) -> dict[str, str]:
    """The command, machine summary and date of this run of `bench.<module>`."""
    arguments = sys.argv[1:] if argv is None else argv
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return {
        "command": " ".join([f"python -m bench.{module}", *arguments]),
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"load average {load}"
        ),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_results(
    path: Path, module: str, figures: dict[str, Any], argv: list[str] | None = None
) -> None:
    """Store `figures` at `path` after the run's provenance."""
    path.parent.mkdir(parents=True, exist_ok=True)
    report = {**provenance(module, argv), **figures}
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
