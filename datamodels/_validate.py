"""Compiled validators: NGSI-LD structure, the model's JSON Schema and the profile's rules."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry

from ._convert import (
    ATTRIBUTE_MEMBERS,
    ENTITY_MEMBERS,
    VALUE_MEMBER,
    attribute_style,
    attribute_type,
    default_instance,
    detect_form,
    is_geojson,
    is_reference,
)
from ._formats import FORMAT_HINTS, FORMATS, is_uri, is_utc_instant
from ._paths import dotted, json_path, quoted
from ._profile_rules import check_profile
from ._profiles import Profile
from ._types import Form, ValidationResult, Violation

if TYPE_CHECKING:
    from ._catalogue import Model

Backend: TypeAlias = Literal["auto", "jsonschema", "jsonschema-rs"]
Parts: TypeAlias = list[str | int]
_TYPE_WORDS = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
    "null": "null",
}
_EXAMPLE_INSTANT = "2024-05-01T10:00:00Z"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {float: "number", str: "string", list: "array", dict: "object"}.get(type(value), "null")


def _format_checker(formats: Iterable[str]) -> FormatChecker:
    checker = FormatChecker(formats=())
    for name in formats:
        checker.checks(name)(FORMATS.get(name, lambda _v: True))
    return checker


def _formats_in(node: Any, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        fmt = node.get("format")
        if isinstance(fmt, str):
            found.add(fmt)
        for value in node.values():
            _formats_in(value, found)
    elif isinstance(node, list):
        for value in node:
            _formats_in(value, found)
    return found


def _schema_formats(schema: Mapping[str, Any], registry: Registry[Any]) -> set[str]:
    found = _formats_in(schema, set(FORMATS))
    for uri in registry:
        _formats_in(registry[uri].contents, found)
    return found


def _fast_check(
    schema: Mapping[str, Any], registry: Registry[Any], formats: set[str], backend: Backend
) -> Callable[[Any], bool] | None:
    """A jsonschema-rs `is_valid` with the same formats, when that backend is wanted."""
    if backend == "jsonschema":
        return None
    try:
        jsonschema_rs = importlib.import_module("jsonschema_rs")
    except ImportError:
        if backend == "jsonschema-rs":
            raise
        return None
    rs_registry = jsonschema_rs.Registry([(uri, registry[uri].contents) for uri in registry])
    validator = jsonschema_rs.validator_for(
        dict(schema),
        registry=rs_registry,
        validate_formats=True,
        formats={name: FORMATS.get(name, lambda _v: True) for name in formats},
    )
    is_valid: Callable[[Any], bool] = validator.is_valid
    return is_valid


class Validator:
    """Validates entities against one model and optionally one profile; build once, reuse.

    The schema check runs on the keyValues form. With the `jsonschema-rs` backend it
    decides validity; violations are always reported by `jsonschema`, so both backends
    report the same results.
    """

    __slots__ = ("_attributes", "_fast", "_reference", "_type_names", "model", "profile")

    def __init__(
        self,
        model: Model,
        profile: Profile | None,
        registry: Registry[Any],
        *,
        backend: Backend = "auto",
    ) -> None:
        self.model = model
        self.profile = profile
        formats = _schema_formats(model.schema, registry)
        self._reference = Draft202012Validator(
            model.schema, registry=registry, format_checker=_format_checker(formats)
        )
        self._fast = _fast_check(model.schema, registry, formats, backend)
        self._type_names = {model.name} | ({model.type_iri} if model.type_iri else set())
        self._attributes = model.attributes

    @property
    def backend(self) -> str:
        return "jsonschema-rs" if self._fast is not None else "jsonschema"

    def validate(self, entity: Any, *, form: Form | None = None) -> ValidationResult:
        """Every violation of the entity, in whichever NGSI-LD form it comes."""
        profile_name = self.profile.name if self.profile else None
        if not isinstance(entity, dict):
            found = Violation(
                "$", "ngsi-ld.entity", f"an entity must be a JSON object; got {quoted(entity)}"
            )
            return ValidationResult(
                self.model.name, profile_name, form or "keyValues", None, (found,)
            )
        violations: list[Violation] = []
        warnings: list[Violation] = []
        self._check_identity(entity, violations, warnings)
        form, values, suffixes, styles = self._flatten(entity, form, violations)
        if values.get("type") in self._type_names:
            values["type"] = self.model.name
        if self._fast is None or not self._fast(values):
            seen = {v.path for v in violations}
            for error in self._reference.iter_errors(values):
                for found in self._schema_violations(error, suffixes):
                    if found.path not in seen:
                        seen.add(found.path)
                        violations.append(found)
        if self.profile is not None:
            check_profile(
                self.profile,
                self._attributes,
                values=values,
                suffixes=suffixes,
                styles=styles,
                entity=entity,
                violations=violations,
            )
        entity_id = entity.get("id")
        return ValidationResult(
            self.model.name,
            profile_name,
            form,
            entity_id if isinstance(entity_id, str) else None,
            tuple(violations),
            tuple(warnings),
        )

    # -- NGSI-LD structure -------------------------------------------------------------

    def _check_identity(
        self, entity: dict[str, Any], violations: list[Violation], warnings: list[Violation]
    ) -> None:
        name = self.model.name
        ident = entity.get("id")
        convention = f"urn:ngsi-ld:{name}:"
        if ident is None:
            violations.append(
                Violation(
                    "$.id",
                    "ngsi-ld.id",
                    "the entity has no `id`",
                    f"add an id like {convention}<local-id>",
                )
            )
        elif not isinstance(ident, str) or not is_uri(ident):
            violations.append(
                Violation(
                    "$.id",
                    "ngsi-ld.id",
                    f"`id` must be a URI; got {quoted(ident)}",
                    f"use an id like {convention}<local-id>",
                )
            )
        elif not ident.startswith(convention):
            warnings.append(
                Violation(
                    "$.id",
                    "ngsi-ld.id-convention",
                    f"`id` should start with `{convention}`; got {quoted(ident)}",
                    "the urn:ngsi-ld:<Type>:<local-id> convention makes ids unique per type",
                )
            )
        kind = entity.get("type")
        if kind is None:
            violations.append(
                Violation(
                    "$.type", "ngsi-ld.type", "the entity has no `type`", f'add "type": "{name}"'
                )
            )
        elif kind not in self._type_names:
            violations.append(
                Violation(
                    "$.type",
                    "ngsi-ld.type",
                    f"`type` must be `{name}`; got {quoted(kind)}",
                    f"this entity is validated as {name}; choose the model that matches its type",
                )
            )

    def _flatten(
        self, entity: dict[str, Any], form: Form | None, violations: list[Violation]
    ) -> tuple[Form, dict[str, Any], dict[str, tuple[str | int, ...]], dict[str, str]]:
        """The entity's form (detected when not given), its keyValues, each attribute's
        path to its value, and its style; one pass while every attribute is typed."""
        values: dict[str, Any] = {}
        suffixes: dict[str, tuple[str | int, ...]] = {}
        styles: dict[str, str] = {}
        keyvalues = form == "keyValues"
        typed = False
        for name, value in entity.items():
            if name in ENTITY_MEMBERS:
                values[name] = value
                continue
            if keyvalues:
                values[name] = value
                styles[name] = "bare"
                continue
            if type(value) is dict:
                kind = value.get("type")
                member = VALUE_MEMBER.get(kind) if type(kind) is str else None
                if member is not None:  # the common case: one typed attribute
                    typed = True
                    styles[name] = "normalized"
                    plain = value.get(member)
                    if not (_simple_property(kind, plain, value) or _sound(value)):
                        _check_attribute(value, [name], violations)
                    if (
                        isinstance(plain, dict)
                        and plain.get("@type") == "DateTime"
                        and "@value" in plain
                    ):
                        suffixes[name] = (member, "@value")
                        plain = plain["@value"]
                    else:
                        suffixes[name] = _SUFFIXES[member]
                    values[name] = plain
                    continue
            if form is None:  # as `detect_form`, which a typed attribute cannot turn keyValues
                form = detect_form(entity)
                if form == "keyValues":
                    keyvalues = True
                    values[name] = value
                    styles[name] = "bare"
                    continue
            style = attribute_style(value)
            styles[name] = style
            if style == "bare":
                if form == "normalized":
                    violations.append(
                        Violation(
                            json_path([name]),
                            "ngsi-ld.attribute",
                            f"`{name}` must be an attribute object; got {quoted(value)}",
                            'in normalized form write {"type": "Property", "value": ...}',
                        )
                    )
                values[name] = value
                continue
            prefix: tuple[str | int, ...] = ()
            if isinstance(value, list):
                for index, instance in enumerate(value):
                    _check_attribute(instance, [name, index], violations)
                instance = default_instance(value)
                prefix = (value.index(instance),)
            else:
                instance = value
                _check_attribute(instance, [name], violations)
            kind = attribute_type(instance)
            member = VALUE_MEMBER.get(kind, "value")
            plain = instance.get(member)
            if isinstance(plain, dict) and plain.get("@type") == "DateTime" and "@value" in plain:
                suffixes[name] = (*prefix, member, "@value")
                plain = plain["@value"]
            else:
                suffixes[name] = (*prefix, member)
            values[name] = plain
        if form is None:
            form = "normalized" if typed else "keyValues"
        return form, values, suffixes, styles

    # -- JSON Schema -------------------------------------------------------------------

    def _schema_violations(
        self, error: ValidationError, suffixes: Mapping[str, tuple[str | int, ...]]
    ) -> list[Violation]:
        parts: Parts = list(error.absolute_path)
        if error.validator == "required":
            wanted: Any = error.validator_value
            present: Any = error.instance
            missing = [p for p in wanted if p not in present]
            return [
                Violation(
                    json_path([*parts, p]),
                    "schema.required",
                    f"`{dotted([*parts, p])}` is required by {self.model.name}",
                    self._describe([*parts, p], prefix=f"add `{p}`"),
                )
                for p in missing
            ]
        if parts and isinstance(parts[0], str) and parts[0] in suffixes:
            parts = [parts[0], *suffixes[parts[0]], *parts[1:]]
        return [
            Violation(
                json_path(parts),
                f"schema.{error.validator}",
                _schema_message(error, dotted(parts)),
                self._describe(list(error.absolute_path), error=error),
            )
        ]

    def _describe(
        self, parts: Parts, *, prefix: str = "", error: ValidationError | None = None
    ) -> str:
        bits = [prefix] if prefix else []
        if error is not None:
            if error.validator == "format":
                bits.append(f"send {FORMAT_HINTS.get(str(error.validator_value), 'a valid value')}")
            elif error.validator in {"anyOf", "oneOf"} and error.context:
                closest = best_match(error.context)
                where = dotted([*parts, *closest.relative_path])
                bits.append(f"closest form: {_schema_message(closest, where)}")
        attr = self._attributes.get(str(parts[0])) if parts else None
        if attr is not None and attr.description:
            text = attr.description
            bits.append(f"{attr.name}: {text if len(text) <= 140 else text[:137] + '...'}")
        return "; ".join(bits)


def _schema_message(error: ValidationError, where: str) -> str:
    keyword = error.validator
    expected: Any = error.validator_value
    got: Any = error.instance
    if keyword == "type":
        names = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(_TYPE_WORDS.get(n, n) for n in names)
        return f"`{where}` must be {wanted}; got {quoted(got)} ({_json_type(got)})"
    if keyword == "enum":
        allowed = ", ".join(f"`{v}`" for v in expected)
        return f"`{where}` must be one of {allowed}; got {quoted(got)}"
    if keyword == "const":
        return f"`{where}` must be {quoted(expected)}; got {quoted(got)}"
    if keyword in {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}:
        sign = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
        return f"`{where}` must be {sign[str(keyword)]} {expected}; got {got}"
    if keyword == "format":
        return f"`{where}` must be {FORMAT_HINTS.get(str(expected), expected)}; got {quoted(got)}"
    if keyword == "pattern":
        return f"`{where}` must match the pattern `{expected}`; got {quoted(got)}"
    if keyword in {"minLength", "maxLength"}:
        word = "at least" if keyword == "minLength" else "at most"
        return f"`{where}` must have {word} {expected} characters; got {len(got)}"
    if keyword in {"minItems", "maxItems"}:
        word = "at least" if keyword == "minItems" else "at most"
        return f"`{where}` must have {word} {expected} items; got {len(got)}"
    if keyword == "uniqueItems":
        return f"`{where}` must not repeat items"
    if keyword == "oneOf" and not error.context:
        return f"`{where}` matches more than one of the allowed forms; it must match exactly one"
    if keyword in {"anyOf", "oneOf"}:
        return f"`{where}` does not match any of the allowed forms; got {quoted(got)}"
    return f"`{where}`: {error.message}"


def _check_attribute(attribute: Any, parts: Parts, violations: list[Violation]) -> None:
    """NGSI-LD structure of one normalized or concise attribute and its sub-attributes."""
    if _is_plain_property(attribute):
        return
    if not isinstance(attribute, dict):
        violations.append(
            Violation(
                json_path(parts),
                "ngsi-ld.attribute",
                f"`{dotted(parts)}` must be an attribute object",
            )
        )
        return
    declared = attribute.get("type")
    if declared is not None and declared not in VALUE_MEMBER:
        kinds = ", ".join(VALUE_MEMBER)
        violations.append(
            Violation(
                json_path([*parts, "type"]),
                "ngsi-ld.attribute-type",
                f"`{dotted(parts)}.type` must be one of {kinds}; got {quoted(declared)}",
                "most measurements are a Property; references to other entities a Relationship",
            )
        )
        return
    kind = attribute_type(attribute)
    member = VALUE_MEMBER[kind]
    if member not in attribute:
        violations.append(
            Violation(
                json_path([*parts, member]),
                f"ngsi-ld.{member}",
                f"`{dotted(parts)}` is a {kind} without `{member}`",
                f'write {{"type": "{kind}", "{member}": ...}}',
            )
        )
    else:
        content = attribute[member]
        if content is None:
            violations.append(
                Violation(
                    json_path([*parts, member]),
                    f"ngsi-ld.{member}",
                    f"`{dotted(parts)}.{member}` must not be null",
                    "leave the attribute out when there is no value",
                )
            )
        elif kind == "Relationship" and not is_reference(content):
            violations.append(
                Violation(
                    json_path([*parts, member]),
                    "ngsi-ld.object",
                    f"`{dotted(parts)}.object` must be the URI of an entity; got {quoted(content)}",
                    "e.g. urn:ngsi-ld:Device:aq-fi-0001",
                )
            )
        elif kind == "GeoProperty" and not is_geojson(content):
            violations.append(
                Violation(
                    json_path([*parts, member]),
                    "ngsi-ld.geojson",
                    f"`{dotted(parts)}.value` must be a GeoJSON geometry; got {quoted(content)}",
                    'e.g. {"type": "Point", "coordinates": [11.2558, 43.7696]} (longitude first)',
                )
            )
    observed = attribute.get("observedAt")
    if observed is not None and not is_utc_instant(observed):
        violations.append(
            Violation(
                json_path([*parts, "observedAt"]),
                "ngsi-ld.observedAt",
                f"`{dotted(parts)}.observedAt` must be an ISO 8601 date-time in UTC; "
                f"got {quoted(observed)}",
                f"e.g. {_EXAMPLE_INSTANT}: convert local time to UTC and end with Z",
            )
        )
    unit = attribute.get("unitCode")
    if unit is not None and not isinstance(unit, str):
        violations.append(
            Violation(
                json_path([*parts, "unitCode"]),
                "ngsi-ld.unitCode",
                f"`{dotted(parts)}.unitCode` must be a UN/CEFACT code string; got {quoted(unit)}",
                'e.g. "CEL" for degrees Celsius',
            )
        )
    dataset = attribute.get("datasetId")
    if dataset is not None and not (isinstance(dataset, str) and is_uri(dataset)):
        violations.append(
            Violation(
                json_path([*parts, "datasetId"]),
                "ngsi-ld.datasetId",
                f"`{dotted(parts)}.datasetId` must be a URI; got {quoted(dataset)}",
                "e.g. urn:ngsi-ld:Dataset:sensor-a",
            )
        )
    for name, sub in attribute.items():
        if name not in ATTRIBUTE_MEMBERS and attribute_style(sub) != "bare":
            _check_attribute(sub, [*parts, name], violations)


_SUFFIXES: dict[str, tuple[str | int, ...]] = {m: (m,) for m in VALUE_MEMBER.values()}
_PLAIN_MEMBERS = frozenset({"type", "value", "unitCode", "observedAt"})


def _is_plain_property(attribute: Any) -> bool:
    """The common case, checked cheaply: a Property with a value, a unit and a time."""
    if not isinstance(attribute, dict) or attribute.get("type") != "Property":
        return False
    if attribute.get("value") is None or not _PLAIN_MEMBERS.issuperset(attribute):
        return False
    unit = attribute.get("unitCode", "")
    observed = attribute.get("observedAt")
    return isinstance(unit, str) and (observed is None or is_utc_instant(observed))


def _simple_property(kind: object, content: Any, attribute: dict[str, Any]) -> bool:
    """A Property with a value and at most a unit: sound, as `_sound` would find."""
    if kind != "Property" or content is None:
        return False
    size = len(attribute)
    return size == 2 or (size == 3 and type(attribute.get("unitCode")) is str)


def _reference_only(attribute: Any) -> bool:
    """A Relationship to one entity and nothing else (`observedBy`): sound."""
    if type(attribute) is not dict or len(attribute) != 2:
        return False
    target = attribute.get("object")
    return attribute.get("type") == "Relationship" and type(target) is str and is_uri(target)


def _sound(attribute: Any) -> bool:
    """True only when `_check_attribute` would find nothing; cheap, without messages."""
    if type(attribute) is not dict:
        return False
    kind = attribute.get("type")
    member = VALUE_MEMBER.get(kind) if type(kind) is str else None
    if member is None:
        return False
    content = attribute.get(member)
    if content is None:
        return False
    if kind == "Relationship":
        if not (is_uri(content) if type(content) is str else is_reference(content)):
            return False
    elif kind == "GeoProperty" and not is_geojson(content):
        return False
    if len(attribute) == 2:  # `type` and its value member only
        return True
    for key, sub in attribute.items():
        if key in ATTRIBUTE_MEMBERS:
            if sub is None:
                continue
            if key == "observedAt":
                if not is_utc_instant(sub):
                    return False
            elif key == "unitCode":
                if type(sub) is not str:
                    return False
            elif key == "datasetId" and not (type(sub) is str and is_uri(sub)):
                return False
        elif isinstance(sub, dict | list) and not (
            _reference_only(sub) or _sound(sub) or attribute_style(sub) == "bare"
        ):
            return False
    return True
