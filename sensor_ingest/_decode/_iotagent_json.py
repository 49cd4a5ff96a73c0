"""FIWARE IoT Agent JSON measures: `[/json]/<apikey>/<device_id>/attrs[/<attribute>]`."""

from __future__ import annotations

from typing import Any

import orjson

from sensor_ingest._messages import DeviceKey, InboundMessage, Reading, Rejection

from ._json import invalid_json, kind, unsupported_topic

TOPIC_FILTERS = ("/+/+/attrs", "/+/+/attrs/+", "/json/+/+/attrs", "/json/+/+/attrs/+")
TOPIC_SHAPES = ("[/json]/<apikey>/<device_id>/attrs", "[/json]/<apikey>/<device_id>/attrs/<attr>")

_HINT = 'send one JSON object of measures keyed by object_id, e.g. {"t": 21.4}, or an array of them'


def accepts(topic: str) -> bool:
    """Whether `topic` is an IoT Agent JSON measure topic."""
    return _parse_topic(topic) is not None


def decode(message: InboundMessage) -> list[Reading] | Rejection:
    """The measures of one message: one Reading per object, or one for a single attribute."""
    parsed = _parse_topic(message.topic)
    if parsed is None:
        return unsupported_topic(message.topic, "an IoT Agent JSON measure topic", TOPIC_SHAPES)
    apikey, device, attribute = parsed
    key = DeviceKey(apikey, device)
    try:
        text = message.payload.decode()
    except UnicodeDecodeError as exc:
        return Rejection(
            "undecodable", f"expected UTF-8, found a non-UTF-8 byte at {exc.start}", "$", _HINT
        )
    if attribute is not None:
        return _single(key, attribute, text)
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return Rejection("undecodable", f"expected JSON, found {invalid_json(exc)}", "$", _HINT)
    objects = document if isinstance(document, list) else [document]
    if not objects:
        return Rejection("undecodable", "expected measures, found an empty array", "$", _HINT)
    readings = []
    for index, measures in enumerate(objects):
        path = f"$[{index}]" if isinstance(document, list) else "$"
        if not isinstance(measures, dict) or not measures:
            found = "an empty object" if measures == {} else kind(measures)
            return Rejection(
                "undecodable", f"expected an object of measures, found {found}", path, _HINT
            )
        readings.append(Reading("iotagent-json", key, measures))
    return readings


def _single(key: DeviceKey, attribute: str, text: str) -> list[Reading] | Rejection:
    if not text.strip():
        return Rejection(
            "undecodable",
            f"expected a value for {attribute!r}, found an empty payload",
            "$",
            "send the raw value, e.g. 23.4",
        )
    try:
        value: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = text
    return [Reading("iotagent-json", key, {attribute: value}, single_attribute=True)]


def _parse_topic(topic: str) -> tuple[str, str, str | None] | None:
    # `/json/<k>/attrs/attrs` also reads as legacy apikey "json", attribute "attrs": /json wins.
    parts = topic.split("/")
    if parts[0]:
        return None
    candidates = [parts[2:], parts[1:]] if parts[1:2] == ["json"] else [parts[1:]]
    for rest in candidates:
        if len(rest) in (3, 4) and rest[2] == "attrs" and all(rest):
            return rest[0], rest[1], rest[3] if len(rest) == 4 else None
    return None
