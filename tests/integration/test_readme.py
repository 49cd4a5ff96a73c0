"""The README's curl walk-through, run against a live broker: each answer must match."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
README_BASE = "http://127.0.0.1:1026"


@dataclass(frozen=True)
class Step:
    command: str
    status_line: str
    body: object | None


def walkthrough_steps() -> list[Step]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Walk-through", 1)[1].split("\n## ", 1)[0]
    steps: list[Step] = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL):
        command: list[str] = []
        expected: list[str] = []
        for line in [*block.splitlines(), "curl"]:
            if line.startswith("curl") and command:
                status, *body = expected
                body_text = " ".join(body).strip()
                steps.append(
                    Step("\n".join(command), status, json.loads(body_text) if body_text else None)
                )
                command, expected = [], []
            if line.startswith("# "):
                expected.append(line[2:])
            elif line.strip():
                command.append(line)
    return steps


def test_the_walkthrough_has_the_steps_a_user_follows() -> None:
    commands = [step.command for step in walkthrough_steps()]
    assert len(commands) == 8
    assert sum("NGSILD-Tenant: prato" in command for command in commands) >= 2


def test_every_walkthrough_step_answers_as_the_readme_says(broker_url: str) -> None:
    for step in walkthrough_steps():
        command = step.command.replace(README_BASE, broker_url)
        result = subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, timeout=30, check=False
        )
        assert result.returncode == 0, f"{step.command}\n{result.stderr}"
        head, _, body = result.stdout.replace("\r\n", "\n").partition("\n\n")
        assert head.splitlines()[0].strip() == step.status_line, step.command
        if step.body is not None:
            assert json.loads(body) == step.body, step.command
