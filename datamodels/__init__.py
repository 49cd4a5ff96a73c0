"""Regional data models: Smart Data Models with Tuscan profiles, offline validation, conversion.

>>> from datamodels import validate_entity
>>> validate_entity({"id": "urn:ngsi-ld:ParkingSpot:fi-1", "type": "ParkingSpot"}).ok
False
"""

from __future__ import annotations

from typing import Any

from ._catalogue import Attribute, Catalogue, Model, load_catalogue
from ._convert import detect_form, to_key_values, to_normalized
from ._profiles import AttributeRule, PersonalData, Profile
from ._types import CatalogueError, Form, ValidationResult, Violation
from ._validate import Backend, Validator

__all__ = [
    "Attribute",
    "AttributeRule",
    "Backend",
    "Catalogue",
    "CatalogueError",
    "Form",
    "Model",
    "PersonalData",
    "Profile",
    "ValidationResult",
    "Validator",
    "Violation",
    "detect_form",
    "load_catalogue",
    "to_key_values",
    "to_normalized",
    "validate_entity",
]


def validate_entity(
    entity: Any,
    model: str | None = None,
    profile: str | None = None,
    *,
    form: Form | None = None,
    catalogue: Catalogue | None = None,
) -> ValidationResult:
    """Validate one entity against a model (default: its `type`) and optional profile.

    An unknown model is reported as a violation, not raised, so a batch can go on.
    """
    catalogue = catalogue or load_catalogue()
    if model is None and profile is None:
        declared = entity.get("type") if isinstance(entity, dict) else None
        model = declared if isinstance(declared, str) else None
        if model is None or model not in catalogue.models:
            known = ", ".join(catalogue.models)
            found = Violation(
                "$.type",
                "catalogue.model",
                f"no model in the catalogue for type {model!r}",
                f"name a model explicitly; the catalogue has {known}",
            )
            entity_id = entity.get("id") if isinstance(entity, dict) else None
            return ValidationResult(
                None,
                None,
                form or (detect_form(entity) if isinstance(entity, dict) else "keyValues"),
                entity_id if isinstance(entity_id, str) else None,
                (found,),
            )
    return catalogue.validator(model, profile).validate(entity, form=form)
