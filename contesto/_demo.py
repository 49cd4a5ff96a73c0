"""The demo of `make run`: devices of Firenze and Prato, and a simulator that feeds them.

Firenze's air-quality sensors speak IoT Agent JSON; Prato's come through The Things
Stack (LoRaWAN); Prato's parking bays publish flat JSON. Every device is provisioned with
its location, so the regional profiles accept its readings.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from sensor_ingest import AttributeMapping, Device, ServiceGroup, StaticAttribute

__all__ = ["DEMO_DEVICES", "DEMO_GROUPS", "SimulatedMessage", "simulated_messages"]

FIRENZE_KEY = "firenze-aria-demo"
PRATO_TTN_APP = "prato-aria-demo"
PRATO_PARKING = "prato-parcheggi-demo"

_AIR = (
    AttributeMapping("t", "temperature", unit_code="CEL"),
    AttributeMapping("h", "relativeHumidity", scale=0.01),
    AttributeMapping("pm10", "pm10", unit_code="GQ"),
    AttributeMapping("pm25", "pm25", unit_code="GQ"),
    AttributeMapping("no2", "no2", unit_code="GQ"),
)
_TTN_AIR = (
    AttributeMapping("temperature", "temperature", unit_code="CEL"),
    AttributeMapping("humidity", "relativeHumidity", scale=0.01),
    AttributeMapping("pm10", "pm10", unit_code="GQ"),
    AttributeMapping("pm25", "pm25", unit_code="GQ"),
    AttributeMapping("no2", "no2", unit_code="GQ"),
)

DEMO_GROUPS = (
    ServiceGroup(
        tenant="firenze",
        format="iotagent-json",
        group=FIRENZE_KEY,
        entity_type="AirQualityObserved",
        profile="toscana/AirQualityObserved",
        attributes=_AIR,
        explicit_attributes=True,
        autoprovision=False,
    ),
    ServiceGroup(
        tenant="prato",
        format="ttn-v3",
        group=PRATO_TTN_APP,
        entity_type="AirQualityObserved",
        profile="toscana/AirQualityObserved",
        attributes=_TTN_AIR,
        explicit_attributes=True,
        autoprovision=False,
    ),
    ServiceGroup(
        tenant="prato",
        format="flat-json",
        group=PRATO_PARKING,
        entity_type="ParkingSpot",
        model="ParkingSpot",
        attributes=(AttributeMapping("status", "status"),),
        explicit_attributes=True,
        autoprovision=False,
    ),
)


def _point(longitude: float, latitude: float) -> StaticAttribute:
    return StaticAttribute(
        "location", "GeoProperty", {"type": "Point", "coordinates": [longitude, latitude]}
    )


_PLACES = {
    ("firenze", "aq-fi-signoria"): (11.2556, 43.7696),
    ("firenze", "aq-fi-campodimarte"): (11.2815, 43.7760),
    ("firenze", "aq-fi-novoli"): (11.2226, 43.7925),
    ("prato", "aq-po-duomo"): (11.0966, 43.8810),
    ("prato", "aq-po-macrolotto"): (11.0650, 43.8550),
    ("prato", "spot-po-001"): (11.0972, 43.8795),
    ("prato", "spot-po-002"): (11.0974, 43.8796),
}

DEMO_DEVICES = tuple(
    Device(
        tenant=tenant,
        format="iotagent-json" if tenant == "firenze" else "ttn-v3",
        group=FIRENZE_KEY if tenant == "firenze" else PRATO_TTN_APP,
        device_id=device_id,
        static_attributes=(_point(*place),),
    )
    for (tenant, device_id), place in _PLACES.items()
    if not device_id.startswith("spot-")
) + tuple(
    Device(
        tenant="prato",
        format="flat-json",
        group=PRATO_PARKING,
        device_id=device_id,
        static_attributes=(
            _point(*place),
            StaticAttribute("category", "Property", ["onStreet"]),
            StaticAttribute(
                "refParkingSite", "Relationship", "urn:ngsi-ld:OnStreetParking:prato-duomo"
            ),
        ),
    )
    for (_tenant, device_id), place in _PLACES.items()
    if device_id.startswith("spot-")
)


@dataclass(slots=True, frozen=True)
class SimulatedMessage:
    topic: str
    payload: bytes
    # The device's group: its MQTT login where logins are required.
    group: ServiceGroup


def simulated_messages(count: int, seed: int = 7) -> Iterator[SimulatedMessage]:
    """`count` plausible messages, cycling over the demo devices."""
    rng = random.Random(seed)
    devices = list(DEMO_DEVICES)
    groups = {(group.format, group.group): group for group in DEMO_GROUPS}
    for n in range(count):
        device = devices[n % len(devices)]
        now = datetime.now(UTC)
        hour = now.hour + now.minute / 60
        daily = 1 + 0.4 * math.sin((hour - 8) / 24 * 2 * math.pi)
        air = {
            "temperature": round(12 + 8 * daily + rng.uniform(-1, 1), 2),
            "humidity": round(rng.uniform(40, 80), 1),
            "pm10": round(max(0.0, 22 * daily + rng.gauss(0, 4)), 1),
            "pm25": round(max(0.0, 13 * daily + rng.gauss(0, 3)), 1),
            "no2": round(max(0.0, 30 * daily + rng.gauss(0, 6)), 1),
        }
        payload: dict[str, Any]
        if device.format == "iotagent-json":
            payload = {
                "t": air["temperature"],
                "h": air["humidity"],
                "pm10": air["pm10"],
                "pm25": air["pm25"],
                "no2": air["no2"],
            }
            topic = f"/json/{device.group}/{device.device_id}/attrs"
        elif device.format == "ttn-v3":
            payload = {
                "end_device_ids": {
                    "device_id": device.device_id,
                    "application_ids": {"application_id": device.group},
                },
                "received_at": now.isoformat().replace("+00:00", "Z"),
                "uplink_message": {"f_port": 2, "decoded_payload": air},
            }
            topic = f"v3/{device.group}@ttn/devices/{device.device_id}/up"
        else:
            payload = {"status": rng.choice(["free", "occupied"])}
            topic = f"flat/{device.group}/{device.device_id}"
        yield SimulatedMessage(topic, orjson.dumps(payload), groups[device.format, device.group])
