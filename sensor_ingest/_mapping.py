"""From a decoded reading and its device's binding to an NGSI-LD entity fragment (pure)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from ._devices import AttributeMapping, Binding
from ._messages import Reading, Rejection

__all__ = ["OBSERVATION_TIME_ATTRIBUTE", "to_fragment"]

OBSERVATION_TIME_ATTRIBUTE = "dateObserved"
"""Written from the observation time when the device's model declares it (Smart Data
Models' observed entities do), so that `dateObserved` always matches `observedAt`."""


def to_fragment(
    reading: Reading,
    binding: Binding,
    received_at: datetime,
    *,
    model_attributes: frozenset[str] = frozenset(),
) -> dict[str, Any] | Rejection:
    """The normalized NGSI-LD entity fragment that one reading makes, or why it can't.

    Every measured attribute carries `observedAt`: the payload's timestamp measure
    (`binding.timestamp_field`), else the envelope's time, else when it was received.
    """
    measures = reading.measures
    observed_at = reading.observed_at or received_at
    stamp = binding.timestamp_field
    if stamp in measures:
        parsed = _parse_time(measures[stamp])
        if parsed is None:
            return Rejection(
                "mapping",
                f"`{stamp}` must be an ISO 8601 date-time; got {_short(measures[stamp])}",
                f"$.{stamp}",
                "send UTC times like 2026-11-23T08:15:00Z",
            )
        observed_at = parsed
    when = _iso(observed_at)
    fragment: dict[str, Any] = {"id": binding.entity_id, "type": binding.entity_type}
    for object_id, value in measures.items():
        if object_id == stamp:
            continue
        mapping = binding.attributes.get(object_id)
        if mapping is None:
            if binding.explicit_attributes:
                continue
            mapping = AttributeMapping(object_id, object_id)
        attribute = _attribute(mapping, value, when)
        if isinstance(attribute, Rejection):
            return attribute
        fragment[mapping.name] = attribute
    if len(fragment) == 2:
        return Rejection(
            "mapping",
            f"no measure of device {binding.device_id!r} maps to an attribute",
            "$",
            "add the payload's keys as attribute object_ids of the device or its group",
        )
    for static in binding.static_attributes:
        fragment.setdefault(static.name, _static(static.kind, static.value))
    if reading.location is not None and "location" not in fragment:
        longitude, latitude = reading.location
        fragment["location"] = {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [longitude, latitude]},
            "observedAt": when,
        }
    if OBSERVATION_TIME_ATTRIBUTE in model_attributes and not reading.single_attribute:
        fragment.setdefault(
            OBSERVATION_TIME_ATTRIBUTE,
            {"type": "Property", "value": {"@type": "DateTime", "@value": when}},
        )
    return fragment


def _attribute(mapping: AttributeMapping, value: Any, when: str) -> dict[str, Any] | Rejection:
    if mapping.kind == "Relationship":
        if not isinstance(value, str) or ":" not in value:
            return _bad_value(mapping, value, "a URI naming the related entity")
        return {"type": "Relationship", "object": value, "observedAt": when}
    if mapping.kind == "GeoProperty":
        if not isinstance(value, dict) or "type" not in value or "coordinates" not in value:
            return _bad_value(mapping, value, "a GeoJSON geometry")
        return {"type": "GeoProperty", "value": value, "observedAt": when}
    converted = _convert(mapping, value)
    if isinstance(converted, Rejection):
        return converted
    attribute: dict[str, Any] = {"type": "Property", "value": converted, "observedAt": when}
    if mapping.unit_code:
        attribute["unitCode"] = mapping.unit_code
    return attribute


def _convert(mapping: AttributeMapping, value: Any) -> Any:
    if value is None:
        return _bad_value(mapping, value, "a value (null is not a measure)")
    if mapping.scale == 1.0 and mapping.offset == 0.0:
        return value
    number = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return _bad_value(mapping, value, "a number (it is scaled)")
    if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
        return _bad_value(mapping, value, "a finite number (it is scaled)")
    return round(number * mapping.scale + mapping.offset, 9)


def _bad_value(mapping: AttributeMapping, value: Any, expected: str) -> Rejection:
    return Rejection(
        "mapping",
        f"measure `{mapping.object_id}` (attribute `{mapping.name}`) must be {expected}; "
        f"got {_short(value)}",
        f"$.{mapping.object_id}",
        "fix the device's payload or the attribute's mapping in the device registry",
    )


def _static(kind: str, value: Any) -> dict[str, Any]:
    if kind == "Relationship":
        return {"type": "Relationship", "object": value}
    return {"type": kind, "value": value}


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    if "." in text:
        head, _, tail = text.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        if digits > 6:
            text = f"{head}.{tail[:6]}{tail[digits:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.astimezone(UTC)


def _iso(moment: datetime) -> str:
    """Fixed width, to the millisecond, so that later times compare greater as text."""
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
