"""The NGSI-LD context broker (ETSI GS CIM 009) of Contesto, on a MongoDB-protocol store."""

from context_broker._app import create_app
from context_broker._health import Readiness, ReadinessLimits, health_body
from context_broker._logs import json_logging, json_logging_config
from context_broker._metrics import is_metrics_key, shared_metrics
from context_broker._settings import BrokerSettings, ReadinessSettings

__all__ = [
    "BrokerSettings",
    "Readiness",
    "ReadinessLimits",
    "ReadinessSettings",
    "create_app",
    "health_body",
    "is_metrics_key",
    "json_logging",
    "json_logging_config",
    "shared_metrics",
]
