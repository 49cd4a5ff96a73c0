"""The NGSI-LD context broker (ETSI GS CIM 009) of Contesto, on a MongoDB-protocol store."""

from context_broker._app import create_app
from context_broker._settings import BrokerSettings

__all__ = ["BrokerSettings", "create_app"]
