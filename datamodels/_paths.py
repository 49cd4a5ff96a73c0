"""JSON paths in the `$.a.b[0]` notation that reports and dead-letter records use."""

from __future__ import annotations

import re
from collections.abc import Iterable

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


def json_path(parts: Iterable[str | int]) -> str:
    out = ["$"]
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _IDENT.match(part):
            out.append(f".{part}")
        else:
            out.append(f"[{part!r}]")
    return "".join(out)


def dotted(parts: Iterable[str | int]) -> str:
    """The short form used inside messages: `temperature.unitCode`, `category[0]`."""
    return json_path(parts)[2:] or "entity"
