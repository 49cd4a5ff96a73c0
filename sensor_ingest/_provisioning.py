"""Provisioning documents in the FIWARE IoT Agent's JSON shape <-> the registry's values (pure).

The shape is the IoT Agent's (`{"services": [...]}`, `{"devices": [...]}`, `apikey`,
`entity_type`, `attributes`, `static_attributes`, ...) so that its tooling and tutorials
work unchanged; `format`, `model`, `profile` and per-attribute `scale`/`offset` are ours.
Every problem is a `ProvisioningError` naming the JSON path, never a crash.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_args

from datamodels import Catalogue, CatalogueError, load_catalogue
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

FORMATS: tuple[Format, ...] = get_args(Format)
DEFAULT_FORMAT: Format = "iotagent-json"
DEFAULT_TIMESTAMP_FIELD = "TimeInstant"
GEO_TYPES = frozenset({"geo:json", "geo:point", "GeoProperty"})
# A key is one MQTT topic level: no separator, no wildcard, no control character.
_KEY = re.compile(r"^[^/+#\x00-\x1f\x7f]{1,256}$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
_RESERVED_NAMES = frozenset({"id", "type", "@context", "scope"})
_UNSUPPORTED_LISTS = {
    "lazy": "lazy attributes are not supported: devices push their measures over MQTT",
    "commands": "commands are not supported: Contesto ingests measures, it does not actuate",
}


class ProvisioningError(ValueError):
    """A provisioning request that cannot be taken as it is.

    `name` is the IoT Agent's error name: WRONG_SYNTAX for a malformed body, BAD_REQUEST
    for a well-formed one that asks for something impossible, MISSING_HEADERS.
    """

    def __init__(self, message: str, name: str = "WRONG_SYNTAX") -> None:
        super().__init__(message)
        self.name = name
        self.message = message


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
    items = _list_member(body, "services", "$")
    groups = [
        _group(item, tenant, f"$.services[{index}]", catalogue) for index, item in enumerate(items)
    ]
    _no_duplicates(((g.format, g.group) for g in groups), "services", "service group")
    return groups


def updated_group(
    group: ServiceGroup, changes: Any, *, catalogue: Catalogue | None = None
) -> ServiceGroup:
    """The group after a `PUT /iot/services`: the fields given replace the stored ones."""
    changes = _object(changes, "$")
    for field, current in (("apikey", group.group), ("format", group.format)):
        if field in changes and changes[field] != current:
            raise ProvisioningError(
                f"$.{field} cannot be changed ({current!r} -> {changes[field]!r}); delete the "
                "group and provision a new one",
                "BAD_REQUEST",
            )
    base = _merge_base(group_to_json(group), changes)
    return _group({**base, **changes}, group.tenant, "$", catalogue)


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


def _group(item: Any, tenant: str, where: str, catalogue: Catalogue | None) -> ServiceGroup:
    obj = _object(item, where)
    _refuse_unsupported(obj, where)
    model, profile = _model(obj, where, catalogue)
    entity_type = _entity_type(obj, where, model)
    if entity_type is None:
        raise ProvisioningError(
            f"{where}.entity_type is required: the NGSI-LD type of the group's entities "
            "(or give `model`, whose name is then the type)"
        )
    prefix = _optional_string(obj, "entity_id_prefix", where)
    if prefix is not None and not _URI.match(prefix):
        raise ProvisioningError(
            f"{where}.entity_id_prefix must start like a URI (urn:ngsi-ld:Type:); got {prefix!r}"
        )
    return ServiceGroup(
        tenant=tenant,
        format=_format(obj, where) or DEFAULT_FORMAT,
        group=_key(obj.get("apikey"), f"{where}.apikey"),
        entity_type=entity_type,
        model=model,
        profile=profile,
        attributes=_attributes(obj.get("attributes"), f"{where}.attributes"),
        static_attributes=_statics(obj.get("static_attributes"), f"{where}.static_attributes"),
        autoprovision=_flag(obj, "autoprovision", where, default=True),
        explicit_attributes=_flag(obj, "explicitAttrs", where, default=False),
        timestamp_field=_timestamp(obj.get("timestamp"), f"{where}.timestamp"),
        entity_id_prefix=prefix,
    )


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
    items = _list_member(body, "devices", "$")
    devices = [
        _device(item, tenant, groups, f"$.devices[{index}]", catalogue)
        for index, item in enumerate(items)
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
    changes = _object(changes, "$")
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
    return _device({**base, **changes}, device.tenant, groups, "$", catalogue)


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


def _device(
    item: Any,
    tenant: str,
    groups: Sequence[ServiceGroup],
    where: str,
    catalogue: Catalogue | None,
) -> Device:
    obj = _object(item, where)
    _refuse_unsupported(obj, where)
    device_id = _key(obj.get("device_id"), f"{where}.device_id")
    entity_id = _optional_string(obj, "entity_name", where)
    if entity_id is not None and not _URI.match(entity_id):
        raise ProvisioningError(
            f"{where}.entity_name must be a URI (NGSI-LD entity ids are), e.g. "
            f"urn:ngsi-ld:Device:{device_id}; got {entity_id!r}"
        )
    model, profile = _model(obj, where, catalogue)
    entity_type = _entity_type(obj, where, model)
    format_ = _format(obj, where)
    own = [g for g in groups if g.tenant == tenant]
    if "apikey" in obj and obj["apikey"] is not None:
        key = _key(obj["apikey"], f"{where}.apikey")
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
        entity_id=entity_id,
        entity_type=entity_type,
        model=model,
        profile=profile,
        attributes=_attributes(obj.get("attributes"), f"{where}.attributes"),
        static_attributes=_statics(obj.get("static_attributes"), f"{where}.static_attributes"),
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
    obj = _object(body, "$")
    if "services" not in obj and "devices" not in obj:
        raise ProvisioningError(
            '$ must have "services" (service groups) and/or "devices", in the IoT Agent shape'
        )
    new_groups = groups_from_json(obj, tenant, catalogue=catalogue) if "services" in obj else []
    new_keys = {(g.format, g.group) for g in new_groups}
    known = [*new_groups, *(g for g in groups if (g.format, g.group) not in new_keys)]
    devices = devices_from_json(obj, tenant, known, catalogue=catalogue) if "devices" in obj else []
    return Provisioning(tuple(new_groups), tuple(devices))


# ----------------------------------------------------------------------- attributes


def kind_of(attribute_type: str) -> str:
    """The NGSI-LD kind an IoT Agent attribute `type` stands for."""
    if attribute_type in GEO_TYPES:
        return "GeoProperty"
    if attribute_type == "Relationship":
        return "Relationship"
    return "Property"


def _attributes(value: Any, where: str) -> tuple[AttributeMapping, ...]:
    items = _optional_list(value, where)
    mappings = tuple(_attribute(item, f"{where}[{index}]") for index, item in enumerate(items))
    _no_duplicates((m.object_id for m in mappings), where, "attribute object_id")
    _no_duplicates((m.name for m in mappings), where, "attribute name")
    return mappings


def _attribute(item: Any, where: str) -> AttributeMapping:
    obj = _object(item, where)
    for field, why in (
        ("expression", "expressions are not supported; use `scale` and `offset`"),
        ("entity_name", "multi-entity attributes are not supported"),
        ("entity_type", "multi-entity attributes are not supported"),
    ):
        if obj.get(field) is not None:
            raise ProvisioningError(f"{where}.{field}: {why}", "BAD_REQUEST")
    name = _name(obj.get("name"), f"{where}.name")
    object_id = obj.get("object_id", name)
    if not isinstance(object_id, str) or object_id == "":
        raise ProvisioningError(
            f"{where}.object_id must be a non-empty string (the measure's key in the payload)"
        )
    kind = kind_of(_type(obj, where, default="Property"))
    scale = _number(obj, "scale", where, default=1.0)
    if scale == 0:
        raise ProvisioningError(f"{where}.scale must not be 0 (every value would become 0)")
    offset = _number(obj, "offset", where, default=0.0)
    if kind != "Property" and (scale != 1.0 or offset != 0.0):
        raise ProvisioningError(
            f"{where}: scale and offset apply to numeric Properties, not to a {kind}"
        )
    return AttributeMapping(
        object_id=object_id,
        name=name,
        kind=kind,
        unit_code=_unit_code(obj.get("metadata"), f"{where}.metadata"),
        scale=scale,
        offset=offset,
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


def _unit_code(metadata: Any, where: str) -> str | None:
    if metadata is None:
        return None
    obj = _object(metadata, where)
    unit = obj.get("unitCode")
    if isinstance(unit, Mapping):
        unit = unit.get("value")
        where = f"{where}.unitCode.value"
    else:
        where = f"{where}.unitCode"
    if unit is None:
        return None
    if not isinstance(unit, str) or not 1 <= len(unit) <= 8:
        raise ProvisioningError(
            f"{where} must be a UN/CEFACT unit code such as CEL, KMH or GQ; got {unit!r}"
        )
    return unit


def _statics(value: Any, where: str) -> tuple[StaticAttribute, ...]:
    items = _optional_list(value, where)
    statics = tuple(_static(item, f"{where}[{index}]") for index, item in enumerate(items))
    _no_duplicates((s.name for s in statics), where, "static attribute name")
    return statics


def _static(item: Any, where: str) -> StaticAttribute:
    obj = _object(item, where)
    name = _name(obj.get("name"), f"{where}.name")
    attribute_type = _type(obj, where, default=None)
    if "value" not in obj or obj["value"] is None:
        raise ProvisioningError(f"{where}.value is required (NGSI-LD has no null values)")
    value = obj["value"]
    kind = kind_of(attribute_type)
    if attribute_type == "geo:point" and isinstance(value, str):
        value = _point(value, f"{where}.value")
    elif kind == "GeoProperty" and not _is_geometry(value):
        raise ProvisioningError(
            f"{where}.value must be a GeoJSON geometry such as "
            '{"type": "Point", "coordinates": [11.25, 43.77]}'
            + (' (or "lat, lon" text for geo:point)' if attribute_type == "geo:point" else "")
        )
    if kind == "Relationship" and not (isinstance(value, str) and _URI.match(value)):
        raise ProvisioningError(
            f"{where}.value of a Relationship must be the URI of the related entity; got {value!r}"
        )
    return StaticAttribute(name=name, kind=kind, value=value)


def _static_to_json(static: StaticAttribute) -> dict[str, Any]:
    return {"name": static.name, "type": static.kind, "value": static.value}


def _point(text: str, where: str) -> dict[str, Any]:
    """An IoT Agent `geo:point` ("lat, lon") as a GeoJSON Point ([lon, lat])."""
    parts = text.split(",")
    try:
        latitude, longitude = (float(part) for part in parts)
    except ValueError:
        raise ProvisioningError(
            f'{where} must be "latitude, longitude" for geo:point; got {text!r}'
        ) from None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise ProvisioningError(f"{where}: {text!r} is not a latitude, longitude pair")
    return {"type": "Point", "coordinates": [longitude, latitude]}


def _is_geometry(value: Any) -> bool:
    if not isinstance(value, Mapping) or not isinstance(value.get("type"), str):
        return False
    if value["type"] == "GeometryCollection":
        return isinstance(value.get("geometries"), list)
    return isinstance(value.get("coordinates"), list)


# ----------------------------------------------------------------- fields and shapes


def _model(
    obj: Mapping[str, Any], where: str, catalogue: Catalogue | None
) -> tuple[str | None, str | None]:
    """`model` and `profile`: names in the datamodels catalogue; a profile implies its model."""
    model = _optional_string(obj, "model", where)
    profile = _optional_string(obj, "profile", where)
    if model is None and profile is None:
        return None, None
    catalogue = catalogue or load_catalogue()
    try:
        if model is not None:
            catalogue.model(model)
        if profile is not None:
            base = catalogue.profile(profile).base
            if model is not None and base != model:
                raise CatalogueError(f"profile {profile!r} applies to {base}, not {model}")
            model = base
    except CatalogueError as exc:
        raise ProvisioningError(f"{where}: {exc}", "BAD_REQUEST") from None
    return model, profile


def _entity_type(obj: Mapping[str, Any], where: str, model: str | None) -> str | None:
    """`entity_type` (or the older `type`), else the model's name."""
    field = "entity_type" if obj.get("entity_type") is not None else "type"
    entity_type = _optional_string(obj, field, where)
    if entity_type is None:
        return model
    if not _NAME.match(entity_type):
        raise ProvisioningError(
            f"{where}.{field} must be a type name such as AirQualityObserved; got {entity_type!r}"
        )
    return entity_type


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_:.-]{0,255}$")


