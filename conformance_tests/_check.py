"""Check samples exactly as ingest would: `Pipeline.process` with every device bound to
the vendor's service group, nothing stored; entities with `datamodels` (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, cast

from broker_bridge import Outbox
from datamodels import Catalogue, CatalogueError, Violation, validate_entity
from sensor_ingest import (
    AttributeMapping,
    Binding,
    DeadLetters,
    DeviceKey,
    Format,
    InboundMessage,
    Pipeline,
    Rejection,
    ServiceGroup,
    bind,
    decode,
)
from sensor_ingest._provisioning import ProvisioningError, groups_from_json

from ._payloads import Sample

__all__ = ["Checker", "MessageResult", "Target", "TargetError", "known_targets", "make_target"]

_TENANT = "conformance"
_REQUIRED_RULES = frozenset({"schema.required", "profile.required"})


class TargetError(ValueError):
    """An unknown model or profile, or a mapping file that is not a service group."""


@dataclass(slots=True, frozen=True)
class Target:
    """What the messages must become: a model (and profile) and the mapping to get there."""

    model: str
    profile: str | None
    groups: tuple[ServiceGroup, ...]
    default_mapping: bool

    def describe(self) -> str:
        name = self.profile or self.model
        mapping = "default mapping" if self.default_mapping else "vendor mapping"
        return f"{name} ({mapping})"


@dataclass(slots=True, frozen=True)
class MessageResult:
    """The verdict on one message or entity: every violation, or none when it conforms."""

    source: str
    topic: str | None
    payload: bytes | None
    violations: tuple[Violation, ...]
    entities: tuple[dict[str, Any], ...] = ()
    device: str | None = None
    observed_at: datetime | None = None
    received_at: datetime | None = None

    @property
    def passed(self) -> bool:
        return not self.violations


def make_target(
    catalogue: Catalogue,
    model: str | None,
    profile: str | None,
    mapping: Any = None,
) -> Target:
    """The target of `--model`/`--profile` and an optional mapping (a `{"services": [...]}`
    body as the IoT Agent API takes it); without one, measures keep their names and get
    the profile's unit codes."""
    if model is None and profile is None:
        raise TargetError("name a target: --model or --profile. " + known_targets(catalogue))
    try:
        validator = catalogue.validator(model, profile)
    except CatalogueError as exc:
        raise TargetError(f"{exc}. {known_targets(catalogue)}") from None
    base = validator.model.name
    if mapping is None:
        units = {}
        if profile is not None:
            units = {
                name: rule.unit_code
                for name, rule in catalogue.profile(profile).attributes.items()
                if rule.unit_code
            }
        group = ServiceGroup(
            tenant=_TENANT,
            format="iotagent-json",
            group="*",
            entity_type=base,
            model=base,
            profile=profile,
            attributes=tuple(AttributeMapping(n, n, unit_code=u) for n, u in units.items()),
        )
        return Target(base, profile, (group,), default_mapping=True)
    try:
        groups = groups_from_json(mapping, _TENANT, catalogue=catalogue)
    except ProvisioningError as exc:
        raise TargetError(f"the mapping is not an IoT Agent service group body: {exc}") from None
    if not groups:
        raise TargetError('the mapping has no service group: {"services": [...]}')
    # The target decides the rules; the mapping decides the names, units and entity ids.
    groups = [replace(g, model=base, profile=profile) for g in groups]
    return Target(base, profile, tuple(groups), default_mapping=False)


def known_targets(catalogue: Catalogue) -> str:
    """The models and profiles a target can name, for error messages."""
    return (
        f"Known models: {', '.join(catalogue.models)}. "
        f"Known profiles: {', '.join(catalogue.profiles)}."
    )


