"""Every message: decode -> map to an NGSI-LD fragment -> validate -> outbox or dead-letter.

A bad message never stops the batch: each failure is a `Rejection` that goes to the
dead-letter store with the raw message; the good ones go to the outbox together. A message
over the size limit is refused before it is decoded, and a batch the store cannot take
whole (a record over its document size limit) is stored one message at a time, so only
the message at fault is turned away.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from broker_bridge import OutboxStore, coalesce
from datamodels import Catalogue, CatalogueError, Validator, load_catalogue
from store_edge import RecordRefused

from ._dead_letters import DeadLetters
from ._decode import decode
from ._devices import Binding
from ._mapping import to_fragment
from ._messages import DeviceKey, Format, InboundMessage, Reading, Rejection

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "BatchOutcome", "DeviceResolver", "Pipeline"]

log = logging.getLogger("sensor_ingest.pipeline")

DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024

_REQUIRED_RULES = frozenset({"schema.required", "profile.required"})


class DeviceResolver(Protocol):
    """The device registry as the pipeline sees it."""

    async def resolve(self, format: Format, key: DeviceKey) -> Binding | Rejection: ...


@dataclass(slots=True)
class BatchOutcome:
    """What a batch became: fragments per tenant, and refused messages with reasons."""

    fragments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    refused: list[tuple[InboundMessage, Rejection, str | None]] = field(default_factory=list)
    refused_fragments: list[dict[str, Any] | None] = field(default_factory=list)
    readings: int = 0

    def refuse(
        self,
        message: InboundMessage,
        rejection: Rejection,
        tenant: str | None,
        fragment: dict[str, Any] | None = None,
    ) -> None:
        self.refused.append((message, rejection, tenant))
        self.refused_fragments.append(fragment)

    def merge(self, other: BatchOutcome) -> None:
        for tenant, fragments in other.fragments.items():
            self.fragments.setdefault(tenant, []).extend(fragments)
        self.refused += other.refused
        self.refused_fragments += other.refused_fragments
        self.readings += other.readings


class Pipeline:
    """Turns batches of MQTT messages into stored fragments and dead letters."""

    def __init__(
        self,
        devices: DeviceResolver,
        outbox: OutboxStore,
        dead_letters: DeadLetters,
        catalogue: Catalogue | None = None,
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self._devices = devices
        self._max_message_bytes = max_message_bytes
        self._outbox = outbox
        self._dead_letters = dead_letters
        self._catalogue = catalogue or load_catalogue()
        self._validators: dict[tuple[str, str | None], Validator | CatalogueError] = {}
        self._model_attributes: dict[str, frozenset[str]] = {}

    async def handle(self, messages: list[InboundMessage]) -> BatchOutcome:
        """Process a batch and store its outcome durably (outbox and dead letters).

        If the store refuses a record of the batch for what it holds, each message is
        stored alone and the one at fault goes to the dead letters as `unstorable`.
        """
        outcome = await self.process(messages)
        try:
            await self.store(outcome)
        except RecordRefused as exc:
            log.warning("the store refused a record of a batch (%.200s); storing one by one", exc)
        else:
            return outcome
        return await self._handle_one_by_one(messages)

    async def _handle_one_by_one(self, messages: list[InboundMessage]) -> BatchOutcome:
        total = BatchOutcome()
        for message in messages:
            outcome = await self.process([message])
            try:
                await self.store(outcome)
            except RecordRefused as exc:
                tenant = next(iter(outcome.fragments), None)
                outcome = BatchOutcome()
                outcome.refuse(message, _unstorable(exc), tenant)
                await self.store(outcome)
            total.merge(outcome)
        return total

    async def store(self, outcome: BatchOutcome) -> None:
        await asyncio.gather(
            self._outbox.append(outcome.fragments),
            self._dead_letters.add(outcome.refused, fragments=outcome.refused_fragments),
        )

    async def process(self, messages: list[InboundMessage]) -> BatchOutcome:
        """Decode, map and validate a batch; nothing is stored."""
        outcome = BatchOutcome()
        decoded = [(message, self._decode(message)) for message in messages]
        bindings: dict[tuple[Format, DeviceKey], Binding | Rejection] = {}
        for _message, readings in decoded:
            if isinstance(readings, Rejection):
                continue
            for reading in readings:
                wanted = (reading.format, reading.key)
                if wanted not in bindings:
                    bindings[wanted] = await self._devices.resolve(*wanted)
        for message, readings in decoded:
            if isinstance(readings, Rejection):
                outcome.refuse(message, readings, None)
                continue
            for reading in readings:
                outcome.readings += 1
                self._map_one(message, reading, bindings[reading.format, reading.key], outcome)
        # One fragment per entity and batch: the outbox and the broker see each entity once.
        for tenant, fragments in outcome.fragments.items():
            if len(fragments) > 1:
                outcome.fragments[tenant] = coalesce(fragments)
        return outcome

    def _decode(self, message: InboundMessage) -> list[Reading] | Rejection:
        size = len(message.payload)
        if size > self._max_message_bytes:
            return Rejection(
                "oversized",
                f"the payload has {size} bytes, over the limit of {self._max_message_bytes}",
                "$",
                "send smaller messages (CONTESTO_INGEST_MAX_MESSAGE_BYTES sets the limit)",
            )
        return decode(message)

    def _map_one(
        self,
        message: InboundMessage,
        reading: Reading,
        binding: Binding | Rejection,
        outcome: BatchOutcome,
    ) -> None:
        if isinstance(binding, Rejection):
            outcome.refuse(message, binding, None)
            return
        validator = self._validator_of(binding)
        if isinstance(validator, Rejection):
            outcome.refuse(message, validator, binding.tenant)
            return
        fragment = to_fragment(
            reading,
            binding,
            message.received_at,
            model_attributes=self._attributes_of(validator),
        )
        if isinstance(fragment, Rejection):
            outcome.refuse(message, fragment, binding.tenant)
            return
        if validator is not None:
            problem = _check(validator, fragment, reading.single_attribute)
            if problem is not None:
                outcome.refuse(message, problem, binding.tenant, fragment)
                return
        outcome.fragments.setdefault(binding.tenant, []).append(fragment)

    def _validator_of(self, binding: Binding) -> Validator | Rejection | None:
        """The device's model and profile; its entity type's model when it names neither."""
        model, profile = binding.model, binding.profile
        if model is None and profile is None:
            if binding.entity_type not in self._catalogue.models:
                return None
            model = binding.entity_type
        key = (model or "", profile)
        validator = self._validators.get(key)
        if validator is None:
            try:
                validator = self._catalogue.validator(model, profile)
            except CatalogueError as exc:
                validator = exc
            self._validators[key] = validator
        if isinstance(validator, CatalogueError):
            return Rejection(
                "mapping",
                f"the device's data model is not in the catalogue: {validator}",
                "$",
                "set the group's or device's model/profile to one `contesto models list` shows",
            )
        return validator

    def _attributes_of(self, validator: Validator | None) -> frozenset[str]:
        if validator is None:
            return frozenset()
        name = validator.model.name
        found = self._model_attributes.get(name)
        if found is None:
            found = self._model_attributes[name] = frozenset(validator.model.attributes)
        return found


def _unstorable(exc: RecordRefused) -> Rejection:
    return Rejection(
        "unstorable",
        f"the store refused what this message became: {exc.reason[:200]}",
        "$",
        "send smaller messages, with fewer or shorter attributes",
    )


def _check(validator: Validator, fragment: dict[str, Any], partial: bool) -> Rejection | None:
    """The fragment's violations as one rejection; a single-attribute update is checked
    without the model's required attributes."""
    result = validator.validate(fragment, form="normalized")
    violations = [v for v in result.violations if not (partial and v.rule in _REQUIRED_RULES)]
    if not violations:
        return None
    first = violations[0]
    message = "; ".join(v.message for v in violations[:5])
    if len(violations) > 5:
        message += f"; and {len(violations) - 5} more"
    return Rejection("invalid-entity", message, first.path, first.hint)
