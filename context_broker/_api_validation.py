"""API-side validation: a tenant's writes of the types its models cover, checked like MQTT feeds.

Each tenant chooses `off` (the default: nothing is checked, one dict lookup per write),
`warn` (the write succeeds and its violations are reported) or `enforce` (the write is
refused with a 400 BadRequestData listing them). The entity is checked as it will be
after the write, rendered normalized with the caller's @context (so with the data
model's short names), by the datamodels validator the ingest pipeline uses.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal

from context_broker._attributes import RenderOptions
from context_broker._entities import Document, render_entity
from context_broker._errors import BadRequestData
from context_broker._jsonld import TermMap
from datamodels import Catalogue, CatalogueError, Validator, Violation
from regional_tenants import Tenant

__all__ = [
    "OFF",
    "ApiValidation",
    "Policy",
    "ProfileViolations",
    "policy_of",
    "reported_violations",
    "violation_text",
]

Mode = Literal["off", "warn", "enforce"]
log = logging.getLogger("context_broker.api_validation")

# The violations a request's writes found under `warn`, for its response header.
reported_violations: ContextVar[list[str] | None] = ContextVar("reported_violations", default=None)


@dataclass(frozen=True, slots=True)
class Policy:
    """A tenant's mode and its validators by entity type (short name)."""

    mode: Mode
    validators: Mapping[str, Validator] = field(default_factory=dict)


OFF = Policy("off")


def policy_of(tenant: Tenant | None, catalogue: Catalogue) -> Policy:
    """The tenant's mode, and a validator per type its models (or profiles) cover."""
    if tenant is None or tenant.api_validation == "off":
        return OFF
    validators: dict[str, Validator] = {}
    for name in tenant.models:
        try:
            if name in catalogue.profiles:
                validator = catalogue.validator(profile=name)
                validators.setdefault(catalogue.profile(name).base, validator)
            else:
                validators.setdefault(name, catalogue.validator(name))
        except CatalogueError as exc:
            log.warning("tenant %s names a model the catalogue lacks: %s", tenant.slug, exc)
    return Policy(tenant.api_validation, validators)


def violation_text(violation: Violation) -> str:
    """One violation in the conformance kit's wording."""
    text = f"{violation.path} [{violation.rule}] {violation.message}"
    return text + (f" (hint: {violation.hint})" if violation.hint else "")


class ProfileViolations(BadRequestData):
    """A write that breaks the tenant's profile under `enforce`: each violation listed."""

    def __init__(self, entity_id: str, violations: tuple[Violation, ...]) -> None:
        listed = "; ".join(violation_text(v) for v in violations)
        super().__init__(f"entity {entity_id} breaks the tenant's profile: {listed}")
        self.violations = violations

    def problem_details(self) -> dict[str, Any]:
        body = super().problem_details()
        body["violations"] = [
            {"path": v.path, "rule": v.rule, "message": v.message, "hint": v.hint}
            for v in self.violations
        ]
        return body


class ApiValidation:
    """Each tenant's policy, cached for `ttl_s`; checks the documents a write will store.

    `load` reads a tenant's policy; `on_violations(tenant, mode, count)` counts them;
    `record(tenant, entity_id, texts)` keeps what `warn` let through (the audit log).
    """

    def __init__(
        self,
        load: Callable[[str], Awaitable[Policy]],
        *,
        ttl_s: float = 5.0,
        on_violations: Callable[[str, str, int], None] | None = None,
        record: Callable[[str, str, list[str]], Awaitable[None]] | None = None,
    ) -> None:
        self._load = load
        self._ttl = ttl_s
        self._policies: dict[str, tuple[float, Policy]] = {}
        self._on_violations = on_violations
        self._record = record

    async def policy(self, tenant: str | None) -> Policy:
        if tenant is None:
            return OFF
        cached = self._policies.get(tenant)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        policy = await self._load(tenant)
        self._policies[tenant] = (now + self._ttl, policy)
        return policy

    def forget(self, tenant: str) -> None:
        """Read the tenant's policy again at its next write (after an admin change)."""
        self._policies.pop(tenant, None)

    async def check(self, tenant: str, policy: Policy, doc: Document, terms: TermMap) -> None:
        """Raise ProfileViolations under `enforce`; report under `warn`."""
        entity = render_entity(doc, terms, RenderOptions())
        types = entity["type"] if isinstance(entity["type"], list) else [entity["type"]]
        validator = next((policy.validators[t] for t in types if t in policy.validators), None)
        if validator is None:
            return
        violations = validator.validate(entity, form="normalized").violations
        if not violations:
            return
        if self._on_violations is not None:
            self._on_violations(tenant, policy.mode, len(violations))
        if policy.mode == "enforce":
            raise ProfileViolations(str(doc["_id"]), violations)
        texts = [violation_text(v) for v in violations]
        log.warning(
            "tenant %s wrote %s against its profile: %s", tenant, doc["_id"], "; ".join(texts)
        )
        reported = reported_violations.get()
        if reported is not None:
            reported.extend(f"{doc['_id']}: {text}" for text in texts)
        if self._record is not None:
            await self._record(tenant, str(doc["_id"]), texts)
