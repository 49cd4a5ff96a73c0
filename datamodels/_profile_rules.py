"""A regional profile's rules checked on one flattened entity: one function per rule kind.

Each check appends the `Violation`s it finds, in the order reports show them: missing
attributes first, then per attribute its allowed values, its range and its unit.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from ._convert import default_instance
from ._paths import dotted, json_path, quoted
from ._profiles import AttributeRule, Profile
from ._types import Violation
from ._units import unit_phrase

if TYPE_CHECKING:
    from ._catalogue import Attribute

Suffixes = Mapping[str, tuple[str | int, ...]]


def check_profile(
    profile: Profile,
    model_attributes: Mapping[str, Attribute],
    *,
    values: Mapping[str, Any],
    suffixes: Suffixes,
    styles: Mapping[str, str],
    entity: Mapping[str, Any],
    violations: list[Violation],
) -> None:
    """Append every violation of `profile` by the entity whose keyValues are `values`."""
    check_required(profile, model_attributes, values, violations)
    for name, rule in profile.attributes.items():
        if name not in values:
            continue
        value = values[name]
        if rule.enum is not None:
            check_enum(profile, name, rule, value, suffixes, violations)
        if isinstance(value, int | float) and not isinstance(value, bool):
            check_range(name, rule, value, suffixes, violations)
        if rule.unit_code is not None and styles.get(name, "bare") != "bare":
            check_unit(name, rule.unit_code, entity[name], suffixes, violations)


def check_required(
    profile: Profile,
    model_attributes: Mapping[str, Attribute],
    values: Collection[str],
    violations: list[Violation],
) -> None:
    """The profile's required attributes, unless the model's schema already reported them."""
    reported: set[str] | None = None
    for name in profile.required:
        if name in values:
            continue
        if reported is None:
            reported = {v.path for v in violations if v.rule == "schema.required"}
        if json_path([name]) in reported:
            continue
        rule = profile.attributes.get(name)
        attribute = model_attributes.get(name)
        about = (rule.description if rule else "") or (attribute.description if attribute else "")
        violations.append(
            Violation(
                json_path([name]),
                "profile.required",
                f"`{name}` is required by profile {profile.name}",
                f"add `{name}`" + (f"; {name}: {about}" if about else ""),
            )
        )


def check_enum(
    profile: Profile,
    name: str,
    rule: AttributeRule,
    value: Any,
    suffixes: Suffixes,
    violations: list[Violation],
) -> None:
    """Each value (or each item of a list value) is one of the profile's allowed values."""
    allowed = rule.enum or ()
    items = value if isinstance(value, list) else [value]
    for index, item in enumerate(items):
        if item in allowed:
            continue
        parts: list[str | int] = [name, *suffixes.get(name, ())]
        where = [*parts, index] if isinstance(value, list) else parts
        shown = ", ".join(f"`{e}`" for e in allowed)
        violations.append(
            Violation(
                json_path(where),
                "profile.enum",
                f"`{dotted(where)}` must be one of {shown}; got {quoted(item)}",
                rule.description or f"profile {profile.name} allows only these values",
            )
        )


def check_range(
    name: str,
    rule: AttributeRule,
    value: float,
    suffixes: Suffixes,
    violations: list[Violation],
) -> None:
    """A number within the profile's minimum and maximum (the minimum is reported first)."""
    if rule.minimum is not None and value < rule.minimum:
        word, sign, limit = "minimum", ">=", rule.minimum
    elif rule.maximum is not None and value > rule.maximum:
        word, sign, limit = "maximum", "<=", rule.maximum
    else:
        return
    unit = f" {unit_phrase(rule.unit_code)}" if rule.unit_code else ""
    parts = [name, *suffixes.get(name, ())]
    violations.append(
        Violation(
            json_path(parts),
            f"profile.{word}",
            f"`{dotted(parts)}` must be {sign} {limit}{unit}; got {value}",
            rule.description or f"check the sensor's calibration and the unit of `{name}`",
        )
    )


def check_unit(
    name: str,
    unit_code: str,
    attribute: Any,
    suffixes: Suffixes,
    violations: list[Violation],
) -> None:
    """The attribute (its default instance, when it has several) carries the profile's unit."""
    instance = default_instance(attribute)
    got = instance.get("unitCode") if isinstance(instance, dict) else None
    if got == unit_code:
        return
    positions = [s for s in suffixes.get(name, ()) if isinstance(s, int)]
    where: list[str | int] = [name, *positions, "unitCode"]
    got_text = quoted(got) if got is not None else "nothing"
    violations.append(
        Violation(
            json_path(where),
            "profile.unitCode",
            f"`{dotted(where)}` must be `{unit_code}`; got {got_text}",
            f'send `{name}` in {unit_phrase(unit_code)} with "unitCode": "{unit_code}" (UN/CEFACT)',
        )
    )
