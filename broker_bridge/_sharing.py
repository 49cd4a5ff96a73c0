"""Fan-out by sharing rule: what a tenant publishes, projected into the tenants it shares with.

The rules are the owners' (`regional_tenants.SharingRule`), read from the registry and
refreshed every few seconds; the comuni an entity lies in come from the boundary index.
A copy carries only the rule's allowed attributes, never a private or personal one.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from regional_tenants import COMUNI_IT_LIES_IN, BoundaryIndex, NotInRegion, SharingRule, project

__all__ = ["RuleSource", "Shares", "SharingPolicy"]


class RuleSource(Protocol):
    """Where the rules live (the tenant registry)."""

    async def all_rules(self) -> dict[str, list[SharingRule]]: ...


@dataclass(slots=True)
class Shares:
    """Copies per target tenant, and entities a comune-bound rule could not place."""

    copies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    unplaced: list[tuple[dict[str, Any], str]] = field(default_factory=list)

    def count_by_target(self) -> dict[str, int]:
        return {target: len(copies) for target, copies in self.copies.items()}


class SharingPolicy:
    """Projects confirmed fragments by their owner's rules."""

    def __init__(self, rules: RuleSource, *, refresh_s: float = 10.0) -> None:
        self._source = rules
        self._refresh_s = refresh_s
        self._rules: dict[str, list[SharingRule]] = {}
        self._loaded = float("-inf")
        self._index: BoundaryIndex | None = None

    async def shares(self, owner: str, fragments: list[dict[str, Any]]) -> Shares:
        """The copies that `owner`'s rules make of `fragments`."""
        rules = await self._rules_of(owner)
        found = Shares()
        if not rules:
            return found
        index = await self._boundaries()
        for fragment in fragments:
            for rule in rules:
                pairs = project(fragment, rule, index)
                for target, copy in pairs:
                    found.copies.setdefault(target, []).append(copy)
                if not pairs and COMUNI_IT_LIES_IN in rule.targets:
                    reason = _unplaced_reason(fragment, rule, index)
                    if reason is not None:
                        found.unplaced.append((fragment, reason))
        return found

    async def _rules_of(self, owner: str) -> list[SharingRule]:
        now = time.monotonic()
        if now - self._loaded > self._refresh_s:
            self._rules = await self._source.all_rules()
            self._loaded = now
        return self._rules.get(owner, [])

    async def _boundaries(self) -> BoundaryIndex:
        if self._index is None:
            # Building the grid takes about half a second: not on the event loop.
            self._index = await asyncio.to_thread(BoundaryIndex)
        return self._index


def _unplaced_reason(
    fragment: dict[str, Any], rule: SharingRule, index: BoundaryIndex
) -> str | None:
    """Why a fragment of a shared type reached no comune, or None if the rule does not
    apply to it (another type, or a fragment without a location: an update of other
    attributes)."""
    types = fragment.get("type")
    declared = {types} if isinstance(types, str) else set(types or ())
    location = fragment.get("location")
    if declared.isdisjoint(rule.entity_types) or not isinstance(location, dict):
        return None
    routed = index.route(location.get("value") or {})
    if isinstance(routed, NotInRegion):
        return f"sharing rule {rule.name!r} of {rule.owner}: {routed.reason}"
    return None
