"""JSON paths in the `$.a.b[0]` notation that reports and dead-letter records use, and
values as their messages quote them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

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


def quoted(value: Any) -> str:
    """A value as messages show it: compact JSON in backticks, cut after 60 characters."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return f"`{text}`" if len(text) <= 60 else f"`{text[:57]}...`"
