"""Payload decoders: from one MQTT message to the readings in it, chosen by its topic."""

from __future__ import annotations

from collections.abc import Callable

from sensor_ingest._messages import Format, InboundMessage, Reading, Rejection

from . import _chirpstack_v4, _flat_json, _iotagent_json, _ttn_v3

__all__ = ["TOPIC_FILTERS", "decode", "format_of"]

_Decoder = Callable[[InboundMessage], list[Reading] | Rejection]
_DECODERS: tuple[tuple[Callable[[str], bool], _Decoder], ...] = (
    (_iotagent_json.accepts, _iotagent_json.decode),
    (_ttn_v3.accepts, _ttn_v3.decode),
    (_chirpstack_v4.accepts, _chirpstack_v4.decode),
    (_flat_json.accepts, _flat_json.decode),
)
_FORMATS: tuple[tuple[Callable[[str], bool], Format], ...] = (
    (_iotagent_json.accepts, "iotagent-json"),
    (_ttn_v3.accepts, "ttn-v3"),
    (_chirpstack_v4.accepts, "chirpstack-v4"),
    (_flat_json.accepts, "flat-json"),
)
_TOPIC_SHAPES = (
    *_iotagent_json.TOPIC_SHAPES,
    *_ttn_v3.TOPIC_SHAPES,
    *_chirpstack_v4.TOPIC_SHAPES,
    *_flat_json.TOPIC_SHAPES,
)

TOPIC_FILTERS: tuple[str, ...] = (
    *_iotagent_json.TOPIC_FILTERS,
    *_ttn_v3.TOPIC_FILTERS,
    *_chirpstack_v4.TOPIC_FILTERS,
    *_flat_json.TOPIC_FILTERS,
)
"""What ingest subscribes to. Only `/json/<x>/attrs/attrs` matches two filters, `/json/+/+/attrs`
(key x, device "attrs") and `/+/+/attrs/+` (key "json", attribute "attrs"); decoded as the first."""


def decode(message: InboundMessage) -> list[Reading] | Rejection:
    """The readings in `message`, by the decoder its topic names, or why there are none."""
    for accepts, decoder in _DECODERS:
        if accepts(message.topic):
            return decoder(message)
    return Rejection(
        "unsupported-topic",
        f"no decoder for topic {message.topic!r}",
        hint="supported topics: " + ", ".join(_TOPIC_SHAPES),
    )


def format_of(topic: str) -> Format | None:
    """The payload format a topic names (the decoder `decode` would choose), if any."""
    for accepts, name in _FORMATS:
        if accepts(topic):
            return name
    return None
