"""The IoT Agent provisioning bodies and parameters, declared once: these models parse the
bodies of `/iot/services` and `/iot/devices` (and the provisioning files of the CLI), and
describe them, field by field, in the API's OpenAPI (`/docs`, `openapi.json`).

Every problem is a `ProvisioningError` naming the JSON path (`$.services[0].apikey ...`),
in the IoT Agent's error names: the field checks raise the project's own messages, and
`parsed` turns pydantic's report into the first of them. Members of the IoT Agent's
bodies that Contesto does not need (`cbroker`, `resource`, `timezone`, ...) are accepted
and ignored; those it cannot honour (`commands`, `lazy`, expressions) are refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal, NoReturn, TypeVar, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from datamodels import Catalogue, CatalogueError, load_catalogue

from ._messages import Format

__all__ = [
    "DEFAULT_PAGE",
    "DEFAULT_TIMESTAMP_FIELD",
    "FORMATS",
    "MAX_PAGE",
    "AttributeBody",
    "DeviceBody",
    "DeviceChanges",
    "DevicesBody",
    "GroupChanges",
    "ProvisioningError",
    "ProvisioningFile",
    "ServiceGroupBody",
    "ServicesBody",
    "StaticAttributeBody",
    "kind_of",
    "parsed",
    "request_body",
]

DEFAULT_PAGE = 20
MAX_PAGE = 1000
FORMATS: tuple[Format, ...] = get_args(Format)
DEFAULT_TIMESTAMP_FIELD = "TimeInstant"
GEO_TYPES = frozenset({"geo:json", "geo:point", "GeoProperty"})
Flag = bool | Literal["true", "false"]
# A key is one MQTT topic level: no separator, no wildcard, no control character.
_KEY = r"^[^/+#\x00-\x1f\x7f]{1,256}$"
_TYPE_NAME = r"^[A-Za-z_][A-Za-z0-9_:.-]{0,255}$"
_KEY_RE = re.compile(_KEY)
_NAME_RE = re.compile(_TYPE_NAME)
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
_RESERVED_NAMES = frozenset({"id", "type", "@context", "scope"})
_UNSUPPORTED_LISTS = {
    "lazy": "lazy attributes are not supported: devices push their measures over MQTT",
    "commands": "commands are not supported: Contesto ingests measures, it does not actuate",
}
_VALUE_TYPES = (
    "Property, Relationship, GeoProperty, geo:json, geo:point or a value type such as Number"
)
# What `... is required` adds, by the member a body lacks.
_REQUIRED = {
    "services": ': a non-empty array, as in {"services": [...]}',
    "devices": ': a non-empty array, as in {"devices": [...]}',
    "apikey": ": a non-empty string",
    "device_id": ": a non-empty string",
    "name": ": the NGSI-LD attribute name",
    "type": f": {_VALUE_TYPES}",
    "value": " (NGSI-LD has no null values)",
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


def kind_of(attribute_type: str) -> str:
    """The NGSI-LD kind an IoT Agent attribute `type` stands for."""
    if attribute_type in GEO_TYPES:
        return "GeoProperty"
    if attribute_type == "Relationship":
        return "Relationship"
    return "Property"


# ------------------------------------------------------------------- field checks


def _refuse(after_path: str, name: str = "WRONG_SYNTAX") -> NoReturn:
    """Refuse the value being checked; `after_path` follows its JSON path in the message."""
    raise PydanticCustomError(name, "{text}", {"text": after_path})


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, int | float) else "a value")


def _key(value: Any) -> str:
    if not isinstance(value, str) or value == "":
        _refuse(" is required: a non-empty string")
    if not _KEY_RE.match(value):
        _refuse(
            " must be at most 256 characters without '/', '+', '#' or control characters "
            f"(it is a level of the MQTT topic); got {value!r}"
        )
    return value


def _optional_key(value: Any) -> str | None:
    return None if value is None else _key(value)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value == "":
        _refuse(f" must be a non-empty string; got {value!r}")
    return value


def _type_name(value: Any) -> str | None:
    text = _text(value)
    if text is not None and not _NAME_RE.match(text):
        _refuse(f" must be a type name such as AirQualityObserved; got {text!r}")
    return text


def _uri_prefix(value: Any) -> str | None:
    text = _text(value)
    if text is not None and not _URI.match(text):
        _refuse(f" must start like a URI (urn:ngsi-ld:Type:); got {text!r}")
    return text


def _format(value: Any) -> Format | None:
    if value is None:
        return None
    for known in FORMATS:
        if value == known:
            return known
    _refuse(f" must be one of {', '.join(FORMATS)}; got {value!r}")


def _flag(why: str = "") -> BeforeValidator:
    def checked(value: Any) -> bool | None:
        if value is None:
            return None
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return bool(value == "true")
        _refuse(f" must be true or false{why}; got {value!r}")

    return BeforeValidator(checked)


def _timestamp(value: Any) -> bool | str | None:
    """IoT Agent `timestamp` (a flag: observedAt is always written) or the measure's name."""
    if value is None or isinstance(value, bool) or (isinstance(value, str) and value != ""):
        return value
    _refuse(
        " must be true/false (IoT Agent) or the name of the measure that carries the "
        f"observation time; got {value!r}"
    )


