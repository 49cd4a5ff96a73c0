"""Flat JSON with a declared mapping: `flat/<group>/<device_id>`, nested keys joined by dots."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from sensor_ingest._messages import DeviceKey, InboundMessage, Reading, Rejection

from ._json import invalid_json, kind, unsupported_topic

TOPIC_FILTERS = ("flat/+/+",)
TOPIC_SHAPES = ("flat/<group>/<device_id>",)

_HINT = 'send one JSON object of measures, e.g. {"temperature": 21.4, "air": {"pm10": 23}}'


def accepts(topic: str) -> bool:
    """Whether `topic` is a flat-JSON topic."""
    return _parse_topic(topic) is not None


def decode(message: InboundMessage) -> list[Reading] | Rejection:
    """One JSON object -> one Reading; `{"a": {"b": 1}}` is measured as `{"a.b": 1}`."""
    parsed = _parse_topic(message.topic)
    if parsed is None:
        return unsupported_topic(message.topic, "a flat-JSON topic", TOPIC_SHAPES)
    try:
        document = orjson.loads(message.payload.decode())
    except UnicodeDecodeError as exc:
        return _undecodable(f"a non-UTF-8 byte at {exc.start}", "$")
    except orjson.JSONDecodeError as exc:
        return _undecodable(invalid_json(exc), "$")
    if not isinstance(document, dict):
        return _undecodable(kind(document), "$")
    measures: dict[str, Any] = {}
    for name, value in _leaves(document):
        if name in measures:
            return _undecodable(f"{name!r} twice once nested keys are joined by dots", "$")
        measures[name] = value
    if not measures:
        return _undecodable("an empty object" if not document else "only empty objects", "$")
    return [Reading("flat-json", DeviceKey(*parsed), measures)]


def _leaves(document: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(dotted name, value) of every non-object value, in document order, without recursion."""
    stack = [("", iter(document.items()))]
    while stack:
        prefix, items = stack[-1]
        for key, value in items:
            if isinstance(value, dict):
                stack.append((f"{prefix}{key}.", iter(value.items())))
                break
            yield f"{prefix}{key}", value
        else:
            stack.pop()


def _parse_topic(topic: str) -> tuple[str, str] | None:
    parts = topic.split("/")
    if len(parts) != 3 or parts[0] != "flat" or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def _undecodable(found: str, path: str) -> Rejection:
    message = f"expected a JSON object of measures, found {found}"
    return Rejection("undecodable", message, path, _HINT)