class _BoundToTarget:
    """A device registry where every device belongs to the vendor's group: the one with
    the same format and key if there is one, else one of the same format, else the first."""

    def __init__(self, groups: tuple[ServiceGroup, ...]) -> None:
        self._groups = groups

    async def resolve(self, format: Format, key: DeviceKey) -> Binding | Rejection:
        same_format = [g for g in self._groups if g.format == format]
        exact = [g for g in same_format if g.group == key.group]
        group = (exact or same_format or list(self._groups))[0]
        return bind(group, key.device)


class _NotStored:
    """Outbox and dead letters that must never be used: the kit only calls `process`."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the conformance kit stores nothing (called {name})")


class Checker:
    """Checks samples against one target."""

    def __init__(self, target: Target, catalogue: Catalogue) -> None:
        self._target = target
        self._catalogue = catalogue
        self._validator = catalogue.validator(target.model, target.profile)
        self._pipeline = Pipeline(
            _BoundToTarget(target.groups),
            cast(Outbox, _NotStored()),
            cast(DeadLetters, _NotStored()),
            catalogue,
        )

    async def check(
        self, samples: Iterable[Sample], received_at: datetime | None = None
    ) -> list[MessageResult]:
        """One result per sample, in order."""
        return [await self.check_one(s, received_at) for s in samples]

    async def check_one(self, sample: Sample, received_at: datetime | None = None) -> MessageResult:
        if sample.problem is not None:
            return MessageResult(sample.source, sample.topic, sample.payload, (sample.problem,))
        if sample.is_entity:
            return self._check_entity(sample)
        assert sample.topic is not None and sample.payload is not None
        message = InboundMessage(sample.topic, sample.payload, received_at or datetime.now(UTC))
        return await self.check_message(sample.source, message, live=received_at is not None)

    async def check_message(
        self, source: str, message: InboundMessage, *, live: bool = True
    ) -> MessageResult:
        """A message as ingest would take it: decode, bind, map, validate."""
        readings = decode(message)
        device = observed = None
        partial = False
        if not isinstance(readings, Rejection) and readings:
            first = readings[0]
            device = f"{first.key.group}/{first.key.device}"
            partial = any(r.single_attribute for r in readings)
            observed = first.observed_at or _time_measure(first.measures, self._stamp_field())
        outcome = await self._pipeline.process([message])
        violations: list[Violation] = []
        for (_message, rejection, _tenant), fragment in zip(
            outcome.refused, outcome.refused_fragments, strict=True
        ):
            violations.extend(self._explain(rejection, fragment, partial))
        entities = tuple(f for fragments in outcome.fragments.values() for f in fragments)
        return MessageResult(
            source,
            message.topic,
            message.payload,
            tuple(violations),
            entities,
            device,
            observed,
            message.received_at if live else None,
        )

    def _check_entity(self, sample: Sample) -> MessageResult:
        result = validate_entity(
            sample.entity, self._target.model, self._target.profile, catalogue=self._catalogue
        )
        entity = cast(dict[str, Any], sample.entity)
        return MessageResult(
            sample.source,
            None,
            None,
            result.violations,
            (entity,) if result.ok else (),
            device=result.entity_id,
            observed_at=None,
        )

    def _explain(
        self, rejection: Rejection, fragment: dict[str, Any] | None, partial: bool
    ) -> list[Violation]:
        """Every violation behind a rejection: the pipeline reports the first five."""
        if rejection.reason == "invalid-entity" and fragment is not None:
            found = [
                v
                for v in self._validator.validate(fragment, form="normalized").violations
                if not (partial and v.rule in _REQUIRED_RULES)
            ]
            if found:
                return found
        return [
            Violation(
                rejection.path or "$",
                f"ingest.{rejection.reason}",
                rejection.message,
                rejection.hint,
            )
        ]

    def _stamp_field(self) -> str:
        return self._target.groups[0].timestamp_field


def _time_measure(measures: dict[str, Any], field: str) -> datetime | None:
    value = measures.get(field)
    if not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    head, dot, tail = text.partition(".")
    if dot:
        digits = len(tail) - len(tail.lstrip("0123456789"))
        text = f"{head}.{tail[: min(digits, 6)]}{tail[digits:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else None
