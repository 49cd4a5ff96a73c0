"""Settings of the NGSI-LD broker deployable (env prefix CONTESTO_)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from context_broker._budget import QueryBudget
from context_broker._health import ReadinessLimits


class ReadinessSettings(BaseSettings):
    """The limits of /health/ready's ingest checks and the key of /metrics, for the API and
    for ingest alike."""

    model_config = SettingsConfigDict(env_prefix="CONTESTO_", extra="ignore")

    # The bearer token a scraper sends to /metrics (`Authorization: Bearer KEY`). Unset,
    # /metrics is open in the dev profile and, in the regional one, takes only a
    # region-admin key on the API and nothing on ingest.
    metrics_key: str | None = None

    ready_max_ingest_lag_s: float = Field(default=60.0, gt=0)
    ready_max_outbox_depth: int = Field(default=10_000, ge=0)
    ready_max_ingest_status_age_s: float = Field(default=5.0, gt=0)

    def readiness_limits(self) -> ReadinessLimits:
        return ReadinessLimits(
            max_ingest_lag_s=self.ready_max_ingest_lag_s,
            max_outbox_depth=self.ready_max_outbox_depth,
            max_status_age_s=self.ready_max_ingest_status_age_s,
        )


class BrokerSettings(ReadinessSettings):
    """What the broker needs to run: where its store is and how it treats tenants and input."""

    model_config = SettingsConfigDict(env_prefix="CONTESTO_", extra="ignore")

    mongo_url: str = "mongodb://127.0.0.1:27017/?directConnection=true"
    database_prefix: str = "ctx"
    auto_create_tenants: bool = True
    # Opt-in: writes acknowledged before the store journals them; a crash can lose them.
    store_unjournaled_writes_risk_loss: bool = False
    # The regional profile: every request needs an API key of its tenant (see _http/_auth.py).
    auth_required: bool = False
    # Whether subscriptions may notify loopback, private or link-local addresses; unset:
    # allowed in the dev profile, refused in the regional one (auth_required).
    subscription_private_endpoints: bool | None = None
    # How stale a process's view of a tenant's subscriptions may be; a subscription write
    # answers after this time, so every process matches it for writes that follow.
    subscription_refresh_ms: int = Field(default=100, ge=0, le=5_000)
    # Each API process runs a notifier that sends the queued notifications (HTTP, MQTT).
    notifier_enabled: bool = True
    # How often a notifier looks for notifications queued elsewhere or due for a retry.
    notification_poll_ms: int = Field(default=250, ge=10, le=60_000)
    # How long a claimed notification is this notifier's alone before others may claim it.
    notification_lease_s: float = Field(default=30.0, ge=1.0)
    # The time an endpoint has to take a notification (connect, answer, MQTT acknowledge).
    notification_timeout_s: float = Field(default=5.0, gt=0)
    # The first retry comes within this time, each next within twice that (at most 5 min).
    notification_retry_base_s: float = Field(default=1.0, gt=0)
    # Attempts at one notification before it is given up and counted as failed.
    notification_max_attempts: int = Field(default=6, ge=1)
    # Notifications being sent to one endpoint at once, per process.
    notification_endpoint_in_flight: int = Field(default=4, ge=1)
    # Notifications claimed for one endpoint and not yet sent, per process (then it is left out).
    notification_endpoint_backlog: int = Field(default=256, ge=1)
    max_body_bytes: int = 2 * 1024 * 1024
    context_fetch_timeout_s: float = 3.0
    # Hosts, addresses or CIDRs (comma-separated) the broker may fetch @contexts from although
    # they are not public (loopback, private, link-local): e.g. "ctx.internal,10.1.0.0/16".
    context_fetch_allow: str = ""
    context_cache_entries: int = 256
    context_max_bytes: int = 1024 * 1024
    query_default_limit: int = 20
    query_max_limit: int = 1000
    # Budgets of every store read (docs/query.md, "Budgets and fairness"): its time (sent
    # as maxTimeMS, and the broker's own wait), the documents it may bring into the broker,
    # and how many reads of one tenant run at once, how many wait and for how long.
    query_time_budget_ms: int = Field(default=5_000, ge=1)
    query_max_documents: int = Field(default=20_000, ge=1)
    tenant_read_slots: int = Field(default=1, ge=1)
    tenant_read_queue: int = Field(default=64, ge=0)
    tenant_read_wait_ms: int = Field(default=10_000, ge=1)
    # Reads of all tenants in the store at once, served to the tenants in turn; 0: no limit.
    store_read_slots: int = Field(default=0, ge=0)
    # Linked Entity Retrieval (join): the deepest joinLevel, and the most linked entities
    # one answer fetches (one read per level).
    join_max_level: int = Field(default=3, ge=1, le=16)
    join_max_entities: int = Field(default=1000, ge=1)
    # Purge Entities deletes (or drops attributes from) this many entities per store write.
    purge_batch: int = Field(default=200, ge=1, le=10_000)
    # How often each API process removes the transient entities whose expiresAt has passed.
    expiry_sweep_ms: int = Field(default=500, ge=10, le=60_000)
    # History (the temporal API): every written attribute instance is recorded (on|off);
    # instances are kept this many days after they were written (a TTL index); one temporal
    # answer holds at most this many instances of an attribute (then 206, Content-Range).
    temporal: bool = True
    temporal_retention_days: int = Field(default=365, ge=1, le=36_500)
    temporal_max_instances: int = Field(default=1000, ge=1, le=100_000)
    # The control room (docs/control-room.md): where its page is served, the tile server
    # of its map ("https://.../{z}/{x}/{y}.png"; unset, the map shows only the comune's
    # boundary and works offline), and how often the page reads the tenant's entities
    # again, which brings it the changes made through other API processes (`--workers N`).
    control_room_path: str = Field(default="/control-room/", pattern=r"^(/[A-Za-z0-9._~-]+)+/?$")
    control_room_tile_url: str | None = None
    control_room_resync_s: float = Field(default=10.0, ge=1.0, le=3_600.0)
    # /health/ready: the status files of the ingest workers, separated by os.pathsep
    # (`contesto up` sets one a worker; without any, only the store is checked).
    ingest_status_file: str | None = None

    @model_validator(mode="after")
    def _lease_outlasts_a_send(self) -> BrokerSettings:
        # A claimed notification is sent only while its lease outlasts a whole send.
        if self.notification_lease_s < self.notification_timeout_s + 2:
            raise ValueError(
                "CONTESTO_NOTIFICATION_LEASE_S must be at least CONTESTO_NOTIFICATION_TIMEOUT_S"
                f" + 2 s; got {self.notification_lease_s} and {self.notification_timeout_s}"
            )
        return self

    def ingest_status_paths(self) -> list[Path]:
        """The ingest workers' status files, worker 0 first."""
        return [Path(part) for part in (self.ingest_status_file or "").split(os.pathsep) if part]

    def private_endpoints_allowed(self) -> bool:
        """Whether subscription endpoints may be non-public addresses."""
        if self.subscription_private_endpoints is not None:
            return self.subscription_private_endpoints
        return not self.auth_required

    def query_budget(self) -> QueryBudget:
        return QueryBudget(
            time_ms=self.query_time_budget_ms,
            max_documents=self.query_max_documents,
            tenant_slots=self.tenant_read_slots,
            tenant_queue=self.tenant_read_queue,
            tenant_wait_ms=self.tenant_read_wait_ms,
            store_slots=self.store_read_slots,
        )
