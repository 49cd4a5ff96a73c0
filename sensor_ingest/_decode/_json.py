"""What the JSON decoders share: turning a topic away, loading a payload, describing a bad
value, RFC 3339 times."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from sensor_ingest._messages import Rejection

_RFC3339 = re.compile(
    r"(\d{4}-\d\d-\d\d)[Tt ](\d\d:\d\d:\d\d)(\.\d+)?([Zz]|[+-]\d\d:\d\d)", re.ASCII
)
_KINDS = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}


def unsupported_topic(topic: str, what: str, shapes: Sequence[str]) -> Rejection:
    """Why a decoder turns `topic` away: it is not `what`; publish on one of `shapes`."""
    hint = "publish on " + " or ".join(shapes)
    return Rejection("unsupported-topic", f"not {what}: {topic!r}", hint=hint)


def load_object(payload: bytes, expected: str, hint: str) -> dict[str, Any] | Rejection:
    """The JSON object in `payload`, or why it is not `expected` (what the object is)."""
    try:
        document = orjson.loads(payload.decode())
    except UnicodeDecodeError as exc:
        return undecodable("UTF-8 JSON", f"a non-UTF-8 byte at {exc.start}", "$", hint)
    except orjson.JSONDecodeError as exc:
        return undecodable("a JSON object", invalid_json(exc), "$", hint)
    if not isinstance(document, dict):
        return undecodable(expected, describe(document), "$", hint)
    return document


def timestamp(value: object, path: str, hint: str) -> datetime | Rejection | None:
    """An RFC 3339 time in UTC, if any; fractions finer than microseconds are truncated."""
    if value is None:
        return None
    match = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if match is not None:
        date, time, fraction, offset = match.groups()
        offset = "+00:00" if offset in ("Z", "z") else offset
        try:
            parsed = datetime.fromisoformat(f"{date}T{time}{(fraction or '')[:7]}{offset}")
        except ValueError:
            pass
        else:
            return parsed.astimezone(UTC)
    return undecodable("an RFC 3339 timestamp", describe(value), path, hint)


def undecodable(expected: str, found: str, path: str, hint: str) -> Rejection:
    return Rejection("undecodable", f"expected {expected}, found {found}", path, hint)


def invalid_json(exc: orjson.JSONDecodeError) -> str:
    """What was found where JSON was expected: an empty payload or where it went wrong."""
    return "an empty payload" if not exc.doc else f"invalid JSON at char {exc.pos} ({exc.msg})"


def describe(value: object) -> str:
    """A short description of a bad value: a short string itself, else its kind."""
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:37] + "...")
    if value == {}:
        return "an empty object"
    return kind(value)


def kind(value: object) -> str:
    """The JSON kind of `value`: "an object", "a number", "null", ..."""
    return _KINDS.get(type(value), "null" if value is None else "a number")
