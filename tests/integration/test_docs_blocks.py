"""Every command block of docs/*.md runs, as a reader types it, against a real `contesto up`
on free ports; the blocks a test cannot run say why in the page and are counted here.

The README's blocks have tests of their own: test_readme.py (walk-through),
ingest/test_end_to_end.py (from a sensor to an entity), ingest/test_notifications_walkthrough.py
(be told of changes).

docs/regional.md runs against a second stack, in the regional profile its first block sets;
its later blocks get what it exports and, under the names the page uses, the keys its
commands print, as a reader's shell would hold them."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pymongo
import pytest
from _doc_blocks import ROOT, DocBlock, doc_blocks
from _stack_up import Up, free_port
from rich.console import Console
from typer.testing import CliRunner

from contesto import _cli_ingest
from contesto._cli_ingest import dead_letter_app
from contesto._runtime_file import read_runtime

pytestmark = pytest.mark.integration

PAGES = sorted((ROOT / "docs").glob("*.md"))
# A block runs several `contesto` commands of about a second of CPU each; on a loaded
# machine, several times that.
BLOCK_TIMEOUT_S = 120
EVENTUALLY_S = 15.0
PAGES_AT_ONCE = 3
# The blocks that need what a test has not, by page; a new one must be counted here.
NOT_RUN = {"docs/operations.md": 4}
REGIONAL_PAGE = "docs/regional.md"
THIS_TEST = "tests/integration/test_docs_blocks.py"
# curl that fails on an HTTP error, as a reader would notice one.
PRELUDE = 'set -euo pipefail\ncurl() { command curl --fail-with-body --show-error "$@"; }\n'
# Variables the blocks define are carried to the page's next blocks, as in one terminal.
SAVE_STATE = (
    "\ncomm -13 <(printf '%s\\n' \"$__before\") <(compgen -v | sort)"
    " | { grep -Ev '^(__|BASH|PIPESTATUS$|_$)' || true; }"
    ' | while read -r __name; do declare -p "$__name"; done >> "$__state"\n'
)


def all_blocks() -> list[DocBlock]:
    return [block for page in PAGES for block in doc_blocks(page)]


def pages_that_run() -> list[str]:
    return sorted({block.page for block in all_blocks() if block.runs})


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """One stack for every page; its directory is the readers' working directory."""
    running = Up(tmp_path_factory.mktemp("docs"), free_port())
    try:
        (running.data_dir.parent / "tests").symlink_to(ROOT / "tests")
        running.wait_until_up()
        yield running
    finally:
        running.close()


def regional_settings() -> dict[str, str]:
    """The settings the regional page's first block exports before its `contesto up`."""
    first = doc_blocks(ROOT / REGIONAL_PAGE)[0]
    assert first.run_by == THIS_TEST and "contesto up" in first.script, first
    settings: dict[str, str] = {}
    for line in first.script.splitlines():
        if not line.startswith("export "):
            continue
        for assignment in shlex.split(line.removeprefix("export ")):
            name, _, value = assignment.partition("=")
            settings[name] = value
    assert settings.get("CONTESTO_AUTH_REQUIRED") == "true", settings
    return settings


@pytest.fixture(scope="module")
def regional_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """A second stack, in the regional profile, for its page; started without waiting, so that
    it comes up while the first one does."""
    running = Up(tmp_path_factory.mktemp("regional"), free_port(), env=regional_settings())
    try:
        yield running
    finally:
        running.close()


_PRINTED_KEY = re.compile(r"^(\S+) key for (\S+) \(shown once; store it now\):\n  (\S+)$", re.M)


def printed_keys(output: str) -> dict[str, str]:
    """The keys a command printed, by the names the pages give them: REGION_KEY for a
    region-admin key, <TENANT>_<ROLE>_KEY for the others (PRATO_WRITER_KEY)."""
    keys = {}
    for role, tenant, key in _PRINTED_KEY.findall(output):
        name = "REGION_KEY" if role == "region-admin" else f"{tenant}_{role}_KEY"
        keys[name.upper().replace("-", "_")] = key
    return keys


def _newest_dead_letter_of_pisa(stack: Up) -> str | None:
    store_url = read_runtime(stack.data_dir).store_url
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        store_url, serverSelectionTimeoutMS=5000
    )
    with client:
        letter = client["contesto_ingest"]["dead_letters"].find_one(
            {"tenant": "pisa"}, sort=[("_id", -1)]
        )
    return None if letter is None else str(letter["_id"])


# Values the pages leave to the reader to copy from an earlier output.
READER_VALUES: dict[str, Callable[[Up], str | None]] = {
    "DEAD_LETTER_ID": _newest_dead_letter_of_pisa,
}


def _as_run_on(stack: Up, block: DocBlock) -> str:
    """The block with the stack's free ports for the defaults a reader's stack listens on,
    and the test's directory for a system one (/etc)."""
    api = f"http://127.0.0.1:{stack.port}"
    script = (
        block.script.replace("http://127.0.0.1:1026", api)
        .replace("http://127.0.0.1:4041", f"http://127.0.0.1:{stack.provisioning_port}")
        .replace("-p 1883", f"-p {stack.mqtt_port}")
        .replace(" /etc/", " etc/")
    )
    for default in ("1026", "4041", "1883"):
        assert default not in script, f"{block} names port {default} the test cannot move"
    assert "/etc/" not in script, f"{block} writes in /etc, which the test moves to its directory"
    return script


