"""Provisioning documents in the FIWARE IoT Agent's JSON shape <-> the registry's values (pure).

The shape is the IoT Agent's (`{"services": [...]}`, `{"devices": [...]}`, `apikey`,
`entity_type`, `attributes`, `static_attributes`, ...) so that its tooling and tutorials
work unchanged; `format`, `model`, `profile` and per-attribute `scale`/`offset` are ours.
The bodies are read by the models of `_provisioning_schemas.py`; what needs the tenant's
other groups (which group a device joins) is decided here. Every problem is a
`ProvisioningError` naming the JSON path, never a crash.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from datamodels import Catalogue
from regional_tenants import InvalidTenantName, TenantName

from ._devices import (
    AttributeMapping,
    Device,
    ServiceGroup,
    StaticAttribute,
    bind,
    bind_device_only,
)
from ._messages import Format
from ._provisioning_schemas import (
    DEFAULT_TIMESTAMP_FIELD,
    FORMATS,
    AttributeBody,
    DeviceBody,
    DeviceChanges,
    DevicesBody,
    GroupChanges,
    ProvisioningError,
    ProvisioningFile,
    ServiceGroupBody,
    ServicesBody,
    StaticAttributeBody,
    kind_of,
    parsed,
)

__all__ = [
    "DEFAULT_FORMAT",
    "FORMATS",
    "Provisioning",
    "ProvisioningError",
    "check_service_path",
    "device_to_json",
    "devices_from_json",
    "group_to_json",
    "groups_from_json",
    "kind_of",
    "provisioning_from_json",
    "tenant_of",
    "updated_device",
    "updated_group",
]

DEFAULT_FORMAT: Format = "iotagent-json"


@dataclass(slots=True, frozen=True)
class Provisioning:
    """What one provisioning file holds: service groups, then devices."""

    groups: tuple[ServiceGroup, ...] = ()
    devices: tuple[Device, ...] = ()


def tenant_of(service: str | None) -> str:
    """The tenant a `fiware-service` header names (lower-cased, like NGSILD-Tenant)."""
    if service is None or service.strip() == "":
        raise ProvisioningError(
            "Some headers were missing from the request: fiware-service "
            "(the tenant that owns the devices)",
            "MISSING_HEADERS",
        )
    try:
        return TenantName.parse(service.strip()).value
    except InvalidTenantName as error:
        raise ProvisioningError(error.explain("fiware-service"), "BAD_REQUEST") from None


def check_service_path(path: str | None) -> None:
    """Only the root service path is supported: one registry per fiware-service."""
    if path is None or path.strip() in {"", "/"}:
        return
    raise ProvisioningError(
        f"fiware-servicepath {path!r} is not supported: Contesto keeps one device registry "
        "per fiware-service; send 'fiware-servicepath: /' or leave the header out",
        "BAD_REQUEST",
    )


# ---------------------------------------------------------------------------- groups


def groups_from_json(
    body: Any, tenant: str, *, catalogue: Catalogue | None = None
) -> list[ServiceGroup]:
    """The service groups of a `POST /iot/services` body: `{"services": [...]}`."""
    groups = [_group(item, tenant) for item in parsed(ServicesBody, body, catalogue).services]
    _no_duplicates(((g.format, g.group) for g in groups), "services", "service group")
    return groups


def updated_group(
    group: ServiceGroup, changes: Any, *, catalogue: Catalogue | None = None
) -> ServiceGroup:
    """The group after a `PUT /iot/services`: the fields given replace the stored ones."""
    parsed(GroupChanges, changes, catalogue)
    for field, current in (("apikey", group.group), ("format", group.format)):
        if field in changes and changes[field] != current:
            raise ProvisioningError(
                f"$.{field} cannot be changed ({current!r} -> {changes[field]!r}); delete the "
                "group and provision a new one",
                "BAD_REQUEST",
            )
    base = _merge_base(group_to_json(group), changes)
    return _group(parsed(ServiceGroupBody, {**base, **changes}, catalogue), group.tenant)


def group_to_json(group: ServiceGroup) -> dict[str, Any]:
    """A group in the IoT Agent's shape, with our extensions; `group_from_json` reads it back."""
    body: dict[str, Any] = {
        "apikey": group.group,
        "format": group.format,
        "entity_type": group.entity_type,
        "service": group.tenant,
        "subservice": "/",
    }
    if group.model is not None:
        body["model"] = group.model
    if group.profile is not None:
        body["profile"] = group.profile
    body["attributes"] = [_attribute_to_json(a) for a in group.attributes]
    body["static_attributes"] = [_static_to_json(s) for s in group.static_attributes]
    body["autoprovision"] = group.autoprovision
    body["explicitAttrs"] = group.explicit_attributes
    stamp = group.timestamp_field
    body["timestamp"] = True if stamp == DEFAULT_TIMESTAMP_FIELD else stamp
    if group.entity_id_prefix is not None:
        body["entity_id_prefix"] = group.entity_id_prefix
    return body


