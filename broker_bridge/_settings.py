"""Settings of the bridge that publishes the outbox (env prefix CONTESTO_)."""

from __future__ import annotations

from pydantic import BaseModel
from pydantic_settings import BaseSettings, SettingsConfigDict

from ._targets import Target, TargetDirectory


class ExternalTarget(BaseModel):
    """A tenant published to another NGSI-LD broker (Orion-LD, Scorpio, Stellio)."""

    url: str
    tenant: str | None = None
    token: str | None = None
    tenant_header: str = "NGSILD-Tenant"


class BridgeSettings(BaseSettings):
    """Where the outbox lives and where each tenant's fragments go.

    `bridge_targets` (JSON in CONTESTO_BRIDGE_TARGETS) maps a tenant to an external
    broker, e.g. {"livorno": {"url": "https://orion.example/ngsi-ld/v1", "token": "..."}}.
    """

    model_config = SettingsConfigDict(env_prefix="CONTESTO_", extra="ignore")

    mongo_url: str = "mongodb://127.0.0.1:27017"
    pipeline_database: str = "contesto_ingest"
    # The broker's database prefix: its platform database holds the sharing rules.
    database_prefix: str = "ctx"
    broker_url: str = "http://127.0.0.1:1026/ngsi-ld/v1"
    broker_token: str | None = None
    bridge_targets: dict[str, ExternalTarget] = {}
    bridge_records_per_pass: int = 1000
    bridge_entities_per_request: int = 500
    # After a pass that found less than `bridge_records_per_pass` records, wait this long
    # before the next: it adds up to this much latency and groups the entity writes of a
    # steady stream (see docs/ingest.md). 0 publishes each append at once.
    bridge_linger_s: float = 0.25
    # How often copies whose source its owner deleted are looked for and deleted.
    bridge_withdraw_every_s: float = 30.0

    def directory(self) -> TargetDirectory:
        overrides = {
            tenant: Target(t.url, t.tenant or tenant, t.token, t.tenant_header)
            for tenant, t in self.bridge_targets.items()
        }
        return TargetDirectory(self.broker_url, overrides, self.broker_token)
