"""MQTT feeds -> decoded -> mapped to NGSI-LD fragments -> validated -> outbox or dead-letter."""

from __future__ import annotations

from ._dead_letters import DeadLetter, DeadLetters
from ._decode import TOPIC_FILTERS, decode, format_of
from ._devices import AttributeMapping, Binding, Device, ServiceGroup, StaticAttribute, bind
from ._iot_access import ProvisioningAccess
from ._iot_api import iot_agent_router
from ._mapping import to_fragment
from ._messages import DeviceKey, Format, InboundMessage, Reading, Rejection
from ._mqtt import MqttError, MqttOptions
from ._pipeline import DEFAULT_MAX_MESSAGE_BYTES, BatchOutcome, DeviceResolver, Pipeline
from ._registry import (
    AmbiguousDevice,
    DeviceRegistry,
    RegistryConflict,
    RegistryError,
    RegistryUnavailable,
)
from ._settings import IngestSettings
from ._worker import BatchObserver, IngestCounters, IngestWorker

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "TOPIC_FILTERS",
    "AmbiguousDevice",
    "AttributeMapping",
    "BatchObserver",
    "BatchOutcome",
    "Binding",
    "DeadLetter",
    "DeadLetters",
    "Device",
    "DeviceKey",
    "DeviceRegistry",
    "DeviceResolver",
    "Format",
    "InboundMessage",
    "IngestCounters",
    "IngestSettings",
    "IngestWorker",
    "MqttError",
    "MqttOptions",
    "Pipeline",
    "ProvisioningAccess",
    "Reading",
    "RegistryConflict",
    "RegistryError",
    "RegistryUnavailable",
    "Rejection",
    "ServiceGroup",
    "StaticAttribute",
    "bind",
    "decode",
    "format_of",
    "iot_agent_router",
    "to_fragment",
]
