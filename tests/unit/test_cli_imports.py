"""The `contesto` command starts fast: building its command tree, and every --help, imports
none of the libraries its commands work with (the broker's web framework, the store
driver, geometry, columnar files), which cost seconds of CPU on every call; each command
imports them when it runs. The values its help writes out stay those of their owners."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import get_args

import typer

from conformance_tests._broker_runner import GROUPS
from contesto._backup import DEFAULT_TENANT
from contesto._cli import app
from contesto._cli_backup import DEFAULT_TENANT as HELP_DEFAULT_TENANT
from contesto._cli_conformance_broker import GROUP_NAMES
from contesto._cli_devices import FORMAT_NAMES
from contesto._cli_tenants import ApiValidationMode
from contesto._settings import StackSettings
from regional_tenants import ApiValidation
from sensor_ingest import DEFAULT_MAX_MESSAGE_BYTES
from sensor_ingest._provisioning import FORMATS

HEAVY = ("fastapi", "pymongo", "shapely", "pyarrow", "httpx", "uvicorn", "context_broker")

# Runs ARGS through the console script's entry point, then prints the heavy modules loaded.
_PROBE = """
import json, sys
from contesto._cli import main
invocations, heavy = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for args in invocations:
    sys.argv = ["contesto", *args]
    try:
        main()
    except SystemExit:
        pass
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""


def _heavy_after(*invocations: list[str]) -> tuple[list[str], str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(invocations), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    *output, loaded = done.stdout.strip().splitlines()
    return json.loads(loaded), "\n".join(output)


def _command_paths() -> list[list[str]]:
    """Every command and group of the tree, as the words that name it."""
    paths: list[list[str]] = []

    def walk(command: object, words: list[str]) -> None:
        paths.append(words)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*words, name])

    walk(typer.main.get_command(app), [])
    return paths


def test_contesto_help_lists_every_command_without_importing_the_stack() -> None:
    heavy, output = _heavy_after(["--help"])
    assert heavy == []
    top = [path[0] for path in _command_paths() if len(path) == 1]
    assert len(top) >= 12
    for name in top:
        assert f"\n  {name} " in output, (name, output)


def test_every_help_of_the_command_tree_imports_none_of_the_stack() -> None:
    paths = _command_paths()
    heavy, output = _heavy_after(*[[*path, "--help"] for path in paths])
    assert heavy == []
    assert output.count("Usage: contesto") == len(paths)


def test_the_values_the_help_writes_out_are_those_of_their_owners() -> None:
    assert FORMAT_NAMES == FORMATS
    assert GROUP_NAMES == GROUPS
    assert HELP_DEFAULT_TENANT == DEFAULT_TENANT
    assert get_args(ApiValidationMode) == get_args(ApiValidation)
    default = StackSettings.model_fields["ingest_max_message_bytes"].default
    assert default == DEFAULT_MAX_MESSAGE_BYTES
