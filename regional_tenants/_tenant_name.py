"""Tenant names: the one rule for the tenant every interface names (header, CLI, key, slug).

A tenant's data lives in the database `<prefix>_<name>`; MongoDB allows 63 characters
there, so 48 leaves the database prefix up to 14 (the default is `ctx`). Names are
case-insensitive, as MongoDB database names are: `Prato` and `prato` are one tenant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "MAX_TENANT_NAME_LENGTH",
    "InvalidTenantName",
    "TenantName",
    "platform_database",
    "tenant_database",
]

MAX_TENANT_NAME_LENGTH = 48
_RULE = re.compile(rf"[a-z0-9][a-z0-9_-]{{0,{MAX_TENANT_NAME_LENGTH - 1}}}")


class InvalidTenantName(ValueError):
    """A tenant name that breaks the rule; `explain(subject)` states the rule for a header,
    option or field, e.g. `explain("NGSILD-Tenant")`."""

    def __init__(self, given: str) -> None:
        self.given = given
        super().__init__(self.explain("a tenant name"))

    def explain(self, subject: str) -> str:
        return (
            f"{subject} must be 1-{MAX_TENANT_NAME_LENGTH} letters, digits, '-' or '_', "
            f"starting with a letter or digit; got {self.given!r}"
        )


@dataclass(frozen=True, slots=True)
class TenantName:
    """A valid tenant name, folded to lower case (`TenantName.parse("Prato").value == "prato"`)."""

    value: str

    def __post_init__(self) -> None:
        if _RULE.fullmatch(self.value) is None:
            raise InvalidTenantName(self.value)

    @classmethod
    def parse(cls, text: str) -> TenantName:
        """The tenant `text` names, whatever its case; raises InvalidTenantName."""
        # Only ASCII folds safely: "\u212a" (the Kelvin sign) lower-cases to "k".
        if not text.isascii():
            raise InvalidTenantName(text)
        try:
            return cls(text.lower())
        except InvalidTenantName:
            raise InvalidTenantName(text) from None

    def __str__(self) -> str:
        return self.value


def tenant_database(prefix: str, name: str | None) -> str:
    """The database of a tenant's data: `<prefix>` for the default tenant (None)."""
    return prefix if name is None else f"{prefix}_{name}"


def platform_database(prefix: str) -> str:
    """The database of the tenant documents, keys, sharing rules, audit log and @contexts."""
    return f"{prefix}__platform"
