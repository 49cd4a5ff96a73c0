"""Sharing rules: a publishing tenant projects copies of some entities into other tenants.

A copy keeps the entity's id and type, only the rule's allow-listed attributes (never a
profile's private or personal ones), and gains a Property `sharedBy` naming the owner.
`location` is copied only when allow-listed: the geofence always reads the owner's location,
and a copy says which comune it concerns by the tenant it lands in, not by coordinates.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from datamodels import Profile

from ._routing import BoundaryIndex
from ._slugs import valid_slug
from ._tenants import REGION_TENANT

COMUNI_IT_LIES_IN = "comuni-it-lies-in"
REGION = "region"
SHARED_BY = "sharedBy"
_NOT_ATTRIBUTES = frozenset({"id", "type", "@context", "scope", SHARED_BY})
_SYSTEM_MEMBERS = frozenset({"createdAt", "modifiedAt", "deletedAt"})


@dataclass(frozen=True, slots=True)
class SharingRule:
    """What `owner` shares: entity types, allowed attributes, and where the copies go.

    `targets` holds tenant slugs and/or COMUNI_IT_LIES_IN (the comuni whose boundary the
    entity's location intersects) and/or REGION (the tenant `toscana`).
    """

    name: str
    owner: str
    entity_types: tuple[str, ...]
    attributes: tuple[str, ...]
    targets: tuple[str, ...]
    private: tuple[str, ...] = ()
    personal: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems = []
        if not self.name:
            problems.append("a rule needs a name")
        if not valid_slug(self.owner):
            problems.append(f"owner {self.owner!r} is not a valid tenant slug")
        if not self.entity_types:
            problems.append("a rule needs at least one entity type")
        if not self.targets:
            problems.append("a rule needs at least one target")
        problems += [
            f"target {target!r} is neither a tenant slug nor {COMUNI_IT_LIES_IN!r}/{REGION!r}"
            for target in self.targets
            if target not in {COMUNI_IT_LIES_IN, REGION} and not valid_slug(target)
        ]
        problems += [
            f"{name!r} is not an attribute that a rule can share"
            for name in self.attributes
            if name in _NOT_ATTRIBUTES or name in _SYSTEM_MEMBERS
        ]
        if problems:
            raise ValueError(f"sharing rule {self.name!r}: " + "; ".join(problems))

    @property
    def shared_attributes(self) -> frozenset[str]:
        """The allow-list minus every private or personal attribute."""
        return frozenset(self.attributes) - frozenset(self.private) - frozenset(self.personal)

    def with_profile(self, profile: Profile) -> SharingRule:
        """This rule, also withholding the profile's private and personal attributes."""
        return replace(
            self,
            private=_union(self.private, profile.private),
            personal=_union(self.personal, profile.personal),
        )

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-ready dict."""
        return {
            "name": self.name,
            "owner": self.owner,
            "entity_types": list(self.entity_types),
            "attributes": list(self.attributes),
            "targets": list(self.targets),
            "private": list(self.private),
            "personal": list(self.personal),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SharingRule:
        """The inverse of `to_dict`; raises ValueError on a malformed rule."""
        try:
            fields = ("entity_types", "attributes", "targets", "private", "personal")
            lists = {key: _names(data.get(key, ()), key) for key in fields}
            return cls(name=data["name"], owner=data["owner"], **lists)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a sharing rule: {exc!r}") from None


def project(
    entity: Mapping[str, Any], rule: SharingRule, index: BoundaryIndex
) -> list[tuple[str, dict[str, Any]]]:
    """The (target tenant, copy) pairs the rule makes of one NGSI-LD normalized entity.

    Nothing for another type, for an entity that is itself a copy (copies are never shared
    on), or for a target that is the owner. A location outside every comune reaches no comune.
    """
    types = entity.get("type")
    declared = {types} if isinstance(types, str) else set(types or ())
    if declared.isdisjoint(rule.entity_types) or SHARED_BY in entity:
        return []
    targets = _targets(entity, rule, index)
    if not targets:
        return []
    shared = rule.shared_attributes
    withheld = frozenset(rule.private) | frozenset(rule.personal)
    projected: dict[str, Any] = {"id": entity["id"], "type": copy.deepcopy(types)}
    for name, value in entity.items():
        if name in shared:
            projected[name] = _without(value, withheld)
    projected[SHARED_BY] = {"type": "Property", "value": rule.owner}
    if "@context" in entity:
        projected["@context"] = copy.deepcopy(entity["@context"])
    return [(target, copy.deepcopy(projected)) for target in targets]


def _targets(entity: Mapping[str, Any], rule: SharingRule, index: BoundaryIndex) -> list[str]:
    found: list[str] = []
    for target in rule.targets:
        if target == COMUNI_IT_LIES_IN:
            found += _comuni_of(entity, index)
        else:
            found.append(REGION_TENANT if target == REGION else target)
    return [t for t in dict.fromkeys(found) if t != rule.owner]


def _comuni_of(entity: Mapping[str, Any], index: BoundaryIndex) -> tuple[str, ...]:
    location = entity.get("location")
    if isinstance(location, list):  # multi-attribute: the default instance, else the first
        defaults = [i for i in location if isinstance(i, Mapping) and "datasetId" not in i]
        location = (defaults or location or [None])[0]
    value = location.get("value") if isinstance(location, Mapping) else None
    if isinstance(value, str):  # a GeoJSON geometry serialized as a string
        try:
            value = json.loads(value)
        except ValueError:
            return ()
    if not isinstance(value, Mapping):
        return ()
    try:
        return index.comuni_for(value)
    except ValueError:
        return ()


def _without(value: Any, withheld: frozenset[str]) -> Any:
    """A deep copy of an attribute (or its instances) without withheld sub-attributes."""
    if isinstance(value, list):
        return [_without(instance, withheld) for instance in value]
    if isinstance(value, Mapping):
        return {k: copy.deepcopy(v) for k, v in value.items() if k not in withheld}
    return copy.deepcopy(value)


def _union(names: Iterable[str], more: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*names, *sorted(more)]))


def _names(value: object, key: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise TypeError(f"{key} must be a list of names")
    return tuple(str(item) for item in value)


GAS_ALERTS_TO_COMUNI = SharingRule(
    name="gas-alerts-to-comuni",
    owner="gas-utility",
    entity_types=("Alert",),
    attributes=(
        "category",
        "subCategory",
        "severity",
        "description",
        "dateIssued",
        "validFrom",
        "validTo",
        "location",
        "address",
    ),
    targets=(COMUNI_IT_LIES_IN,),
)
"""A gas utility's leak alerts and roadworks (`Alert`, e.g. category traffic, subCategory
roadWorks) go to the comuni they lie in; meter readings (SmartMeteringObservation,
Consumption) are not listed, so they never leave. Rebind `owner` with `dataclasses.replace`."""
