"""Tenant slugs: the names the region gives the tenants it onboards, e.g. "san-giuliano-terme".

Every slug is a `TenantName`, in a stricter form: it starts with a letter, and words are
joined by single hyphens.
"""

from __future__ import annotations

import re
import unicodedata

from ._tenant_name import MAX_TENANT_NAME_LENGTH

# Sharing-rule target keywords; a tenant with one of these names would be ambiguous there.
RESERVED_SLUGS = frozenset({"region", "comuni-it-lies-in"})
_SLUG = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def slugify(name: str) -> str:
    """Fold a name to a slug: accents dropped, lowercase, other runs of characters become "-"."""
    decomposed = unicodedata.normalize("NFKD", name)
    ascii_only = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return _NOT_ALNUM.sub("-", ascii_only).strip("-")


def valid_slug(slug: str) -> bool:
    """True for a canonical tenant slug, e.g. "san-giuliano-terme" (not "San-Giuliano-Terme").

    Tenant names are case-insensitive in this broker: casefold a requested name before asking.
    """
    return (
        len(slug) <= MAX_TENANT_NAME_LENGTH
        and _SLUG.fullmatch(slug) is not None
        and slug not in RESERVED_SLUGS
    )