def _environment(stack: Up) -> dict[str, str]:
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("CONTESTO_")
    }
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment['PATH']}"
    environment["COLUMNS"] = "80"
    return environment


def _run_once(
    stack: Up, block: DocBlock, state: Path, exported: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    environment = _environment(stack) | exported
    for name, value_of in READER_VALUES.items():
        if f"${name}" in block.script or f"${{{name}}}" in block.script:
            environment[name] = value_of(stack) or ""
    script = (
        PRELUDE
        + f'__state={state}\n[ -f "$__state" ] && source "$__state"\n'
        + "__before=$(compgen -v | sort)\n"
        + _as_run_on(stack, block)
        + SAVE_STATE
    )
    try:
        return subprocess.run(
            ["bash", "-c", script],
            cwd=stack.data_dir.parent,
            env=environment,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as timeout:
        # The page's failure, with what the block said before it hung.
        return subprocess.CompletedProcess(
            timeout.cmd, -9, _text(timeout.stdout), _text(timeout.stderr) + "\n(timed out)"
        )


def _text(output: bytes | str | None) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def _run(
    stack: Up, block: DocBlock, state: Path, exported: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    deadline = time.monotonic() + EVENTUALLY_S
    while True:
        result = _run_once(stack, block, state, exported)
        if result.returncode == block.exit_status or not block.eventually:
            return result
        if time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def test_the_pages_have_command_blocks_and_each_block_not_run_says_why() -> None:
    blocks = all_blocks()
    elsewhere = [block for block in blocks if block.run_by is not None]
    print("\n".join(f"run by {block.run_by}: {block}" for block in elsewhere))
    assert all((ROOT / str(block.run_by)).is_file() for block in elsewhere)
    assert all(
        block.page in (ROOT / str(block.run_by)).read_text(encoding="utf-8") for block in elsewhere
    )
    not_run = [block for block in blocks if block.marker == "not run"]
    print("\n".join(f"not run: {block} ({block.reason})" for block in not_run))
    counted: dict[str, int] = {}
    for block in not_run:
        counted[block.page] = counted.get(block.page, 0) + 1
    assert counted == NOT_RUN
    assert all(block.reason for block in not_run)
    assert len([block for block in blocks if block.runs]) >= 14
    assert {"docs/broker.md", "docs/ingest.md", "docs/operations.md", REGIONAL_PAGE} <= set(
        pages_that_run()
    )


def _failure_of_page(stack: Up, page: str, state: Path) -> str | None:
    """Its blocks in order, as in one terminal: what went wrong, None if nothing did."""
    stack.wait_until_up()
    exported = regional_settings() if page == REGIONAL_PAGE else {}
    for block in doc_blocks(ROOT / page):
        if not block.runs:
            continue
        result = _run(stack, block, state, exported)
        exported |= printed_keys(result.stdout)
        if result.returncode != block.exit_status:
            return (
                f"{block} exited {result.returncode}, the page says {block.exit_status}:\n"
                f"{block.script}\n--- stdout\n{result.stdout[-3000:]}\n--- stderr\n"
                f"{result.stderr[-3000:]}"
            )
    return None


@pytest.fixture(scope="module")
def failures(
    regional_stack: Up, stack: Up, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str | None]:
    """The pages side by side (they use tenants of their own), each page's blocks in order:
    most of the time goes into starting `contesto` commands, CPU-bound, so no more pages at
    once than keep the cores busy, the longest first."""
    pages = sorted(pages_that_run(), key=lambda page: page != REGIONAL_PAGE)
    with ThreadPoolExecutor(max_workers=PAGES_AT_ONCE) as pool:
        running = {
            page: pool.submit(
                _failure_of_page,
                regional_stack if page == REGIONAL_PAGE else stack,
                page,
                tmp_path_factory.mktemp("page") / "variables.sh",
            )
            for page in pages
        }
        return {page: future.result() for page, future in running.items()}


@pytest.mark.parametrize("page", pages_that_run())
def test_every_command_block_of_the_page_runs(failures: dict[str, str | None], page: str) -> None:
    assert failures[page] is None, failures[page]


def test_dead_letter_ids_are_printed_whole_at_80_columns(
    stack: Up, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dead letter's id is what `contesto dead-letter show` takes: never cut."""
    topic = "/json/no-such-key/dev-1/attrs"
    subprocess.run(
        ["mosquitto_pub", "-p", str(stack.mqtt_port), "-q", "1", "-t", topic, "-m", "{}"],
        check=True,
        timeout=10,
    )
    store_url = read_runtime(stack.data_dir).store_url
    deadline = time.monotonic() + EVENTUALLY_S
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        store_url, serverSelectionTimeoutMS=5000
    )
    with client:
        letters = client["contesto_ingest"]["dead_letters"]
        while letters.count_documents({"topic": topic}) == 0:
            assert time.monotonic() < deadline, "the message never became a dead letter"
            time.sleep(0.2)
        ids = [str(letter["_id"]) for letter in letters.find({}, {"_id": 1})]
    # In this process, as the command's own would be on an 80-column terminal.
    monkeypatch.setattr(_cli_ingest, "_console", Console(width=80))
    result = CliRunner().invoke(
        dead_letter_app, ["list", "--limit", "100", "--store-url", store_url]
    )
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
    assert len(ids) >= 2 and all(letter_id in result.output for letter_id in ids), result.output
