"""The IoT Agent provisioning bodies and parameters, declared for the API's OpenAPI description.

These models say what `/iot/services` and `/iot/devices` take, field by field, so `/docs`
and `openapi.json` show it; the bodies themselves are read by `_provisioning.py`, whose
messages name the JSON path of every problem. Members of the IoT Agent's bodies that
Contesto does not need (`cbroker`, `resource`, `timezone`, ...) are accepted and ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ._messages import Format

__all__ = [
    "DEFAULT_PAGE",
    "MAX_PAGE",
    "DeviceBody",
    "DeviceChanges",
    "DevicesBody",
    "GroupChanges",
    "ServicesBody",
    "request_body",
]

DEFAULT_PAGE = 20
MAX_PAGE = 1000
Flag = bool | Literal["true", "false"]
_KEY = r"^[^/+#\x00-\x1f\x7f]{1,256}$"
_TYPE_NAME = r"^[A-Za-z_][A-Za-z0-9_:.-]{0,255}$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class UnitCode(_Body):
    type: str = Field("Text", examples=["Text"])
    value: str = Field(min_length=1, max_length=8, examples=["CEL"])


class Metadata(_Body):
    unitCode: str | UnitCode | None = Field(
        None, description="The UN/CEFACT unit code written on the attribute."
    )


class AttributeBody(_Body):
    """One measure of the payload and the NGSI-LD attribute it becomes."""

    name: str = Field(description="The NGSI-LD attribute name.", examples=["temperature"])
    object_id: str | None = Field(
        None, min_length=1, description="The measure's key in the payload (default: name)."
    )
    type: str = Field(
        "Property",
        description="Property, Relationship, GeoProperty, geo:json, geo:point or a value "
        "type such as Number (a Property).",
    )
    metadata: Metadata | None = None
    scale: float = Field(1.0, description="Contesto: a number becomes value * scale + offset.")
    offset: float = Field(0.0, description="Contesto: see scale.")


class StaticAttributeBody(_Body):
    """An attribute every entity of the group or device carries, e.g. its location."""

    name: str = Field(examples=["category"])
    type: str = Field(examples=["Property", "Relationship", "geo:json", "geo:point"])
    value: Any = Field(description="Any JSON value but null; a GeoJSON geometry for geo types.")


class _Provisioned(_Body):
    """What groups and devices both carry."""

    format: Format | None = Field(
        None,
        description="Contesto: how the messages arrive (default iotagent-json, or the group's).",
    )
    entity_type: str | None = Field(
        None, pattern=_TYPE_NAME, description="The entities' NGSI-LD type (default: model)."
    )
    model: str | None = Field(None, description="Contesto: a data model of the catalogue.")
    profile: str | None = Field(
        None, description="Contesto: a regional profile of the catalogue; implies its model."
    )
    attributes: list[AttributeBody] = Field(default_factory=list)
    static_attributes: list[StaticAttributeBody] = Field(default_factory=list)


class GroupChanges(_Provisioned):
    """A service group's fields; on update, those given replace the stored ones."""

    apikey: str | None = Field(
        None, pattern=_KEY, description="The API key that names the group (one MQTT topic level)."
    )
    autoprovision: Flag | None = Field(
        None, description="Accept the group's devices that are not provisioned (default true)."
    )
    explicitAttrs: Flag | None = Field(
        None, description="Keep only the mapped measures (default false)."
    )
    timestamp: bool | str | None = Field(
        None,
        description="true/false (observedAt is always written), or the name of the measure "
        "that carries the observation time (default TimeInstant).",
    )
    entity_id_prefix: str | None = Field(
        None,
        description="Contesto: entity ids are the prefix + device id "
        "(default urn:ngsi-ld:<entity_type>:).",
    )


class ServiceGroupBody(GroupChanges):
    apikey: str = Field(pattern=_KEY, description="The API key that names the group.")


class DeviceChanges(_Provisioned):
    """A device's fields; on update, those given replace the stored ones."""

    device_id: str | None = Field(None, pattern=_KEY, description="The device's id.")
    apikey: str | None = Field(
        None, pattern=_KEY, description="Its group's key (default: the group of its type)."
    )
    entity_name: str | None = Field(None, description="Its entity's id, a URI.")


class DeviceBody(DeviceChanges):
    device_id: str = Field(pattern=_KEY, examples=["temperature001"])


class ServicesBody(_Body):
    services: list[ServiceGroupBody] = Field(min_length=1)


class DevicesBody(_Body):
    devices: list[DeviceBody] = Field(min_length=1)


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI `requestBody` of a JSON body `model`, self-contained (no `$ref`)."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})
    return {
        "required": True,
        "content": {"application/json": {"schema": _inlined(schema, definitions)}},
    }


def _inlined(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        reference = node.get("$ref")
        if isinstance(reference, str):
            return _inlined(definitions[reference.rsplit("/", 1)[-1]], definitions)
        return {key: _inlined(value, definitions) for key, value in node.items()}
    if isinstance(node, list):
        return [_inlined(item, definitions) for item in node]
    return node
