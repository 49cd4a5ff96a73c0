"""Value types shared by the catalogue, the validator and the converters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

JSON: TypeAlias = Any
Entity: TypeAlias = dict[str, Any]
Form: TypeAlias = Literal["normalized", "concise", "keyValues"]
FORMS: tuple[Form, ...] = ("normalized", "concise", "keyValues")


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: where (JSON path), which rule, what is wrong, how to fix it."""

    path: str
    rule: str
    message: str
    hint: str = ""


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """The outcome of validating one entity; `ok` when no violation was found."""

    model: str | None
    profile: str | None
    form: Form
    entity_id: str | None
    violations: tuple[Violation, ...] = ()
    warnings: tuple[Violation, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.violations


class CatalogueError(LookupError):
    """An unknown model or profile, or a profile that is not well formed."""
