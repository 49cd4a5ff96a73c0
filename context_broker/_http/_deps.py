"""The application's collaborators, held on app.state for the routes."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from context_broker._hosted_contexts import HostedContexts
from context_broker._http._query_names import check_query_names
from context_broker._jsonld import ContextResolver
from context_broker._service import Broker
from context_broker._settings import BrokerSettings


@dataclass(slots=True, frozen=True)
class Deps:
    settings: BrokerSettings
    broker: Broker
    resolver: ContextResolver
    contexts: HostedContexts


def deps_of(request: Request) -> Deps:
    """The collaborators, for a request whose query names only parameters its route takes."""
    check_query_names(request)
    deps: Deps = request.app.state.deps
    return deps
