"""MQTT feeds -> decoded -> mapped to NGSI-LD fragments -> validated -> outbox or dead-letter.

The exports load on first use, so that a command needing one of them (`contesto simulate`'s
`IngestSettings` and `MqttError`) does not import the provisioning API's FastAPI, the worker
and the bridge with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sensor_ingest._dead_letters import DeadLetter, DeadLetters
    from sensor_ingest._decode import TOPIC_FILTERS, decode, format_of
    from sensor_ingest._devices import (
        AttributeMapping,
        Binding,
        Device,
        ServiceGroup,
        StaticAttribute,
        bind,
    )
    from sensor_ingest._iot_access import ProvisioningAccess
    from sensor_ingest._iot_api import iot_agent_router
    from sensor_ingest._mapping import to_fragment
    from sensor_ingest._messages import DeviceKey, Format, InboundMessage, Reading, Rejection
    from sensor_ingest._mqtt import MqttError, MqttOptions
    from sensor_ingest._pipeline import (
        DEFAULT_MAX_MESSAGE_BYTES,
        BatchOutcome,
        DeviceResolver,
        Pipeline,
    )
    from sensor_ingest._registry import (
        AmbiguousDevice,
        DeviceRegistry,
        RegistryConflict,
        RegistryError,
        RegistryUnavailable,
    )
    from sensor_ingest._settings import IngestSettings
    from sensor_ingest._worker import BatchObserver, IngestCounters, IngestWorker

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

_HOME = {
    "AmbiguousDevice": "sensor_ingest._registry",
    "AttributeMapping": "sensor_ingest._devices",
    "BatchObserver": "sensor_ingest._worker",
    "BatchOutcome": "sensor_ingest._pipeline",
    "Binding": "sensor_ingest._devices",
    "DEFAULT_MAX_MESSAGE_BYTES": "sensor_ingest._pipeline",
    "DeadLetter": "sensor_ingest._dead_letters",
    "DeadLetters": "sensor_ingest._dead_letters",
    "Device": "sensor_ingest._devices",
    "DeviceKey": "sensor_ingest._messages",
    "DeviceRegistry": "sensor_ingest._registry",
    "DeviceResolver": "sensor_ingest._pipeline",
    "Format": "sensor_ingest._messages",
    "InboundMessage": "sensor_ingest._messages",
    "IngestCounters": "sensor_ingest._worker",
    "IngestSettings": "sensor_ingest._settings",
    "IngestWorker": "sensor_ingest._worker",
    "MqttError": "sensor_ingest._mqtt",
    "MqttOptions": "sensor_ingest._mqtt",
    "Pipeline": "sensor_ingest._pipeline",
    "ProvisioningAccess": "sensor_ingest._iot_access",
    "Reading": "sensor_ingest._messages",
    "RegistryConflict": "sensor_ingest._registry",
    "RegistryError": "sensor_ingest._registry",
    "RegistryUnavailable": "sensor_ingest._registry",
    "Rejection": "sensor_ingest._messages",
    "ServiceGroup": "sensor_ingest._devices",
    "StaticAttribute": "sensor_ingest._devices",
    "TOPIC_FILTERS": "sensor_ingest._decode",
    "bind": "sensor_ingest._devices",
    "decode": "sensor_ingest._decode",
    "format_of": "sensor_ingest._decode",
    "iot_agent_router": "sensor_ingest._iot_api",
    "to_fragment": "sensor_ingest._mapping",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'sensor_ingest' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