def _array(value: Any) -> Any:
    if value is None:
        return []
    if not isinstance(value, list):
        _refuse(f" must be a JSON array; got {_kind(value)}")
    return value


def _members(member: str) -> BeforeValidator:
    def checked(value: Any) -> Any:
        if not isinstance(value, list) or not value:
            _refuse(f' is required: a non-empty array, as in {{"{member}": [...]}}')
        return value

    return BeforeValidator(checked)


def _attribute_name(value: Any) -> str:
    if not isinstance(value, str) or value == "":
        _refuse(_REQUIRED_NAME)
    if value in _RESERVED_NAMES or not _NAME_RE.match(value):
        _refuse(
            f" must be an attribute name such as temperature (not id, type or scope); got {value!r}"
        )
    return value


_REQUIRED_NAME = f" is required{_REQUIRED['name']}"


def _attribute_type(value: Any) -> str:
    if not isinstance(value, str) or value == "":
        _refuse(f" is required{_REQUIRED['type']}")
    return value


def _object_id(value: Any) -> str:
    # Only a given value comes here (the default is not checked): null is no key either.
    if not isinstance(value, str) or value == "":
        _refuse(" must be a non-empty string (the measure's key in the payload)")
    return value


def _finite(default: float) -> BeforeValidator:
    def checked(value: Any) -> float:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            _refuse(f" must be a finite number; got {value!r}")
        if not math.isfinite(value):
            _refuse(f" must be a finite number; got {value!r}")
        return float(value)

    return BeforeValidator(checked)


def _unit_code(value: Any) -> str | None:
    where = ""
    if isinstance(value, Mapping):
        value, where = value.get("value"), ".value"
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 8:
        _refuse(f"{where} must be a UN/CEFACT unit code such as CEL, KMH or GQ; got {value!r}")
    return value


def _present(value: Any) -> Any:
    if value is None:
        _refuse(f" is required{_REQUIRED['value']}")
    return value


def _no_duplicates(keys: Iterable[object], where: str, what: str) -> None:
    """Refuse the second of two equal keys; `where` follows the checked value's path."""
    seen: set[object] = set()
    for key in keys:
        if key in seen:
            shown = "/".join(map(str, key)) if isinstance(key, tuple) else str(key)
            _refuse(f"{where}: {what} {shown!r} appears twice")
        seen.add(key)


Key = Annotated[str, BeforeValidator(_key)]
OptionalKey = Annotated[str | None, BeforeValidator(_optional_key)]
Text = Annotated[str | None, BeforeValidator(_text)]
TypeName = Annotated[str | None, BeforeValidator(_type_name)]
T = TypeVar("T")
Items = Annotated[list[T], BeforeValidator(_array)]


# --------------------------------------------------------------------------- bodies


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class UnitCode(_Body):
    type: str = Field("Text", examples=["Text"])
    value: str = Field(min_length=1, max_length=8, examples=["CEL"])


class Metadata(_Body):
    unitCode: Annotated[str | UnitCode | None, BeforeValidator(_unit_code)] = Field(
        None, description="The UN/CEFACT unit code written on the attribute."
    )


