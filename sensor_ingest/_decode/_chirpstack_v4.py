"""ChirpStack v4 uplink events: `application/<application_id>/device/<devEUI>/event/up`."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson

from sensor_ingest._messages import DeviceKey, InboundMessage, Reading, Rejection

TOPIC_FILTERS = ("application/+/device/+/event/up",)
TOPIC_SHAPES = ("application/<application_id>/device/<devEUI>/event/up",)

_HINT = "publish events as JSON: set json=true under [integration.mqtt] in chirpstack.toml"
_CODEC_HINT = (
    "set a payload codec (JavaScript decodeUplink) in the device profile "
    "so that up events carry the decoded object"
)
_RFC3339 = re.compile(
    r"(\d{4}-\d\d-\d\d)[Tt ](\d\d:\d\d:\d\d)(\.\d+)?([Zz]|[+-]\d\d:\d\d)", re.ASCII
)
_TIME_HINT = "send RFC 3339 times with an offset, e.g. 2026-11-23T08:15:02.298113402+00:00"
_KINDS = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}


def accepts(topic: str) -> bool:
    """Whether `topic` is a ChirpStack v4 up-event topic."""
    return _parse_topic(topic) is not None


def decode(message: InboundMessage) -> list[Reading] | Rejection:
    """One up event -> one Reading of its codec's `object`, with the device's tags as hints."""
    parsed = _parse_topic(message.topic)
    if parsed is None:
        return Rejection(
            "unsupported-topic",
            f"not a ChirpStack v4 up-event topic: {message.topic!r}",
            hint=f"publish on {TOPIC_SHAPES[0]}",
        )
    application, dev_eui = parsed
    document = _load(message.payload)
    if isinstance(document, Rejection):
        return document
    info = document.get("deviceInfo")
    info = info if isinstance(info, dict) else {}
    sender = info.get("devEui")
    if not isinstance(sender, str) or sender.lower() != dev_eui:
        return _undecodable(
            f"devEui {dev_eui!r} as in the topic",
            _found(sender),
            "$.deviceInfo.devEui",
            "the topic and deviceInfo.devEui must name the same device",
        )
    measures = document.get("object")
    if not isinstance(measures, dict) or not measures:
        found = "no object" if measures is None else _found(measures)
        return _undecodable("an object of measures", found, "$.object", _CODEC_HINT)
    observed_at = _timestamp(document.get("time"), "$.time")
    if isinstance(observed_at, Rejection):
        return observed_at
    tags = info.get("tags")
    hints = {k: v for k, v in tags.items() if isinstance(v, str)} if isinstance(tags, dict) else {}
    key = DeviceKey(application, dev_eui)
    return [Reading("chirpstack-v4", key, measures, observed_at, hints=hints)]


def _parse_topic(topic: str) -> tuple[str, str] | None:
    parts = topic.split("/")
    if len(parts) != 6 or parts[::2] != ["application", "device", "event"] or parts[5] != "up":
        return None
    return (parts[1], parts[3].lower()) if parts[1] and parts[3] else None


def _timestamp(value: object, path: str) -> datetime | Rejection | None:
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
    return _undecodable("an RFC 3339 timestamp", _found(value), path, _TIME_HINT)


def _load(payload: bytes) -> dict[str, Any] | Rejection:
    try:
        document = orjson.loads(payload.decode())
    except UnicodeDecodeError as exc:
        return _undecodable("UTF-8 JSON", f"a non-UTF-8 byte at {exc.start}", "$", _HINT)
    except orjson.JSONDecodeError as exc:
        found = f"invalid JSON at char {exc.pos} ({exc.msg})" if exc.doc else "an empty payload"
        return _undecodable("a JSON object", found, "$", _HINT)
    if not isinstance(document, dict):
        return _undecodable("an up-event object", _found(document), "$", _HINT)
    return document


def _undecodable(expected: str, found: str, path: str, hint: str) -> Rejection:
    return Rejection("undecodable", f"expected {expected}, found {found}", path, hint)


def _found(value: object) -> str:
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:37] + "...")
    if value == {}:
        return "an empty object"
    return _KINDS.get(type(value), "null" if value is None else "a number")
