"""Rich tables of the CLI whose key columns (ids, names) are never cut: the user copies
them into the next command, so they keep every character at any terminal width."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

__all__ = ["add_whole_column"]


def add_whole_column(table: Table, header: str, values: Sequence[str]) -> None:
    """Add a column as wide as its longest value, on one line: the other columns give way."""
    width = max((len(value) for value in values), default=0)
    table.add_column(header, no_wrap=True, overflow="fold", min_width=max(width, len(header)))
