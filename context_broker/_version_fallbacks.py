"""Answers in an earlier NGSI-LD version (ETSI GS CIM 009 V1.9 clause 4.3.6.8): which
version a client prefers (`Prefer: ngsi-ld=<major.minor>`, RFC 7240) and the fallbacks of
Tables 4.3.6.8-1 (entity), -2 (Property) and -3 (Relationship) that make an entity payload
conform to it. Pure: takes header values and decoded JSON, returns results."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

Version = tuple[int, int]

# The version whose members the broker's entity payloads use (expiresAt is a V1.9 member).
NATIVE: Version = (1, 9)
OLDEST: Version = (1, 0)
_VERSION = re.compile(r"(\d{1,3})\.(\d{1,3})(?:\.\d{1,3})?")
_ENTITY_MEMBERS = frozenset(
    {"id", "type", "scope", "createdAt", "modifiedAt", "deletedAt", "expiresAt", "@context"}
)
_ATTRIBUTE_MEMBERS = frozenset(
    {
        "type",
        "value",
        "object",
        "languageMap",
        "json",
        "vocab",
        "valueList",
        "objectList",
        "datasetId",
        "observedAt",
        "unitCode",
        "objectType",
        "valueType",
        "expiresAt",
        "createdAt",
        "modifiedAt",
        "deletedAt",
        "instanceId",
        "lang",
    }
)
# Table 4.3.6.8-1: the attribute types an earlier version lacks, reformatted as the type it
# has (value member renamed), with the version that introduced them.
_REFORMATTED = {
    "LanguageProperty": ((1, 4), "Property", "languageMap", "value"),
    "JsonProperty": ((1, 8), "Property", "json", "value"),
    "VocabProperty": ((1, 8), "Property", "vocab", "value"),
    "ListProperty": ((1, 8), "Property", "valueList", "value"),
    "ListRelationship": ((1, 8), "Relationship", "objectList", "object"),
}
_CONCISE_MEMBER = {member: kind for kind, (_, _, member, _) in _REFORMATTED.items()}
# Tables 4.3.6.8-2 and -3: members removed from the payload, with the version they came in.
_REMOVED_MEMBERS = (
    ("datasetId", (1, 3)),
    ("observedAt", (1, 3)),
    ("unitCode", (1, 3)),
    ("objectType", (1, 8)),
    ("expiresAt", (1, 9)),
    ("valueType", (1, 9)),
)


def preferred_version(prefer_headers: Iterable[str]) -> Version | None:
    """The version of the first `ngsi-ld` preference of the Prefer header(s), or None when
    there is none or it is not a version (RFC 7240 section 2: only the first instance of a
    preference counts, parameters such as `q` and anything unparsable are ignored)."""
    for header in prefer_headers:
        for preference in header.split(","):
            token, _, value = preference.split(";", 1)[0].partition("=")
            if token.strip().lower() != "ngsi-ld":
                continue
            match = _VERSION.fullmatch(value.strip().strip('"'))
            if match is None:
                return None
            version = (int(match[1]), int(match[2]))
            return version if version >= OLDEST else None
    return None


def applied_version(preferred: Version) -> Version:
    """The version the answer conforms to: the one preferred, or the broker's own when the
    client prefers a later one (it cannot answer in a version it does not know)."""
    return min(preferred, NATIVE)


def amend_payload(payload: Any, version: Version) -> Any:
    """An entity payload (entity, array of entities, GeoJSON Feature or FeatureCollection)
    amended in place to conform to `version`; returned for convenience."""
    if version >= NATIVE:
        return payload
    if isinstance(payload, list):
        for item in payload:
            amend_payload(item, version)
    elif isinstance(payload, dict):
        if payload.get("type") == "FeatureCollection":
            for feature in payload.get("features", ()):
                amend_payload(feature, version)
        elif payload.get("type") == "Feature":
            if isinstance(payload.get("properties"), dict):
                _amend_entity(payload["properties"], version)
        else:
            _amend_entity(payload, version)
    return payload


def _amend_entity(entity: dict[str, Any], version: Version) -> None:
    if version < (1, 9):
        entity.pop("expiresAt", None)
    if version < (1, 4):
        entity.pop("scope", None)
    if version < (1, 3) and isinstance(entity.get("type"), list) and entity["type"]:
        entity["type"] = entity["type"][0]  # note 1: one type, the first
    for name in [key for key in entity if key not in _ENTITY_MEMBERS]:
        entity[name] = _amend_attribute(entity[name], version)


def _amend_attribute(attribute: Any, version: Version) -> Any:
    if isinstance(attribute, list):
        instances = [item for item in attribute if _is_attribute(item)]
        if len(instances) != len(attribute) or not instances:
            return attribute  # a keyValues value that happens to be an array
        if version < (1, 3):
            # notes 2 and 3: one instance, the default one if there is one
            chosen = next((i for i in instances if "datasetId" not in i), instances[0])
            return _amend_instance(chosen, version)
        return [_amend_instance(instance, version) for instance in instances]
    if _is_attribute(attribute):
        return _amend_instance(attribute, version)
    return attribute


def _is_attribute(item: object) -> bool:
    """An attribute instance in normalized or concise form (not a keyValues value)."""
    return isinstance(item, dict) and (
        item.get("type") in ("Property", "GeoProperty", "Relationship", *_REFORMATTED)
        or (
            "type" not in item
            and any(member in item for member in ("value", "object", *_CONCISE_MEMBER))
        )
    )


def _amend_instance(instance: dict[str, Any], version: Version) -> dict[str, Any]:
    kind = instance.get("type")
    for member, concise_kind in _CONCISE_MEMBER.items():
        if kind is None and member in instance:
            kind = concise_kind
    reformat = _REFORMATTED.get(kind) if isinstance(kind, str) else None
    if reformat is not None and version < reformat[0] and reformat[2] in instance:
        _, new_kind, old_member, new_member = reformat
        if "type" in instance:
            instance["type"] = new_kind
        moved = instance.pop(old_member)
        if old_member == "objectList" and isinstance(moved, list):
            # a Relationship's object is a URI or URIs, not objectList's {"object": ...}
            moved = [item.get("object") if isinstance(item, dict) else item for item in moved]
        instance[new_member] = moved
    for member, introduced in _REMOVED_MEMBERS:
        if version < introduced:
            instance.pop(member, None)
    for name in [key for key in instance if key not in _ATTRIBUTE_MEMBERS]:
        instance[name] = _amend_attribute(instance[name], version)
    return instance
