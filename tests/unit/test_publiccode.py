"""publiccode.yml, for the catalogue of public software, follows the publiccode.yml
standard v0.4 (core, and the Italian extension's version key): a JSON Schema of the keys
the standard marks mandatory and of the values it allows."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

_DATE = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
_STRINGS = {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}
# The standard's controlled vocabulary (categories-list), the part this file may use.
_CATEGORIES = [
    "data-analytics",
    "data-collection",
    "data-visualization",
    "geographic-information-systems",
    "it-development",
    "it-management",
]
_LANGUAGE = {
    "type": "object",
    "required": ["shortDescription"],
    "properties": {
        "localisedName": {"type": "string"},
        "shortDescription": {"type": "string", "minLength": 1, "maxLength": 150},
        "longDescription": {"type": "string", "minLength": 150, "maxLength": 10000},
        "features": _STRINGS,
        "documentation": {"type": "string", "format": "uri"},
        "apiDocumentation": {"type": "string", "format": "uri"},
    },
}
_CONTACT = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string", "minLength": 1}, "email": {"type": "string"}},
}
_DEPENDENCY = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "versionMin": {"type": "string"},
        "versionMax": {"type": "string"},
        "version": {"type": "string"},
        "optional": {"type": "boolean"},
    },
    "additionalProperties": False,
}
PUBLICCODE_0_4 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": [
        "publiccodeYmlVersion",
        "name",
        "url",
        "platforms",
        "categories",
        "developmentStatus",
        "softwareType",
        "description",
        "legal",
        "maintenance",
        "localisation",
    ],
    "properties": {
        "publiccodeYmlVersion": {"const": "0.4"},
        "name": {"type": "string", "minLength": 1},
        "url": {"type": "string", "pattern": r"^https?://"},
        "softwareVersion": {"type": "string"},
        "releaseDate": _DATE,
        "platforms": {"anyOf": [{"type": "string"}, _STRINGS]},
        "categories": {**_STRINGS, "items": {"enum": _CATEGORIES}},
        "developmentStatus": {"enum": ["concept", "development", "beta", "stable", "obsolete"]},
        "softwareType": {
            "enum": [
                "standalone/mobile",
                "standalone/iot",
                "standalone/desktop",
                "standalone/web",
                "standalone/backend",
                "standalone/other",
                "addon",
                "library",
                "configurationFiles",
            ]
        },
        "intendedAudience": {
            "type": "object",
            "properties": {"countries": {"type": "array", "items": {"pattern": "^[a-z]{2}$"}}},
        },
        # One sub-section per BCP 47 language tag; at least one language.
        "description": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": r"^[a-z]{2,3}(-[A-Za-z0-9]+)*$"},
            "additionalProperties": _LANGUAGE,
        },
        "legal": {
            "type": "object",
            "required": ["license"],
            "properties": {"license": {"type": "string", "minLength": 1}},
        },
        "maintenance": {
            "type": "object",
            "required": ["type"],
            "properties": {
                "type": {"enum": ["internal", "contract", "community", "none"]},
                "contacts": {"type": "array", "items": _CONTACT, "minItems": 1},
            },
            # Contacts are mandatory when the type is internal or community.
            "if": {"properties": {"type": {"enum": ["internal", "community"]}}},
            "then": {"required": ["contacts"]},
        },
        "localisation": {
            "type": "object",
            "required": ["localisationReady", "availableLanguages"],
            "properties": {
                "localisationReady": {"type": "boolean"},
                "availableLanguages": _STRINGS,
            },
        },
        "dependsOn": {
            "type": "object",
            "properties": {
                kind: {"type": "array", "items": _DEPENDENCY}
                for kind in ("open", "proprietary", "hardware")
            },
            "additionalProperties": False,
        },
        "it": {
            "type": "object",
            "required": ["countryExtensionVersion"],
            "properties": {"countryExtensionVersion": {"const": "1.0"}},
        },
    },
}


def _publiccode() -> dict[str, Any]:
    found: dict[str, Any] = yaml.safe_load((ROOT / "publiccode.yml").read_text())
    return found


def _errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(PUBLICCODE_0_4)
    return [error.message for error in validator.iter_errors(document)]


def test_publiccode_follows_the_standard() -> None:
    assert _errors(_publiccode()) == []


def test_features_and_a_long_description_in_at_least_one_language() -> None:
    """Mandatory "for at least one language" (core: description/[lang]/...)."""
    languages = _publiccode()["description"].values()
    assert any("longDescription" in language for language in languages)
    assert any(language.get("features") for language in languages)


def test_italian_and_english_descriptions_and_the_project_licence() -> None:
    document = _publiccode()
    assert {"it", "en"} <= document["description"].keys()
    assert document["legal"]["license"] == "EUPL-1.2"
    assert "EUROPEAN UNION PUBLIC LICENCE v. 1.2" in (ROOT / "LICENSE").read_text()


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d.pop("url"),
        lambda d: d.update(developmentStatus="alpha"),
        lambda d: d["description"]["en"].update(shortDescription="x" * 151),
        lambda d: d["description"]["it"].update(longDescription="troppo breve"),
        lambda d: d["maintenance"].pop("contacts"),
        lambda d: d["localisation"].pop("availableLanguages"),
        lambda d: d.update(categories=["smart-city"]),
    ],
    ids=[
        "no-url",
        "status",
        "short-too-long",
        "long-too-short",
        "no-contacts",
        "no-languages",
        "category",
    ],
)
def test_the_check_refuses_what_the_standard_forbids(breakage: Any) -> None:
    document = copy.deepcopy(_publiccode())
    breakage(document)
    assert _errors(document) != []