def _format(obj: Mapping[str, Any], where: str) -> Format | None:
    value = obj.get("format")
    if value is None:
        return None
    for known in FORMATS:
        if value == known:
            return known
    raise ProvisioningError(f"{where}.format must be one of {', '.join(FORMATS)}; got {value!r}")


def _key(value: Any, where: str) -> str:
    if not isinstance(value, str) or value == "":
        raise ProvisioningError(f"{where} is required: a non-empty string")
    if not _KEY.match(value):
        raise ProvisioningError(
            f"{where} must be at most 256 characters without '/', '+', '#' or control "
            f"characters (it is a level of the MQTT topic); got {value!r}"
        )
    return value


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or value == "":
        raise ProvisioningError(f"{where} is required: the NGSI-LD attribute name")
    if value in _RESERVED_NAMES or not _NAME.match(value):
        raise ProvisioningError(
            f"{where} must be an attribute name such as temperature (not id, type or scope); "
            f"got {value!r}"
        )
    return value


def _type(obj: Mapping[str, Any], where: str, default: str | None) -> str:
    value = obj.get("type", default)
    if not isinstance(value, str) or value == "":
        raise ProvisioningError(
            f"{where}.type is required: Property, Relationship, GeoProperty, geo:json, "
            "geo:point or a value type such as Number"
        )
    return value


