"""Validation of NGSI-LD identifiers and names, and their encoding as MongoDB field names."""

from __future__ import annotations

import re

from context_broker._errors import BadRequestData

# ETSI GS CIM 009 clause 4.6.2: characters that may not appear in names and identifiers;
# control characters (C0, DEL, C1) are refused everywhere, NUL first of all.
_FORBIDDEN = re.compile(r"[<>\"'=;()\s\\\x00-\x1f\x7f-\x9f]")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`\x00-\x1f\x7f-\x9f]+$")
_SCOPE = re.compile(r"^/[^/\s#+]+(/[^/\s#+]+)*$")

RESERVED_ENTITY_MEMBERS = frozenset(
    {"id", "type", "@id", "@type", "@context", "scope", "createdAt", "modifiedAt", "deletedAt"}
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
