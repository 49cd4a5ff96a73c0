"""The command blocks of docs/*.md (```sh, ```bash, ```console) and the visible marker an
HTML comment right before a block may give it:

- `<!-- not run: why -->`: the block needs what a test does not have (Docker, a cluster);
- `<!-- eventually: why -->`: the block checks what happens asynchronously, and is retried;
- `<!-- exits N: why -->`: the block ends with exit status N, as the text says;
- `<!-- run by tests/...py: why -->`: another test runs the block, in a setting of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ROOT", "DocBlock", "doc_blocks"]

ROOT = Path(__file__).resolve().parents[1]
_FENCE = re.compile(r"^```(sh|bash|console)\s*$")
_MARKER = re.compile(r"^<!-- (not run|eventually|exits \d+|run by \S+): (\S.*?) -->$")


@dataclass(frozen=True, slots=True)
class DocBlock:
    page: str
    line: int
    script: str
    marker: str | None = None
    reason: str = ""

    @property
    def runs(self) -> bool:
        """Whether this test runs it."""
        return self.marker is None or self.marker == "eventually" or self.exits_marked

    @property
    def exits_marked(self) -> bool:
        return self.marker is not None and self.marker.startswith("exits ")

    @property
    def run_by(self) -> str | None:
        """The test file that runs the block instead, if one does."""
        if self.marker is not None and self.marker.startswith("run by "):
            return self.marker.removeprefix("run by ")
        return None

    @property
    def eventually(self) -> bool:
        return self.marker == "eventually"

    @property
    def exit_status(self) -> int:
        if self.marker is not None and self.exits_marked:
            return int(self.marker.split()[1])
        return 0

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def doc_blocks(page: Path) -> list[DocBlock]:
    """The command blocks of one page, in order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    name = page.relative_to(ROOT).as_posix()
    blocks: list[DocBlock] = []
    index = 0
    while index < len(lines):
        if not _FENCE.match(lines[index]):
            index += 1
            continue
        end = lines.index("```", index + 1)
        marker = _MARKER.match(lines[index - 1]) if index > 0 else None
        blocks.append(
            DocBlock(
                page=name,
                line=index + 2,
                script="\n".join(lines[index + 1 : end]) + "\n",
                marker=marker.group(1) if marker else None,
                reason=marker.group(2) if marker else "",
            )
        )
        index = end + 1
    return blocks