def _timestamp(value: Any, where: str) -> str:
    """IoT Agent `timestamp` (a flag: observedAt is always written) or the measure's name."""
    if value is None or isinstance(value, bool):
        return DEFAULT_TIMESTAMP_FIELD
    if isinstance(value, str) and value != "":
        return value
    raise ProvisioningError(
        f"{where} must be true/false (IoT Agent) or the name of the measure that carries "
        f"the observation time; got {value!r}"
    )


def _flag(obj: Mapping[str, Any], field: str, where: str, *, default: bool) -> bool:
    value = obj.get(field)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if value == "true":
        return True
    if value == "false":
        return False
    extra = " (expressions are not supported)" if field == "explicitAttrs" else ""
    raise ProvisioningError(f"{where}.{field} must be true or false{extra}; got {value!r}")


def _number(obj: Mapping[str, Any], field: str, where: str, *, default: float) -> float:
    value = obj.get(field)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProvisioningError(f"{where}.{field} must be a finite number; got {value!r}")
    return float(value)


def _optional_string(obj: Mapping[str, Any], field: str, where: str) -> str | None:
    value = obj.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or value == "":
        raise ProvisioningError(f"{where}.{field} must be a non-empty string; got {value!r}")
    return value


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProvisioningError(f"{where} must be a JSON object; got {_kind(value)}")
    return value


def _optional_list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ProvisioningError(f"{where} must be a JSON array; got {_kind(value)}")
    return value


def _list_member(body: Any, member: str, where: str) -> list[Any]:
    obj = _object(body, where)
    items = obj.get(member)
    if not isinstance(items, list) or not items:
        raise ProvisioningError(
            f'{where}.{member} is required: a non-empty array, as in {{"{member}": [...]}}'
        )
    return items


def _refuse_unsupported(obj: Mapping[str, Any], where: str) -> None:
    for field, why in _UNSUPPORTED_LISTS.items():
        if obj.get(field):
            raise ProvisioningError(f"{where}.{field}: {why}", "BAD_REQUEST")
    if obj.get("entityNameExp"):
        raise ProvisioningError(
            f"{where}.entityNameExp: expressions are not supported; give entity_name on the "
            "device or entity_id_prefix on the group",
            "BAD_REQUEST",
        )


def _no_duplicates(keys: Iterable[object], where: str, what: str) -> None:
    seen: set[object] = set()
    for key in keys:
        if key in seen:
            shown = "/".join(map(str, key)) if isinstance(key, tuple) else str(key)
            raise ProvisioningError(f"{where}: {what} {shown!r} appears twice")
        seen.add(key)


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, int | float) else "a value")
