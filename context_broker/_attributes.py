"""NGSI-LD attributes: client payload (normalized or concise) <-> stored instance documents.

A stored instance is a dict with the short kind in `type`, the kind's value member
(`value`, `object`, `languageMap`, ...), optional `observedAt`/`unitCode`/`datasetId`,
the system times, and sub-attributes under `sub` keyed by encoded expanded names. A
LanguageProperty also keeps the strings of its languageMap in `lv`, never shown: a query
can compare them (and an index hold them), which it cannot do with the map's values.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from context_broker._errors import BadRequestData
from context_broker._geojson import check_geometry, looks_like_geometry
from context_broker._jsonld import TermMap
from context_broker._names import check_name, check_uri, decode_field, encode_field
from context_broker._time import format_datetime, parse_utc_datetime

Format = Literal["normalized", "concise", "keyValues"]

VALUE_MEMBER = {
    "Property": "value",
    "GeoProperty": "value",
    "Relationship": "object",
    "LanguageProperty": "languageMap",
    "VocabProperty": "vocab",
    "JsonProperty": "json",
    "ListProperty": "valueList",
    "ListRelationship": "objectList",
}
KINDS = frozenset(VALUE_MEMBER)
_NGSI_LD = "https://uri.etsi.org/ngsi-ld/"
_KIND_BY_IRI = {_NGSI_LD + kind: kind for kind in KINDS} | {
    _NGSI_LD + "VocabularyProperty": "VocabProperty"
}
_CONCISE_KIND = {
    "object": "Relationship",
    "languageMap": "LanguageProperty",
    "vocab": "VocabProperty",
    "json": "JsonProperty",
    "valueList": "ListProperty",
    "objectList": "ListRelationship",
    "value": "Property",
}
VALUE_MEMBERS = tuple(dict.fromkeys(VALUE_MEMBER.values()))
NULL_URI = "urn:ngsi-ld:null"
# Clause 4.5: members an attribute of each type must not carry (another type's value member
# and, for relationships and JSON, a unit).
_FOREIGN_MEMBERS = {
    kind: frozenset(VALUE_MEMBERS) - {member}
    | ({"unitCode"} if kind in ("Relationship", "ListRelationship", "JsonProperty") else set())
    for kind, member in VALUE_MEMBER.items()
}
# Clause 4.7.1: the core attributes that are GeoProperties.
GEO_ATTRIBUTES = frozenset(
    _NGSI_LD + name for name in ("location", "observationSpace", "operationSpace")
)
_NULL_IN_CONTAINER = frozenset({"valueList", "objectList", "languageMap"})
_CANONICAL_TIME_LENGTH = len("2026-01-31T12:00:00.000Z")
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*|@none")
CORE_MEMBERS = frozenset(VALUE_MEMBERS) | {
    "type",
    "objectType",
    "observedAt",
    "unitCode",
    "datasetId",
    "createdAt",
    "modifiedAt",
    "deletedAt",
    "expiresAt",
    "instanceId",
    "lang",
    "@context",
    "entityIdSealed",
    "entityTypeSealed",
}
# Members of a stored instance that a full attribute replace resets.
REPLACEABLE_MEMBERS = (
    *VALUE_MEMBERS,
    "lv",
    "objectType",
    "observedAt",
    "ot",
    "unitCode",
    "expiresAt",
    "entityIdSealed",
    "entityTypeSealed",
    "sub",
)
_MAX_DEPTH = 8
_MAX_VALUE_DEPTH = 32
_KEYED_IN_SIMPLIFIED = frozenset({"languageMap", "vocab", "json"})
# Clause 4.5.2.2 and C.11: an attribute's signature is its `ngsildproof`, a Property whose
# value is a W3C Data Integrity proof object, kept as given; entityIdSealed and
# entityTypeSealed are its non-reified members, which no other attribute may carry.
PROOF_IRI = _NGSI_LD + "ngsildproof"
PROOF_FIELD = encode_field(PROOF_IRI)
SEALED_MEMBERS = frozenset({"entityIdSealed", "entityTypeSealed"})


def parse_attribute(
    raw: object, name: str, terms: TermMap, now: datetime, *, null_allowed: bool = True
) -> list[dict[str, Any]]:
    """Parse one attribute of a payload: an instance, or an array of instances by datasetId.
    NGSI-LD Null (a deletion) is refused unless `null_allowed`."""
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise BadRequestData(f"attribute {name!r} is an empty array of instances")
    instances = [
        parse_instance(item, name, terms, now, null_allowed=null_allowed) for item in items
    ]
    if terms.expand(name) in GEO_ATTRIBUTES and any(
        i["type"] != "GeoProperty" and not is_null_instance(i) for i in instances
    ):
        raise BadRequestData(f"attribute {name!r} must be a GeoProperty")
    seen: set[str | None] = set()
    for instance in instances:
        dataset_id = instance.get("datasetId")
        if dataset_id in seen:
            raise BadRequestData(
                f"attribute {name!r} has two instances with the same datasetId {dataset_id!r}"
            )
        seen.add(dataset_id)
    return instances


def parse_instance(
    raw: object,
    name: str,
    terms: TermMap,
    now: datetime,
    depth: int = 0,
    *,
    null_allowed: bool = True,
) -> dict[str, Any]:
    """Parse one attribute instance, in normalized or concise form."""
    if depth > _MAX_DEPTH:
        raise BadRequestData(f"attribute {name!r} nests sub-attributes too deeply")
    if raw is None:
        raise BadRequestData(f"attribute {name!r} has a null value")
    if not isinstance(raw, dict) or looks_like_geometry(raw):
        kind = "GeoProperty" if looks_like_geometry(raw) else "Property"
        if isinstance(raw, list):
            raise BadRequestData(f"sub-attribute {name!r} cannot be an array of instances")
        instance: dict[str, Any] = {"type": kind, "value": raw}
        if kind == "GeoProperty":
            check_geometry(raw, f"attribute {name!r}")
        else:
            check_json_value(raw, f"{name}.value")
        instance["createdAt"] = now
        instance["modifiedAt"] = now
        return instance
    kind = _kind_of(raw, name, terms)
    member = VALUE_MEMBER[kind]
    if member not in raw or raw[member] is None:
        raise BadRequestData(f"attribute {name!r} of type {kind} needs a non-null {member!r}")
    if not _FOREIGN_MEMBERS[kind].isdisjoint(raw) or "@context" in raw:
        wrong = ", ".join(sorted(_FOREIGN_MEMBERS[kind].intersection(raw))) or "@context"
        raise BadRequestData(f"attribute {name!r} of type {kind} cannot carry {wrong}")
    value = raw[member]
    if value == NULL_URI or (member in _NULL_IN_CONTAINER and _is_null_value(member, value)):
        if not null_allowed:
            raise BadRequestData(
                f"attribute {name!r}: {NULL_URI} deletes in an update or merge; a new "
                "entity cannot hold it"
            )
        return _null_instance(kind, raw, name)
    instance = {"type": kind, member: _check_value(kind, value, name, terms)}
    if kind == "LanguageProperty":
        instance["lv"] = language_strings(instance[member])
    if kind == "Relationship" and "objectType" in raw:
        instance["objectType"] = _expand_list(raw["objectType"], "objectType", terms)
    if "observedAt" in raw:
        sent = raw["observedAt"]
        instance["observedAt"] = parse_utc_datetime(sent, f"{name}.observedAt")
        if len(sent) != _CANONICAL_TIME_LENGTH or sent[19] != ".":
            instance["ot"] = sent  # not in the form rendered: answered as sent (clause 4.6.3)
    if "unitCode" in raw:
        if not isinstance(raw["unitCode"], str) or not raw["unitCode"]:
            raise BadRequestData(f"{name}.unitCode must be a UN/CEFACT code string such as CEL")
        instance["unitCode"] = raw["unitCode"]
    if "datasetId" in raw and raw["datasetId"] != "@none":
        instance["datasetId"] = check_uri(raw["datasetId"], f"{name}.datasetId")
    if "expiresAt" in raw:
        # Clause 4.22 (V1.9): a transient attribute; the broker removes it then.
        instance["expiresAt"] = parse_utc_datetime(raw["expiresAt"], f"{name}.expiresAt")
    instance.update(_sealed_members(raw, name, kind, terms))
    instance["createdAt"] = now
    instance["modifiedAt"] = now
    sub: dict[str, Any] = {}
    for key, value in raw.items():
        if key in CORE_MEMBERS:
            continue
        check_name(key, "sub-attribute name")
        sub[encode_field(terms.expand(key))] = parse_instance(
            value, key, terms, now, depth + 1, null_allowed=null_allowed
        )
    if sub:
        instance["sub"] = sub
    return instance


def _sealed_members(raw: dict[str, Any], name: str, kind: str, terms: TermMap) -> dict[str, Any]:
    """The non-reified members of an `ngsildproof` (clause 4.5.2.2): entityIdSealed as given,
    entityTypeSealed expanded like a type (its core term is @vocab); none for another name."""
    if terms.expand(name) != PROOF_IRI:
        if not SEALED_MEMBERS.isdisjoint(raw):
            raise BadRequestData(
                f"attribute {name!r} cannot carry entityIdSealed or entityTypeSealed: only "
                "ngsildproof does (clause 4.5.2.2)"
            )
        return {}
    if kind != "Property" or not isinstance(raw["value"], dict):
        raise BadRequestData(
            f"{name} must be a Property whose value is a Data Integrity proof object "
            "(clause 4.5.2.2)"
        )
    sealed: dict[str, Any] = {}
    if "entityIdSealed" in raw:
        sealed["entityIdSealed"] = check_uri(raw["entityIdSealed"], f"{name}.entityIdSealed")
    if "entityTypeSealed" in raw:
        sealed["entityTypeSealed"] = _expand_list(
            raw["entityTypeSealed"], f"{name}.entityTypeSealed", terms
        )
    return sealed


def _is_null_value(member: str, value: object) -> bool:
    """NGSI-LD Null (clause 4.5.0): urn:ngsi-ld:null, as the one item of a list member or
    the one entry of a languageMap."""
    if value == NULL_URI:
        return True
    if member in ("valueList", "objectList"):
        return value == [NULL_URI]
    return member == "languageMap" and value == {"@none": NULL_URI}


def _null_instance(kind: str, raw: dict[str, Any], name: str) -> dict[str, Any]:
    """The instance a deletion names: its type, NGSI-LD Null and its datasetId if any."""
    instance: dict[str, Any] = {"type": kind, VALUE_MEMBER[kind]: NULL_URI}
    if "datasetId" in raw and raw["datasetId"] != "@none":
        instance["datasetId"] = check_uri(raw["datasetId"], f"{name}.datasetId")
    return instance


def is_null_instance(instance: dict[str, Any]) -> bool:
    """True for a parsed instance whose value is NGSI-LD Null: a deletion."""
    return instance.get(VALUE_MEMBER[instance["type"]]) == NULL_URI


def has_null(instance: dict[str, Any]) -> bool:
    """True when the instance or one of its sub-attributes, at any depth, is NGSI-LD Null."""
    if instance.get(VALUE_MEMBER[instance["type"]]) == NULL_URI:
        return True
    sub = instance.get("sub")
    return sub is not None and any(has_null(item) for item in sub.values())


def _kind_of(raw: dict[str, Any], name: str, terms: TermMap) -> str:
    declared = raw.get("type")
    if declared is None:
        for member, kind in _CONCISE_KIND.items():
            if member in raw:
                if kind == "Property" and looks_like_geometry(raw[member]):
                    return "GeoProperty"
                return kind
        raise BadRequestData(
            f"attribute {name!r} has no 'type' and none of value, object, languageMap, vocab, "
            "json, valueList or objectList"
        )
    if declared in KINDS:
        return str(declared)
    if isinstance(declared, str):
        by_iri = _KIND_BY_IRI.get(terms.expand(declared))
        if by_iri is not None:
            return by_iri
    raise BadRequestData(
        f"attribute {name!r} has type {declared!r}; expected one of {', '.join(sorted(KINDS))}"
    )


def language_strings(language_map: dict[str, str | list[str]]) -> list[str]:
    """The strings of a languageMap, each once, in order (the stored `lv`)."""
    strings: list[str] = []
    for text in language_map.values():
        for item in text if isinstance(text, list) else [text]:
            if item not in strings:
                strings.append(item)
    return strings


def _check_value(kind: str, value: Any, name: str, terms: TermMap) -> Any:
    if kind == "GeoProperty":
        return check_geometry(_decoded_geometry(value), f"attribute {name!r}")
    if kind == "Relationship":
        if isinstance(value, list):
            return [check_uri(v, f"{name}.object") for v in value]
        return check_uri(value, f"{name}.object")
    if kind == "LanguageProperty":
        if not isinstance(value, dict) or not all(
            _LANGUAGE_TAG.fullmatch(k) and (isinstance(v, str) or _is_str_list(v))
            for k, v in value.items()
        ):
            raise BadRequestData(
                f'{name}.languageMap must map language tags to strings, e.g. {{"it": "ciao"}}'
            )
        return value
    if kind == "VocabProperty":
        return _expand_list(value, f"{name}.vocab", terms)
    if kind == "ListProperty":
        if not isinstance(value, list):
            raise BadRequestData(f"{name}.valueList must be an array")
        return check_json_value(value, f"{name}.valueList")
    if kind == "ListRelationship":
        if not isinstance(value, list):
            raise BadRequestData(f"{name}.objectList must be an array")
        # Clause 4.5.22: each entry is an object {"object": uri}; a bare uri is its short form.
        return [
            {
                "object": check_uri(
                    item.get("object") if isinstance(item, dict) else item,
                    f"{name}.objectList item",
                )
            }
            for item in value
        ]
    if kind == "JsonProperty" and not isinstance(value, dict | list):
        raise BadRequestData(f"{name}.json must be a JSON object or array")
    return check_json_value(value, f"{name}.{VALUE_MEMBER[kind]}")


def _decoded_geometry(value: object) -> object:
    """A GeoJSON geometry given as a string (clause 4.7.1) as the object it encodes."""
    if not isinstance(value, str):
        return value
    try:
        decoded: object = json.loads(value)
    except ValueError:
        raise BadRequestData(f"a GeoProperty value must be GeoJSON; got {value!r}") from None
    return decoded


def check_json_value(value: Any, what: str, depth: int = 0) -> Any:
    """Return `value` if the store can hold it: nesting up to 32 levels, integers of 64 bits
    and keys without NUL characters; else raise BadRequestData."""
    if depth > _MAX_VALUE_DEPTH:
        raise BadRequestData(f"{what} nests more than {_MAX_VALUE_DEPTH} levels deep")
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise BadRequestData(f"{what} holds an integer beyond 64 bits: {value}")
    if isinstance(value, list):
        for item in value:
            check_json_value(item, what, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                raise BadRequestData(f"{what} holds a key with a NUL character")
            check_json_value(item, what, depth + 1)
    return value


def _is_str_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _expand_list(value: object, what: str, terms: TermMap) -> str | list[str]:
    if isinstance(value, str) and value:
        return terms.expand(value)
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return [terms.expand(v) for v in value]
    raise BadRequestData(f"{what} must be a term or an array of terms; got {value!r}")


def _compact_list(value: str | list[str], terms: TermMap) -> str | list[str]:
    if isinstance(value, str):
        return terms.compact(value)
    return [terms.compact(v) for v in value]


@dataclass(slots=True, frozen=True)
class RenderOptions:
    """How attributes are shown: representation, system attributes, language choice."""

    format: Format = "normalized"
    sys_attrs: bool = False
    lang: tuple[str, ...] | None = None


def render_attribute(
    instances: list[dict[str, Any]], terms: TermMap, options: RenderOptions
) -> Any:
    if options.format == "keyValues" and (len(instances) > 1 or "datasetId" in instances[0]):
        # Clause 4.5.4: the values of a multi-instance attribute by datasetId.
        return {
            "dataset": {
                instance.get("datasetId", "@none"): render_instance(instance, terms, options)
                for instance in instances
            }
        }
    rendered = [render_instance(instance, terms, options) for instance in instances]
    return rendered[0] if len(rendered) == 1 else rendered


def render_instance(instance: dict[str, Any], terms: TermMap, options: RenderOptions) -> Any:
    kind: str = instance["type"]
    member = VALUE_MEMBER[kind]
    value = instance[member]
    if kind == "VocabProperty":
        value = _compact_list(value, terms)
    language: str | None = None
    if kind == "LanguageProperty" and options.lang is not None:
        language, value = pick_language(value, options.lang)
        kind, member = "Property", "value"
    if options.format == "keyValues":
        # Clause 4.5.4: these keep their member key, which stops JSON-LD expanding the content.
        return {member: value} if member in _KEYED_IN_SIMPLIFIED else value
    out: dict[str, Any] = {}
    if options.format == "normalized":
        out["type"] = kind
    out[member] = value
    if language is not None:
        out["lang"] = language
    if "objectType" in instance:
        out["objectType"] = _compact_list(instance["objectType"], terms)
    if "observedAt" in instance:
        out["observedAt"] = instance.get("ot") or format_datetime(instance["observedAt"])
    if "unitCode" in instance:
        out["unitCode"] = instance["unitCode"]
    if "datasetId" in instance:
        out["datasetId"] = instance["datasetId"]
    if "entityIdSealed" in instance:
        out["entityIdSealed"] = instance["entityIdSealed"]
    if "entityTypeSealed" in instance:
        out["entityTypeSealed"] = _compact_list(instance["entityTypeSealed"], terms)
    if options.sys_attrs:
        out["createdAt"] = format_datetime(instance["createdAt"])
        out["modifiedAt"] = format_datetime(instance["modifiedAt"])
        if "expiresAt" in instance:
            out["expiresAt"] = format_datetime(instance["expiresAt"])
    for field, sub_instance in instance.get("sub", {}).items():
        out[terms.compact(decode_field(field))] = render_instance(sub_instance, terms, options)
    if (
        options.format == "concise"
        and len(out) == 1
        and member == "value"
        and not isinstance(value, dict | list)
    ):
        return value
    return out


def pick_language(language_map: dict[str, Any], wanted: tuple[str, ...]) -> tuple[str, Any]:
    """Choose the entry of a languageMap for the `lang` query parameter (ordered preferences)."""
    for tag in wanted:
        if tag == "*" and language_map:
            first = next(iter(language_map))
            return first, language_map[first]
        if tag in language_map:
            return tag, language_map[tag]
    if "@none" in language_map:
        return "@none", language_map["@none"]
    first = next(iter(language_map))
    return first, language_map[first]


def parse_lang(raw: str) -> tuple[str, ...]:
    """Parse `lang=it,en;q=0.8,*;q=0.1` into tags by descending preference."""
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(raw.split(",")):
        tag, _, param = part.strip().partition(";")
        weight = 1.0
        if param.strip().startswith("q="):
            try:
                weight = float(param.strip()[2:])
            except ValueError:
                raise BadRequestData(f"lang has an invalid quality value in {part!r}") from None
        if tag:
            weighted.append((-weight, position, tag))
    if not weighted:
        raise BadRequestData("lang must name at least one language tag")
    return tuple(tag for _, _, tag in sorted(weighted))
