"""Form detection and conversion between keyValues, concise and normalized NGSI-LD."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._formats import is_uri
from ._types import Entity, Form

if TYPE_CHECKING:
    from ._catalogue import Model
    from ._profiles import Profile

ENTITY_MEMBERS = frozenset({"id", "type", "@context", "scope", "createdAt", "modifiedAt"})
# attribute type -> the member that carries its value
VALUE_MEMBER: dict[str, str] = {
    "Property": "value",
    "GeoProperty": "value",
    "Relationship": "object",
    "LanguageProperty": "languageMap",
    "JsonProperty": "json",
    "VocabProperty": "vocab",
    "ListProperty": "valueList",
    "ListRelationship": "objectList",
}
_CONCISE_TYPE = {
    "object": "Relationship",
    "languageMap": "LanguageProperty",
    "json": "JsonProperty",
    "vocab": "VocabProperty",
    "valueList": "ListProperty",
    "objectList": "ListRelationship",
}
ATTRIBUTE_MEMBERS = frozenset(
    {
        "type",
        *VALUE_MEMBER.values(),
        "observedAt",
        "unitCode",
        "datasetId",
        "createdAt",
        "modifiedAt",
        "deletedAt",
        "instanceId",
        "objectType",
        "lang",
        "expiresAt",
    }
)
GEOJSON_TYPES = frozenset(
    {
        "Point",
        "MultiPoint",
        "LineString",
        "MultiLineString",
        "Polygon",
        "MultiPolygon",
        "GeometryCollection",
    }
)


def is_geojson(value: object) -> bool:
    return (
        isinstance(value, dict)
        and value.get("type") in GEOJSON_TYPES
        and ("coordinates" in value or "geometries" in value)
    )


def attribute_style(value: object) -> str:
    """`normalized`, `concise` or `bare` for one attribute (or one instance of it)."""
    if isinstance(value, dict):
        kind = value.get("type")
        if isinstance(kind, str) and kind in VALUE_MEMBER:
            return "normalized"
        if any(m in value for m in VALUE_MEMBER.values()):
            if kind is None:
                return "concise"
            if isinstance(kind, str) and kind not in GEOJSON_TYPES:
                return "normalized"  # a misspelt attribute type, reported as such
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        styles = {attribute_style(v) for v in value}
        if "bare" not in styles:
            return "normalized" if styles == {"normalized"} else "concise"
    return "bare"


def detect_form(entity: Mapping[str, Any]) -> Form:
    """Normalized when every attribute is typed, keyValues when none is, else concise."""
    seen: set[str] = set()
    for name, value in entity.items():
        if name in ENTITY_MEMBERS:
            continue
        if type(value) is dict and value.get("type") in VALUE_MEMBER:
            seen.add("normalized")  # the common case, without the general test
        else:
            seen.add(attribute_style(value))
    if not seen or seen == {"bare"}:
        return "keyValues"
    if seen == {"normalized"}:
        return "normalized"
    return "concise"


def attribute_type(value: Mapping[str, Any]) -> str:
    """The NGSI-LD attribute type of a normalized or concise attribute."""
    kind = value.get("type")
    if isinstance(kind, str) and kind in VALUE_MEMBER:
        return kind
    for member, implied in _CONCISE_TYPE.items():
        if member in value:
            return implied
    return "GeoProperty" if is_geojson(value.get("value")) else "Property"


def plain_value(kind: str, attribute: Mapping[str, Any]) -> Any:
    value = attribute.get(VALUE_MEMBER[kind])
    if isinstance(value, dict) and value.get("@type") == "DateTime" and "@value" in value:
        return value["@value"]
    return value


def default_instance(value: Any) -> Any:
    """Of a multi-attribute (a list of instances), the one without `datasetId`."""
    if isinstance(value, list):
        for item in value:
            if "datasetId" not in item:
                return item
        return value[0]
    return value


def to_key_values(entity: Mapping[str, Any], *, form: Form | None = None) -> Entity:
    """The keyValues (simplified) form of an entity given in any form; a new dict."""
    if (form or detect_form(entity)) == "keyValues":
        return dict(entity)
    out: Entity = {}
    for name, value in entity.items():
        if name in ENTITY_MEMBERS or attribute_style(value) == "bare":
            out[name] = value
        else:
            instance = default_instance(value)
            out[name] = plain_value(attribute_type(instance), instance)
    return out


def _normalize_attribute(
    name: str, value: Any, model: Model | None, profile: Profile | None, *, bare: bool = False
) -> Any:
    style = "bare" if bare else attribute_style(value)
    if style == "normalized":
        return value
    if style == "concise":
        if isinstance(value, list):
            return [_normalize_attribute(name, v, model, profile) for v in value]
        kind = attribute_type(value)
        out: dict[str, Any] = {"type": kind}
        for member, sub in value.items():
            if member in ATTRIBUTE_MEMBERS:
                out[member] = sub
            else:
                out[member] = _normalize_attribute(member, sub, None, None)
        return out
    spec = model.attributes.get(name) if model is not None else None
    if spec is not None and spec.kind == "Relationship" and is_reference(value):
        return {"type": "Relationship", "object": value}
    if is_geojson(value):
        return {"type": "GeoProperty", "value": value}
    if spec is not None and spec.datetime and isinstance(value, str):
        out = {"type": "Property", "value": {"@type": "DateTime", "@value": value}}
    else:
        out = {"type": "Property", "value": value}
    rule = profile.attributes.get(name) if profile is not None else None
    if rule is not None and rule.unit_code is not None:
        out["unitCode"] = rule.unit_code
    return out


def is_reference(value: Any) -> bool:
    """URIs only: some models declare Relationships whose examples hold plain codes."""
    if isinstance(value, str):
        return is_uri(value)
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, str) and is_uri(v) for v in value)
    )


def to_normalized(
    entity: Mapping[str, Any],
    model: Model | None = None,
    *,
    profile: Profile | None = None,
    form: Form | None = None,
) -> Entity:
    """The normalized form of an entity given in any form; a new dict.

    With a model, references become Relationships, date-time attributes DateTime values
    and the model's @context is added when the entity has none; with a profile, the
    profile's `unitCode` is attached to bare values.
    """
    form = form or detect_form(entity)
    if form == "normalized":
        out = dict(entity)
    else:
        bare = form == "keyValues"
        out = {}
        for name, value in entity.items():
            if name in ENTITY_MEMBERS:
                out[name] = value
            else:
                out[name] = _normalize_attribute(name, value, model, profile, bare=bare)
    if model is not None and "@context" not in out:
        out["@context"] = [model.context]
    return out
