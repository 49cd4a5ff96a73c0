"""The values that flow through ingest: a message as it arrived, what a decoder read in it,
and why a message was turned away."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Format = Literal["iotagent-json", "ttn-v3", "chirpstack-v4", "flat-json"]


@dataclass(slots=True, frozen=True)
class InboundMessage:
    """One MQTT message, as the broker delivered it."""

    topic: str
    payload: bytes
    received_at: datetime


@dataclass(slots=True, frozen=True)
class DeviceKey:
    """Who sent a reading: the group (IoT Agent API key, TTN or ChirpStack application,
    flat-JSON group) and the device inside it."""

    group: str
    device: str


@dataclass(slots=True, frozen=True)
class Reading:
    """What one message measured, in the device's own names.

    `measures` maps the payload's keys (IoT Agent `object_id`s, codec field names) to
    values; `observed_at` is the payload's own timestamp, when it has one; `location` is
    (longitude, latitude) when the network server located the device.
    """

    format: Format
    key: DeviceKey
    measures: dict[str, Any]
    observed_at: datetime | None = None
    location: tuple[float, float] | None = None
    single_attribute: bool = False
    hints: dict[str, str] = field(default_factory=dict)


RejectionReason = Literal[
    "unsupported-topic",
    "undecodable",
    "unknown-device",
    "mapping",
    "invalid-entity",
    "rejected-by-broker",
    "not-in-region",
    "oversized",
    "unstorable",
]


@dataclass(slots=True, frozen=True)
class Rejection:
    """Why a message cannot become an entity: a value, not an exception, so the batch goes on.

    `reason` is a short code an operator can filter on, `message` says what is wrong,
    `path` where (a JSON path in the payload or the entity), `hint` how to fix it.
    """

    reason: RejectionReason
    message: str
    path: str = ""
    hint: str = ""
