"""Validation of NGSI-LD identifiers and names, and their encoding as MongoDB field names."""

from __future__ import annotations

import re

from context_broker._errors import BadRequestData

# ETSI GS CIM 009 clause 4.6.2: characters that may not appear in names and identifiers;
# control characters (C0, DEL, C1) are refused everywhere, NUL first of all.
# Characters no IRI holds (RFC 3987 2.2 and 4.1): format characters such as bidi overrides,
# zero-width characters and the BOM, variation selectors, noncharacters and blank fillers.
_INVISIBLE = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u2800\u3164\ufdd0-\ufdef\ufe00-\ufe0f\ufeff\uffa0\ufff0-\uffff"
    "\U000e0000-\U000e0fff\U0001fffe\U0001ffff"
)
_URI = re.compile(
    r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`\x00-\x1f\x7f-\x9f" + _INVISIBLE + "]+$"
)
_FORBIDDEN = re.compile(r"[<>\"'=;()\s\\\x00-\x1f\x7f-\x9f" + _INVISIBLE + "]")
_SCOPE = re.compile(r"^/[^/\s#+]+(/[^/\s#+]+)*$")

RESERVED_ENTITY_MEMBERS = frozenset(
    {"id", "type", "@id", "@type", "@context", "scope", "createdAt", "modifiedAt", "deletedAt"}
    | {"expiresAt"}
)
# Clause 4.6.3: core terms that name members of an attribute, never an attribute.
RESERVED_ATTRIBUTE_TERMS = frozenset(
    {
        "value",
        "object",
        "objectType",
        "languageMap",
        "vocab",
        "json",
        "valueList",
        "objectList",
        "lang",
        "datasetId",
        "instanceId",
        "observedAt",
        "unitCode",
        "previousValue",
        "previousObject",
        "previousLanguageMap",
        "previousVocab",
        "previousJson",
        "previousValueList",
        "previousObjectList",
    }
)


def check_uri(value: object, what: str) -> str:
    """Return `value` if it is an absolute URI, else raise BadRequestData naming `what`."""
    if not isinstance(value, str) or not _URI.match(value):
        raise BadRequestData(f"{what} must be a URI (e.g. urn:ngsi-ld:Type:id); got {value!r}")
    return value


def check_name(value: object, what: str) -> str:
    """Return `value` if it is a valid attribute or type name, else raise BadRequestData."""
    if not isinstance(value, str) or not value:
        raise BadRequestData(f"{what} must be a non-empty string; got {value!r}")
    if _FORBIDDEN.search(value):
        raise BadRequestData(f"{what} {value!r} contains a character not allowed in NGSI-LD names")
    if not (value[0].isalpha() or value[0] == "_"):
        raise BadRequestData(f"{what} {value!r} must start with a letter (a term) or be an IRI")
    return value


def check_scope(value: object) -> list[str]:
    """Validate a `scope` member (a string or a list of strings like /Tuscany/Prato)."""
    scopes = value if isinstance(value, list) else [value]
    for scope in scopes:
        if not isinstance(scope, str) or not _SCOPE.match(scope):
            raise BadRequestData(f"scope must be a path such as /Toscana/Prato; got {scope!r}")
    return [str(scope) for scope in scopes]


def encode_field(iri: str) -> str:
    """MongoDB field names cannot hold dots: store expanded names with '=' in their place."""
    return iri.replace(".", "=")


def decode_field(field: str) -> str:
    return field.replace("=", ".")
