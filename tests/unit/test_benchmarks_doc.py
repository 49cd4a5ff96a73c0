"""docs/benchmarks.md cites files that exist; each stored bench result says where it came from."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "benchmarks.md"
RESULTS = ROOT / "bench" / "results"
PROVENANCE = ("command", "machine", "date")


def _table_rows() -> list[str]:
    section = DOC.read_text(encoding="utf-8").split("## Where the figures come from", 1)[1]
    return [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]


def _cited_paths() -> set[str]:
    cited: set[str] = set()
    for row in _table_rows()[1:]:
        cited.update(re.findall(r"`((?:bench|tests|\.ci)/[^`\s]+)`", row))
    return cited


def _provenance(path: Path) -> dict[str, str]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        report = json.loads(text)
        return {key: str(report.get(key, "")) for key in PROVENANCE}
    header = dict(line.split(": ", 1) for line in text.split("\n\n", 1)[0].splitlines())
    return {key: header.get(key, "") for key in PROVENANCE}


def test_the_table_cites_benches_and_tests() -> None:
    cited = _cited_paths()
    assert len(_table_rows()) > 20
    assert any(path.startswith("bench/bench_") for path in cited)
    assert any(path.startswith("tests/") for path in cited)


def test_every_file_the_table_cites_exists() -> None:
    missing = sorted(path for path in _cited_paths() if not (ROOT / path).is_file())
    assert missing == []


def test_every_stored_result_says_its_command_machine_and_date() -> None:
    stored = sorted(RESULTS.glob("*.json")) + sorted(RESULTS.glob("*.txt"))
    assert stored
    for path in stored:
        provenance = _provenance(path)
        assert all(provenance.values()), f"{path.name}: {provenance}"
        assert provenance["command"].startswith("python -m bench"), path.name
        assert re.match(r"\d{4}-\d{2}-\d{2}", provenance["date"]), path.name


def test_every_stored_result_the_table_names_is_a_bench_result() -> None:
    named = {path for path in _cited_paths() if path.startswith("bench/results/")}
    assert named
    for path in named:
        assert (ROOT / path).parent == RESULTS
