"""The Things Stack v3 uplinks: `v3/<application_id>[@<tenant_id>]/devices/<device_id>/up`."""

from __future__ import annotations

from sensor_ingest._messages import DeviceKey, InboundMessage, Reading, Rejection

from ._json import describe, load_object, timestamp, undecodable, unsupported_topic

TOPIC_FILTERS = ("v3/+/devices/+/up",)
TOPIC_SHAPES = ("v3/<application_id>[@<tenant_id>]/devices/<device_id>/up",)

_HINT = "publish The Things Stack uplink messages as JSON (MQTT integration)"
_FORMATTER_HINT = (
    "set an uplink payload formatter for the end device or its application "
    "(Console: Payload formatters > Uplink) so that uplinks carry decoded_payload"
)
_LOCATION_HINT = "set the device location in degrees (end device > Location)"
_TIME_HINT = "send RFC 3339 times with an offset, e.g. 2026-11-23T08:15:02.512345678Z"


def accepts(topic: str) -> bool:
    """Whether `topic` is a The Things Stack v3 uplink topic."""
    return _parse_topic(topic) is not None


def decode(message: InboundMessage) -> list[Reading] | Rejection:
    """One uplink -> one Reading of its `decoded_payload`, timed and located by the network."""
    parsed = _parse_topic(message.topic)
    if parsed is None:
        return unsupported_topic(message.topic, "a The Things Stack uplink topic", TOPIC_SHAPES)
    application, tenant, device = parsed
    document = load_object(message.payload, "an uplink object", _HINT)
    if isinstance(document, Rejection):
        return document
    ids = document.get("end_device_ids")
    ids = ids if isinstance(ids, dict) else {}
    if ids.get("device_id") != device:
        return undecodable(
            f"device_id {device!r} as in the topic",
            describe(ids.get("device_id")),
            "$.end_device_ids.device_id",
            "the topic and end_device_ids.device_id must name the same device",
        )
    uplink = document.get("uplink_message")
    if not isinstance(uplink, dict):
        return undecodable("an uplink_message object", describe(uplink), "$.uplink_message", _HINT)
    measures = uplink.get("decoded_payload")
    if not isinstance(measures, dict) or not measures:
        found = "no decoded_payload" if measures is None else describe(measures)
        path = "$.uplink_message.decoded_payload"
        return undecodable("an object of measures", found, path, _FORMATTER_HINT)
    observed_at = timestamp(document.get("received_at"), "$.received_at", _TIME_HINT)
    if isinstance(observed_at, Rejection):
        return observed_at
    location = _location(uplink.get("locations"))
    if isinstance(location, Rejection):
        return location
    hints: dict[str, str] = {}
    if isinstance(ids.get("dev_eui"), str):
        hints["dev_eui"] = ids["dev_eui"].lower()
    network = uplink.get("network_ids")
    if tenant is None and isinstance(network, dict) and isinstance(network.get("tenant_id"), str):
        tenant = network["tenant_id"]
    if tenant:
        hints["tenant"] = tenant
    key = DeviceKey(application, device)
    return [Reading("ttn-v3", key, measures, observed_at, location, hints=hints)]


def _parse_topic(topic: str) -> tuple[str, str | None, str] | None:
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != "v3" or parts[2] != "devices" or parts[4] != "up":
        return None
    application, at, tenant = parts[1].partition("@")
    if not application or not parts[3] or (at and (not tenant or "@" in tenant)):
        return None
    return application, tenant or None, parts[3]


def _location(locations: object) -> tuple[float, float] | Rejection | None:
    """(longitude, latitude) of the `user` location, else of the first one listed."""
    if locations is None or locations == {}:
        return None
    path = "$.uplink_message.locations"
    if not isinstance(locations, dict):
        return undecodable("an object of locations", describe(locations), path, _LOCATION_HINT)
    name = "user" if "user" in locations else next(iter(locations))
    where = locations[name]
    path = f"{path}.{name}"
    if not isinstance(where, dict):
        return undecodable(
            "longitude and latitude in degrees", describe(where), path, _LOCATION_HINT
        )
    # Protobuf's JSON mapping may leave out a coordinate that is exactly 0.
    lon, lat = where.get("longitude", 0), where.get("latitude", 0)
    if not (_is_number(lon) and _is_number(lat) and abs(lon) <= 180 and abs(lat) <= 90):
        return undecodable(
            "longitude and latitude in degrees", describe(where), path, _LOCATION_HINT
        )
    return float(lon), float(lat)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
