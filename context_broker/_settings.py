"""Settings of the NGSI-LD broker deployable (env prefix CONTESTO_)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class BrokerSettings(BaseSettings):
    """What the broker needs to run: where its store is and how it treats tenants and input."""

    model_config = SettingsConfigDict(env_prefix="CONTESTO_", extra="ignore")

    mongo_url: str = "mongodb://127.0.0.1:27017/?directConnection=true"
    database_prefix: str = "ctx"
    auto_create_tenants: bool = True
    # The regional profile: every request needs an API key of its tenant (see _http/_auth.py).
    auth_required: bool = False
    max_body_bytes: int = 2 * 1024 * 1024
    context_fetch_timeout_s: float = 3.0
    context_cache_entries: int = 256
    context_max_bytes: int = 1024 * 1024
    query_default_limit: int = 20
    query_max_limit: int = 1000
