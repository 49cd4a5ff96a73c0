"""The device registry's values: how a group of devices, or one device, becomes an entity.

The shape follows the FIWARE IoT Agent's provisioning model (a *service group* per API key,
a *device* per sensor) so existing tooling and habits carry over; the names are ours.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ._messages import Format

ATTRIBUTE_KINDS = frozenset({"Property", "GeoProperty", "Relationship"})


@dataclass(slots=True, frozen=True)
class AttributeMapping:
    """One measure of the payload (`object_id`) and the NGSI-LD attribute it becomes.

    The value is converted as `value * scale + offset` when it is a number and either
    differs from the identity; `unit_code` is the UN/CEFACT code written on the attribute.
    """

    object_id: str
    name: str
    kind: str = "Property"
    unit_code: str | None = None
    scale: float = 1.0
    offset: float = 0.0


@dataclass(slots=True, frozen=True)
class StaticAttribute:
    """An attribute every entity of the group or device carries, e.g. its `location`."""

    name: str
    kind: str
    value: Any


@dataclass(slots=True, frozen=True)
class ServiceGroup:
    """Devices that share a key and a data model, all in one tenant.

    A message from a device of the group that has no device record of its own is
    accepted when `autoprovision` is on: its entity id is `entity_id_prefix + device_id`.
    `explicit_attributes` keeps only mapped measures; otherwise unmapped ones pass through
    under their own names. `timestamp_field` names the measure that carries the
    observation time (IoT Agent's `TimeInstant` by default).
    """

    tenant: str
    format: Format
    group: str
    entity_type: str
    model: str | None = None
    profile: str | None = None
    attributes: tuple[AttributeMapping, ...] = ()
    static_attributes: tuple[StaticAttribute, ...] = ()
    autoprovision: bool = True
    explicit_attributes: bool = False
    timestamp_field: str = "TimeInstant"
    entity_id_prefix: str | None = None

    def id_prefix(self) -> str:
        return self.entity_id_prefix or f"urn:ngsi-ld:{self.entity_type}:"


@dataclass(slots=True, frozen=True)
class Device:
    """One provisioned sensor: its group, and what it overrides of the group's mapping.

    Device attributes and static attributes are added to the group's, replacing any of
    the group's with the same `object_id` or `name`.
    """

    tenant: str
    format: Format
    group: str
    device_id: str
    entity_id: str | None = None
    entity_type: str | None = None
    model: str | None = None
    profile: str | None = None
    attributes: tuple[AttributeMapping, ...] = ()
    static_attributes: tuple[StaticAttribute, ...] = ()


@dataclass(slots=True, frozen=True)
class Binding:
    """Everything the mapper needs for one device: the group's rules with the device's
    overrides applied."""

    tenant: str
    device_id: str
    entity_id: str
    entity_type: str
    model: str | None
    profile: str | None
    attributes: dict[str, AttributeMapping]
    static_attributes: tuple[StaticAttribute, ...]
    explicit_attributes: bool
    timestamp_field: str


def bind(group: ServiceGroup, device_id: str, device: Device | None = None) -> Binding:
    """The effective mapping of `device_id` in `group` (with its own record, if any)."""
    attributes = {a.object_id: a for a in group.attributes}
    statics = {s.name: s for s in group.static_attributes}
    if device is None:
        device = Device(group.tenant, group.format, group.group, device_id)
    for mapping in device.attributes:
        attributes[mapping.object_id] = mapping
    for static in device.static_attributes:
        statics[static.name] = static
    entity_type = device.entity_type or group.entity_type
    prefix = group.id_prefix()
    if device.entity_type and not group.entity_id_prefix:
        prefix = f"urn:ngsi-ld:{entity_type}:"
    return Binding(
        tenant=group.tenant,
        device_id=device_id,
        entity_id=device.entity_id or prefix + device_id,
        entity_type=entity_type,
        model=device.model or group.model,
        profile=device.profile or group.profile,
        attributes=attributes,
        static_attributes=tuple(statics.values()),
        explicit_attributes=group.explicit_attributes,
        timestamp_field=group.timestamp_field,
    )


def bind_device_only(device: Device) -> Binding:
    """The mapping of a device provisioned without a group (its own type and attributes)."""
    if device.entity_type is None:
        raise ValueError(f"device {device.device_id!r} has no group and no entity type")
    group = ServiceGroup(
        tenant=device.tenant,
        format=device.format,
        group=device.group,
        entity_type=device.entity_type,
        autoprovision=False,
    )
    return bind(
        replace(group, model=device.model, profile=device.profile), device.device_id, device
    )