def _group(body: ServiceGroupBody, tenant: str) -> ServiceGroup:
    entity_type = body.resolved_type
    assert entity_type is not None  # the model refuses a group without one
    return ServiceGroup(
        tenant=tenant,
        format=body.format or DEFAULT_FORMAT,
        group=body.apikey,
        entity_type=entity_type,
        model=body.model,
        profile=body.profile,
        attributes=_mappings(body.attributes),
        static_attributes=_statics(body.static_attributes),
        autoprovision=_flag(body.autoprovision, default=True),
        explicit_attributes=_flag(body.explicitAttrs, default=False),
        timestamp_field=_timestamp_field(body.timestamp),
        entity_id_prefix=body.entity_id_prefix,
    )


def _flag(value: bool | str | None, *, default: bool) -> bool:
    return default if value is None else value in (True, "true")


def _timestamp_field(value: bool | str | None) -> str:
    """IoT Agent `timestamp` (a flag: observedAt is always written) or the measure's name."""
    return value if isinstance(value, str) else DEFAULT_TIMESTAMP_FIELD


# --------------------------------------------------------------------------- devices


def devices_from_json(
    body: Any,
    tenant: str,
    groups: Sequence[ServiceGroup] = (),
    *,
    catalogue: Catalogue | None = None,
) -> list[Device]:
    """The devices of a `POST /iot/devices` body: `{"devices": [...]}`.

    `groups` are the tenant's service groups: a device without `apikey` joins the one group
    of its `entity_type` (the IoT Agent's type matching), one without `format` takes its
    group's, and one without `entity_type` needs a group.
    """
    items = parsed(DevicesBody, body, catalogue).devices
    return _devices(items, tenant, groups)


def _devices(
    items: Sequence[DeviceBody], tenant: str, groups: Sequence[ServiceGroup]
) -> list[Device]:
    devices = [
        _device(item, tenant, groups, f"$.devices[{index}]") for index, item in enumerate(items)
    ]
    _no_duplicates(((d.format, d.group, d.device_id) for d in devices), "devices", "device")
    return devices


def updated_device(
    device: Device,
    changes: Any,
    groups: Sequence[ServiceGroup] = (),
    *,
    catalogue: Catalogue | None = None,
) -> Device:
    """The device after a `PUT /iot/devices/{id}`: the fields given replace the stored ones."""
    parsed(DeviceChanges, changes, catalogue)
    for field, current in (
        ("device_id", device.device_id),
        ("apikey", device.group),
        ("format", device.format),
    ):
        if field in changes and changes[field] != current:
            raise ProvisioningError(
                f"$.{field} cannot be changed ({current!r} -> {changes[field]!r}); delete the "
                "device and provision it again",
                "BAD_REQUEST",
            )
    base = _merge_base(_device_body(device), changes)
    merged = parsed(DeviceBody, {**base, **changes}, catalogue)
    return _device(merged, device.tenant, groups, "$")


