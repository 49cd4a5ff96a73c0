"""The NGSI-LD client: the operations the pipeline, the CLI and the conformance suite send
to a broker (ETSI GS CIM 009), with one classification of its answers."""

from __future__ import annotations

from ._client import NgsiLdClient, Refusal
from ._endpoint import Endpoint
from ._errors import BrokerUnreachable, NgsiLdClientError, Refused, RetryLater
from ._http import Answer, HttpAdapter

__all__ = [
    "Answer",
    "BrokerUnreachable",
    "Endpoint",
    "HttpAdapter",
    "NgsiLdClient",
    "NgsiLdClientError",
    "Refusal",
    "Refused",
    "RetryLater",
]
