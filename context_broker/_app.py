"""Composition of the broker's FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI

from context_broker._settings import BrokerSettings


def create_app(settings: BrokerSettings) -> FastAPI:
    """Build the NGSI-LD API application; the store client opens in the lifespan."""
    raise NotImplementedError