def _merge_base(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """The stored fields a partial update keeps: those the changes neither give nor imply."""
    if "type" in changes and "entity_type" not in changes:
        base.pop("entity_type", None)
    if "profile" in changes and "model" not in changes:
        base.pop("model", None)
    if "model" in changes and "profile" not in changes and changes["model"] != base.get("model"):
        base.pop("profile", None)
    return base


def device_to_json(
    device: Device, group: ServiceGroup | None = None, *, effective: bool = True
) -> dict[str, Any]:
    """A device in the IoT Agent's shape, with our extensions.

    With `effective`, `entity_name` and `entity_type` are those its entity gets (from its
    own record, else its `group`, else its own type); without, only what was provisioned,
    so the output can be provisioned again as it is.
    """
    body = _device_body(device)
    if effective:
        if group is not None and (group.tenant, group.format, group.group) != (
            device.tenant,
            device.format,
            device.group,
        ):
            group = None
        binding = None
        if group is not None:
            binding = bind(group, device.device_id, device)
        elif device.entity_type is not None:
            binding = bind_device_only(device)
        if binding is not None:
            body["entity_name"] = binding.entity_id
            body["entity_type"] = binding.entity_type
    order = ("device_id", "apikey", "format", "entity_name", "entity_type", "model", "profile")
    ordered = {"device_id": device.device_id, "service": device.tenant, "service_path": "/"}
    ordered.update((field, body.pop(field)) for field in order if field in body)
    return {**ordered, **body}


def _device_body(device: Device) -> dict[str, Any]:
    body: dict[str, Any] = {
        "device_id": device.device_id,
        "apikey": device.group,
        "format": device.format,
    }
    if device.entity_id is not None:
        body["entity_name"] = device.entity_id
    if device.entity_type is not None:
        body["entity_type"] = device.entity_type
    if device.model is not None:
        body["model"] = device.model
    if device.profile is not None:
        body["profile"] = device.profile
    body["attributes"] = [_attribute_to_json(a) for a in device.attributes]
    body["static_attributes"] = [_static_to_json(s) for s in device.static_attributes]
    return body


def _device(body: DeviceBody, tenant: str, groups: Sequence[ServiceGroup], where: str) -> Device:
    """The device `body` names, in the group its apikey (or its type) picks."""
    device_id, entity_type, format_ = body.device_id, body.resolved_type, body.format
    own = [g for g in groups if g.tenant == tenant]
    if body.apikey is not None:
        key = body.apikey
        if format_ is None:
            formats = sorted({g.format for g in own if g.group == key})
            if len(formats) > 1:
                raise ProvisioningError(
                    f"{where}: apikey {key!r} names groups of formats {', '.join(formats)}; "
                    "say which with `format`",
                    "BAD_REQUEST",
                )
            format_ = formats[0] if formats else DEFAULT_FORMAT
    else:
        key, format_ = _group_by_type(own, entity_type, format_, device_id, where)
    if entity_type is None and not any(g.format == format_ and g.group == key for g in own):
        raise ProvisioningError(
            f"{where}: device {device_id!r} has no entity_type and this service has no group "
            f"with apikey {key!r} ({format_}); provision the group first or give entity_type",
            "BAD_REQUEST",
        )
    return Device(
        tenant=tenant,
        format=format_,
        group=key,
        device_id=device_id,
        entity_id=body.entity_name,
        entity_type=entity_type,
        model=body.model,
        profile=body.profile,
        attributes=_mappings(body.attributes),
        static_attributes=_statics(body.static_attributes),
    )


def _group_by_type(
    groups: Sequence[ServiceGroup],
    entity_type: str | None,
    format_: Format | None,
    device_id: str,
    where: str,
) -> tuple[str, Format]:
    """The IoT Agent's type matching: a device without apikey joins its type's one group."""
    if entity_type is None:
        raise ProvisioningError(
            f"{where}: device {device_id!r} needs an apikey (the key of the service group its "
            "messages arrive under) or an entity_type",
            "BAD_REQUEST",
        )
    matches = [
        g
        for g in groups
        if g.entity_type == entity_type and (format_ is None or g.format == format_)
    ]
    if len(matches) == 1:
        return matches[0].group, matches[0].format
    found = (
        "no service group of this service has"
        if not matches
        else f"{len(matches)} service groups ({', '.join(g.group for g in matches)}) have"
    )
    raise ProvisioningError(
        f"{where}: device {device_id!r} has no apikey and {found} entity_type {entity_type!r}; "
        "give the apikey of the group its messages arrive under",
        "BAD_REQUEST",
    )


# ------------------------------------------------------------------- whole documents


def provisioning_from_json(
    body: Any,
    tenant: str,
    groups: Sequence[ServiceGroup] = (),
    *,
    catalogue: Catalogue | None = None,
) -> Provisioning:
    """A provisioning file: `{"services": [...], "devices": [...]}`, either member optional.

    Devices may belong to the file's own groups as well as to the tenant's `groups`.
    """
    document = parsed(ProvisioningFile, body, catalogue)
    new_groups = [_group(item, tenant) for item in document.services or ()]
    _no_duplicates(((g.format, g.group) for g in new_groups), "services", "service group")
    new_keys = {(g.format, g.group) for g in new_groups}
    known = [*new_groups, *(g for g in groups if (g.format, g.group) not in new_keys)]
    devices = _devices(document.devices or (), tenant, known)
    return Provisioning(tuple(new_groups), tuple(devices))


# ----------------------------------------------------------------------- attributes


def _mappings(items: Iterable[AttributeBody]) -> tuple[AttributeMapping, ...]:
    return tuple(
        AttributeMapping(
            object_id=item.object_id or item.name,
            name=item.name,
            kind=kind_of(item.type),
            unit_code=item.unit_code,
            scale=item.scale,
            offset=item.offset,
        )
        for item in items
    )


def _attribute_to_json(mapping: AttributeMapping) -> dict[str, Any]:
    body: dict[str, Any] = {
        "object_id": mapping.object_id,
        "name": mapping.name,
        "type": mapping.kind,
    }
    if mapping.unit_code is not None:
        body["metadata"] = {"unitCode": {"type": "Text", "value": mapping.unit_code}}
    if mapping.scale != 1.0:
        body["scale"] = mapping.scale
    if mapping.offset != 0.0:
        body["offset"] = mapping.offset
    return body


def _statics(items: Iterable[StaticAttributeBody]) -> tuple[StaticAttribute, ...]:
    return tuple(
        StaticAttribute(name=item.name, kind=kind_of(item.type), value=item.value) for item in items
    )


def _static_to_json(static: StaticAttribute) -> dict[str, Any]:
    return {"name": static.name, "type": static.kind, "value": static.value}


def _no_duplicates(keys: Iterable[object], where: str, what: str) -> None:
    seen: set[object] = set()
    for key in keys:
        if key in seen:
            shown = "/".join(map(str, key)) if isinstance(key, tuple) else str(key)
            raise ProvisioningError(f"{where}: {what} {shown!r} appears twice")
        seen.add(key)
