"""ChirpStack v4 uplink events: `application/<application_id>/device/<devEUI>/event/up`."""

from __future__ import annotations

from sensor_ingest._messages import DeviceKey, InboundMessage, Reading, Rejection

from ._json import describe, load_object, timestamp, undecodable, unsupported_topic

TOPIC_FILTERS = ("application/+/device/+/event/up",)
TOPIC_SHAPES = ("application/<application_id>/device/<devEUI>/event/up",)

_HINT = "publish events as JSON: set json=true under [integration.mqtt] in chirpstack.toml"
_CODEC_HINT = (
    "set a payload codec (JavaScript decodeUplink) in the device profile "
    "so that up events carry the decoded object"
)
_TIME_HINT = "send RFC 3339 times with an offset, e.g. 2026-11-23T08:15:02.298113402+00:00"


def accepts(topic: str) -> bool:
    """Whether `topic` is a ChirpStack v4 up-event topic."""
    return _parse_topic(topic) is not None


def decode(message: InboundMessage) -> list[Reading] | Rejection:
    """One up event -> one Reading of its codec's `object`, with the device's tags as hints."""
    parsed = _parse_topic(message.topic)
    if parsed is None:
        return unsupported_topic(message.topic, "a ChirpStack v4 up-event topic", TOPIC_SHAPES)
    application, dev_eui = parsed
    document = load_object(message.payload, "an up-event object", _HINT)
    if isinstance(document, Rejection):
        return document
    info = document.get("deviceInfo")
    info = info if isinstance(info, dict) else {}
    sender = info.get("devEui")
    if not isinstance(sender, str) or sender.lower() != dev_eui:
        return undecodable(
            f"devEui {dev_eui!r} as in the topic",
            describe(sender),
            "$.deviceInfo.devEui",
            "the topic and deviceInfo.devEui must name the same device",
        )
    measures = document.get("object")
    if not isinstance(measures, dict) or not measures:
        found = "no object" if measures is None else describe(measures)
        return undecodable("an object of measures", found, "$.object", _CODEC_HINT)
    observed_at = timestamp(document.get("time"), "$.time", _TIME_HINT)
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
