"""Payload files a vendor hands in -> the samples to check, one per MQTT message or entity (pure).

Accepted shapes: one JSON message, a JSON array of them, JSON Lines (one per line), the
project's sample files (`{"_meta": {"mqtt_topic": ...}, "message": {...}}` and
`{"messages": [{"topic", "payload"}]}`), `{"topic", "payload"}` captures, and NGSI-LD
entities (an object with `id` and `type`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from datamodels import Violation

__all__ = ["Sample", "infer_topic", "samples_from_text"]


@dataclass(slots=True, frozen=True)
class Sample:
    """One thing to check: an MQTT message (topic and payload bytes) or an NGSI-LD entity.

    `source` says where it came from (`file:line` or `file[index]`); `problem` is set when
    the sample could not even be read, e.g. a broken JSON line.
    """

    source: str
    topic: str | None = None
    payload: bytes | None = None
    entity: Any = None
    problem: Violation | None = None

    @property
    def is_entity(self) -> bool:
        return self.entity is not None


def samples_from_text(text: str, source: str, topic: str | None = None) -> list[Sample]:
    """The samples in one file's text; `topic` is used for messages that carry none."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return _json_lines(text, source, topic)
    if isinstance(document, list):
        return [
            _sample(item, f"{source}[{index}]", topic, inner=True)
            for index, item in enumerate(document)
        ]
    if isinstance(document, dict) and isinstance(document.get("messages"), list):
        return [
            _sample(item, f"{source}[{index}]", topic, inner=True)
            for index, item in enumerate(document["messages"])
        ]
    return [_sample(document, source, topic, inner=False)]


def _json_lines(text: str, source: str, topic: str | None) -> list[Sample]:
    samples = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            if topic is not None:
                # The decoder of the topic's format says what ingest would say.
                samples.append(Sample(where, topic, line.encode()))
                continue
            samples.append(
                Sample(
                    where,
                    problem=Violation(
                        f"line {number}",
                        "ingest.undecodable",
                        f"line {number} is not JSON: {exc.msg} at column {exc.colno}",
                        "write one complete JSON message per line (JSON Lines)",
                    ),
                )
            )
            continue
        samples.append(_sample(item, where, topic, inner=True))
    return samples


def _sample(item: Any, source: str, topic: str | None, *, inner: bool) -> Sample:
    if isinstance(item, dict):
        meta = item.get("_meta")
        if isinstance(meta, dict) and "message" in item:
            found = meta.get("mqtt_topic")
            return _message(source, found if isinstance(found, str) else topic, item["message"])
        if "topic" in item and "payload" in item:
            found = item["topic"]
            return _message(source, found if isinstance(found, str) else topic, item["payload"])
        if _is_entity(item) and topic is None:
            return Sample(source, entity=item)
    return _message(source, topic, item)


def _message(source: str, topic: str | None, payload: Any) -> Sample:
    raw = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
    topic = topic or infer_topic(payload)
    if topic is None:
        return Sample(
            source,
            payload=raw,
            problem=Violation(
                "topic",
                "ingest.unsupported-topic",
                "the message has no MQTT topic and its format cannot be recognised",
                'give --topic, or write messages as {"topic": ..., "payload": ...}',
            ),
        )
    return Sample(source, topic, raw)


def infer_topic(payload: Any) -> str | None:
    """The uplink topic of a The Things Stack v3 or ChirpStack v4 payload, from its ids."""
    if not isinstance(payload, dict):
        return None
    ids = payload.get("end_device_ids")
    if isinstance(ids, dict) and "uplink_message" in payload:
        application = ids.get("application_ids")
        app = application.get("application_id") if isinstance(application, dict) else None
        device = ids.get("device_id")
        if isinstance(app, str) and isinstance(device, str):
            return f"v3/{app}/devices/{device}/up"
    info = payload.get("deviceInfo")
    if isinstance(info, dict):
        app, eui = info.get("applicationId"), info.get("devEui")
        if isinstance(app, str) and isinstance(eui, str):
            return f"application/{app}/device/{eui}/event/up"
    return None


def _is_entity(item: dict[str, Any]) -> bool:
    """An NGSI-LD entity: a URI `id` and a `type`, and no uplink envelope."""
    identifier = item.get("id")
    return (
        isinstance(identifier, str)
        and ":" in identifier
        and isinstance(item.get("type"), str)
        and infer_topic(item) is None
    )
