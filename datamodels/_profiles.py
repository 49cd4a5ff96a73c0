"""Regional profiles: declarative rules layered over a base model (YAML or JSON files)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from ._types import CatalogueError

_NUMBER = {"type": "number"}
_NAMES = {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True}
PROFILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["base"],
    "additionalProperties": False,
    "properties": {
        "base": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "required": _NAMES,
        "private": _NAMES,
        "attributes": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "unitCode": {"type": "string", "pattern": "^[A-Z0-9]{2,3}$"},
                    "minimum": _NUMBER,
                    "maximum": _NUMBER,
                    "enum": {"type": "array", "minItems": 1},
                    "description": {"type": "string"},
                },
            },
        },
        "personal": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["retention_days"],
                "additionalProperties": False,
                "properties": {
                    "retention_days": {"type": "integer", "minimum": 1},
                    "purpose": {"type": "string"},
                },
            },
        },
    },
}
_PROFILE_VALIDATOR = Draft202012Validator(PROFILE_SCHEMA)


@dataclass(frozen=True, slots=True)
class AttributeRule:
    """What a profile requires of one attribute when it is present."""

    unit_code: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    enum: tuple[Any, ...] | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class PersonalData:
    """An attribute that is personal data (GDPR) and how long it may be kept."""

    retention_days: int
    purpose: str = ""


@dataclass(frozen=True, slots=True)
class Profile:
    """A regional profile, e.g. `toscana/AirQualityObserved`, over its base model."""

    name: str
    base: str
    description: str = ""
    required: tuple[str, ...] = ()
    attributes: Mapping[str, AttributeRule] = field(default_factory=dict)
    personal: Mapping[str, PersonalData] = field(default_factory=dict)
    private: frozenset[str] = frozenset()

    @classmethod
    def from_mapping(cls, name: str, data: Mapping[str, Any]) -> Profile:
        """Build a profile from its parsed file; raises CatalogueError when malformed."""
        errors = sorted(_PROFILE_VALIDATOR.iter_errors(data), key=lambda e: e.json_path)
        if errors:
            detail = "; ".join(f"{e.json_path}: {e.message}" for e in errors)
            raise CatalogueError(f"profile {name!r} is not well formed: {detail}")
        attributes = {
            attr: AttributeRule(
                unit_code=rule.get("unitCode"),
                minimum=rule.get("minimum"),
                maximum=rule.get("maximum"),
                enum=tuple(rule["enum"]) if "enum" in rule else None,
                description=rule.get("description", ""),
            )
            for attr, rule in data.get("attributes", {}).items()
        }
        personal = {
            attr: PersonalData(spec["retention_days"], spec.get("purpose", ""))
            for attr, spec in data.get("personal", {}).items()
        }
        return cls(
            name=name,
            base=data["base"],
            description=data.get("description", ""),
            required=tuple(data.get("required", ())),
            attributes=attributes,
            personal=personal,
            private=frozenset(data.get("private", ())),
        )

    @classmethod
    def from_text(cls, name: str, text: str) -> Profile:
        """Parse a profile from YAML (or JSON, which YAML reads too)."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise CatalogueError(f"profile {name!r} is not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise CatalogueError(f"profile {name!r} must be a mapping")
        return cls.from_mapping(name, data)