class AttributeBody(_Body):
    """One measure of the payload and the NGSI-LD attribute it becomes."""

    name: Annotated[str, BeforeValidator(_attribute_name)] = Field(
        description="The NGSI-LD attribute name.", examples=["temperature"]
    )
    object_id: Annotated[str | None, BeforeValidator(_object_id)] = Field(
        None, min_length=1, description="The measure's key in the payload (default: name)."
    )
    type: Annotated[str, BeforeValidator(_attribute_type)] = Field(
        "Property",
        description="Property, Relationship, GeoProperty, geo:json, geo:point or a value "
        "type such as Number (a Property).",
    )
    metadata: Metadata | None = None
    scale: Annotated[float, _finite(1.0)] = Field(
        1.0, description="Contesto: a number becomes value * scale + offset."
    )
    offset: Annotated[float, _finite(0.0)] = Field(0.0, description="Contesto: see scale.")

    @model_validator(mode="before")
    @classmethod
    def _supported(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for field, why in (
                ("expression", "expressions are not supported; use `scale` and `offset`"),
                ("entity_name", "multi-entity attributes are not supported"),
                ("entity_type", "multi-entity attributes are not supported"),
            ):
                if data.get(field) is not None:
                    _refuse(f".{field}: {why}", "BAD_REQUEST")
        return data

    @model_validator(mode="after")
    def _applies(self) -> AttributeBody:
        if self.scale == 0:
            _refuse(".scale must not be 0 (every value would become 0)")
        kind = kind_of(self.type)
        if kind != "Property" and (self.scale != 1.0 or self.offset != 0.0):
            _refuse(f": scale and offset apply to numeric Properties, not to a {kind}")
        return self

    @property
    def unit_code(self) -> str | None:
        unit = self.metadata.unitCode if self.metadata is not None else None
        return unit.value if isinstance(unit, UnitCode) else unit


class StaticAttributeBody(_Body):
    """An attribute every entity of the group or device carries, e.g. its location."""

    name: Annotated[str, BeforeValidator(_attribute_name)] = Field(examples=["category"])
    type: Annotated[str, BeforeValidator(_attribute_type)] = Field(
        examples=["Property", "Relationship", "geo:json", "geo:point"]
    )
    value: Annotated[Any, BeforeValidator(_present)] = Field(
        description="Any JSON value but null; a GeoJSON geometry for geo types."
    )

    @model_validator(mode="after")
    def _fits_its_type(self) -> StaticAttributeBody:
        kind, value = kind_of(self.type), self.value
        if self.type == "geo:point" and isinstance(value, str):
            self.value = _point(value)
        elif kind == "GeoProperty" and not _is_geometry(value):
            _refuse(
                ".value must be a GeoJSON geometry such as "
                '{"type": "Point", "coordinates": [11.25, 43.77]}'
                + (' (or "lat, lon" text for geo:point)' if self.type == "geo:point" else "")
            )
        if kind == "Relationship" and not (isinstance(value, str) and _URI.match(value)):
            _refuse(
                f".value of a Relationship must be the URI of the related entity; got {value!r}"
            )
        return self


def _point(text: str) -> dict[str, Any]:
    """An IoT Agent `geo:point` ("lat, lon") as a GeoJSON Point ([lon, lat])."""
    try:
        latitude, longitude = (float(part) for part in text.split(","))
    except ValueError:
        _refuse(f'.value must be "latitude, longitude" for geo:point; got {text!r}')
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        _refuse(f".value: {text!r} is not a latitude, longitude pair")
    return {"type": "Point", "coordinates": [longitude, latitude]}


def _is_geometry(value: Any) -> bool:
    if not isinstance(value, Mapping) or not isinstance(value.get("type"), str):
        return False
    if value["type"] == "GeometryCollection":
        return isinstance(value.get("geometries"), list)
    return isinstance(value.get("coordinates"), list)


class _Provisioned(_Body):
    """What groups and devices both carry."""

    format: Annotated[Format | None, BeforeValidator(_format)] = Field(
        None,
        description="Contesto: how the messages arrive (default iotagent-json, or the group's).",
    )
    entity_type: TypeName = Field(
        None, pattern=_TYPE_NAME, description="The entities' NGSI-LD type (default: model)."
    )
    type: TypeName = Field(None, description="The older name of entity_type.")
    model: Text = Field(None, description="Contesto: a data model of the catalogue.")
    profile: Text = Field(
        None, description="Contesto: a regional profile of the catalogue; implies its model."
    )
    attributes: Items[AttributeBody] = Field(default_factory=list)
    static_attributes: Items[StaticAttributeBody] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _supported(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for field, why in _UNSUPPORTED_LISTS.items():
                if data.get(field):
                    _refuse(f".{field}: {why}", "BAD_REQUEST")
            if data.get("entityNameExp"):
                _refuse(
                    ".entityNameExp: expressions are not supported; give entity_name on the "
                    "device or entity_id_prefix on the group",
                    "BAD_REQUEST",
                )
            if data.get("entity_type") is not None:
                # The older name counts only where the newer one is not given.
                data = {k: v for k, v in data.items() if k != "type"}
        return data

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> _Provisioned:
        mappings = self.attributes
        _no_duplicates(
            (m.object_id or m.name for m in mappings), ".attributes", "attribute object_id"
        )
        _no_duplicates((m.name for m in mappings), ".attributes", "attribute name")
        names = (s.name for s in self.static_attributes)
        _no_duplicates(names, ".static_attributes", "static attribute name")
        self._resolve_model((info.context or {}).get("catalogue"))
        return self

    def _resolve_model(self, catalogue: Catalogue | None) -> None:
        """`model` and `profile` are names in the catalogue; a profile implies its model."""
        if self.model is None and self.profile is None:
            return
        catalogue = catalogue or load_catalogue()
        try:
            if self.model is not None:
                catalogue.model(self.model)
            if self.profile is not None:
                base = catalogue.profile(self.profile).base
                if self.model is not None and base != self.model:
                    raise CatalogueError(
                        f"profile {self.profile!r} applies to {base}, not {self.model}"
                    )
                self.model = base
        except CatalogueError as exc:
            _refuse(f": {exc}", "BAD_REQUEST")

    @property
    def resolved_type(self) -> str | None:
        """`entity_type` (or the older `type`), else the model's name."""
        return self.entity_type or self.type or self.model


class GroupChanges(_Provisioned):
    """A service group's fields; on update, those given replace the stored ones."""

    apikey: OptionalKey = Field(
        None, pattern=_KEY, description="The API key that names the group (one MQTT topic level)."
    )
    autoprovision: Annotated[Flag | None, _flag()] = Field(
        None, description="Accept the group's devices that are not provisioned (default true)."
    )
    explicitAttrs: Annotated[Flag | None, _flag(" (expressions are not supported)")] = Field(
        None, description="Keep only the mapped measures (default false)."
    )
    timestamp: Annotated[bool | str | None, BeforeValidator(_timestamp)] = Field(
        None,
        description="true/false (observedAt is always written), or the name of the measure "
        "that carries the observation time (default TimeInstant).",
    )
    entity_id_prefix: Annotated[str | None, BeforeValidator(_uri_prefix)] = Field(
        None,
        description="Contesto: entity ids are the prefix + device id "
        "(default urn:ngsi-ld:<entity_type>:).",
    )


class ServiceGroupBody(GroupChanges):
    apikey: Key = Field(pattern=_KEY, description="The API key that names the group.")

    @model_validator(mode="after")
    def _typed(self) -> ServiceGroupBody:
        if self.resolved_type is None:
            _refuse(
                ".entity_type is required: the NGSI-LD type of the group's entities "
                "(or give `model`, whose name is then the type)"
            )
        return self


class DeviceChanges(_Provisioned):
    """A device's fields; on update, those given replace the stored ones."""

    device_id: OptionalKey = Field(None, pattern=_KEY, description="The device's id.")
    apikey: OptionalKey = Field(
        None, pattern=_KEY, description="Its group's key (default: the group of its type)."
    )
    entity_name: Text = Field(None, description="Its entity's id, a URI.")


class DeviceBody(DeviceChanges):
    device_id: Key = Field(pattern=_KEY, examples=["temperature001"])

    @model_validator(mode="after")
    def _named(self) -> DeviceBody:
        if self.entity_name is not None and not _URI.match(self.entity_name):
            _refuse(
                ".entity_name must be a URI (NGSI-LD entity ids are), e.g. "
                f"urn:ngsi-ld:Device:{self.device_id}; got {self.entity_name!r}"
            )
        return self


class ServicesBody(_Body):
    services: Annotated[list[ServiceGroupBody], _members("services")] = Field(min_length=1)


class DevicesBody(_Body):
    devices: Annotated[list[DeviceBody], _members("devices")] = Field(min_length=1)


class ProvisioningFile(_Body):
    """A provisioning file of the CLI: `{"services": [...], "devices": [...]}`, either
    member optional."""

    services: Annotated[list[ServiceGroupBody] | None, _members("services")] = None
    devices: Annotated[list[DeviceBody] | None, _members("devices")] = None

    @model_validator(mode="before")
    @classmethod
    def _not_empty(cls, data: Any) -> Any:
        if isinstance(data, dict) and "services" not in data and "devices" not in data:
            _refuse(
                ' must have "services" (service groups) and/or "devices", in the IoT Agent shape'
            )
        return data


# -------------------------------------------------------------------------- parsing

M = TypeVar("M", bound=BaseModel)


def parsed(model: type[M], body: Any, catalogue: Catalogue | None = None) -> M:
    """`body` read as `model`, or the ProvisioningError of its first problem, which names
    the JSON path from the body's root `$`."""
    try:
        return model.model_validate(body, context={"catalogue": catalogue})
    except ValidationError as error:
        raise _provisioning_error(error.errors(include_url=False)[0]) from None


def _provisioning_error(problem: Mapping[str, Any]) -> ProvisioningError:
    loc = problem["loc"]
    path = "$" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
    kind, value = problem["type"], problem.get("input")
    if kind in ("WRONG_SYNTAX", "BAD_REQUEST"):
        return ProvisioningError(path + problem["ctx"]["text"], kind)
    if kind == "missing":
        return ProvisioningError(f"{path} is required{_REQUIRED.get(str(loc[-1]), '')}")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return ProvisioningError(f"{path} must be a JSON object; got {_kind(value)}")
    if kind == "list_type":
        return ProvisioningError(f"{path} must be a JSON array; got {_kind(value)}")
    return ProvisioningError(f"{path}: {problem['msg']}; got {value!r}")


# -------------------------------------------------------------------------- OpenAPI


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
