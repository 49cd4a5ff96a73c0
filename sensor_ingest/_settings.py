"""Settings of the ingest deployable: worker, outbox publisher, provisioning API (env prefix
CONTESTO_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from broker_bridge import ExternalTarget, TargetDirectory

from ._mqtt import MqttOptions
from ._pipeline import DEFAULT_MAX_MESSAGE_BYTES


class IngestSettings(BaseSettings):
    """Where the worker reads MQTT and keeps its registry, outbox and dead letters, and where
    the publisher sends each tenant's fragments.

    `bridge_targets` (JSON in CONTESTO_BRIDGE_TARGETS) maps a tenant to an external
    broker, e.g. {"livorno": {"url": "https://orion.example/ngsi-ld/v1", "token": "..."}}.
    """

    model_config = SettingsConfigDict(env_prefix="CONTESTO_", extra="ignore")

    mongo_url: str = "mongodb://127.0.0.1:27017"
    # Opt-in: outbox and dead-letter writes (and so MQTT acknowledgements) before the store
    # journals them; a crash of the store can lose acknowledged messages.
    store_unjournaled_writes_risk_loss: bool = False
    pipeline_database: str = "contesto_ingest"
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    mqtt_protocol: Literal["5", "3.1.1"] = "5"
    mqtt_client_id: str = "contesto-ingest"
    # Workers with the same group split the feed (MQTT v5 shared subscription).
    mqtt_shared_group: str | None = "contesto"
    # False for a lone worker: Mosquitto keeps plain subscriptions over a restart, not shared.
    mqtt_shared: bool = True
    mqtt_receive_maximum: int = 20000
    ingest_batch_size: int = 5000
    ingest_batch_wait_s: float = 0.05
    # Larger messages go to the dead letters (`oversized`) with their first KiB only.
    ingest_max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    # Above this many outbox records, ingest stops taking messages until the bridge catches up.
    outbox_limit: int = 2000
    # A `contesto devices mqtt-acl` directory this process keeps in step with the registry,
    # signalling the Mosquitto whose pid is in `mqtt_broker_pid_file` to reload it.
    mqtt_access_dir: Path | None = None
    mqtt_broker_pid_file: Path | None = None
    # Where this process writes, once a second, its MQTT session state, outbox depth and
    # lag for the API's /health/ready (`contesto up` sets it in its data directory).
    ingest_status_file: Path | None = None
    # "json": one JSON object per log line, as the API writes them (CONTESTO_LOG_FORMAT).
    log_format: Literal["text", "json"] = "text"
    # The regional profile, as for the broker: the provisioning API asks for API keys and
    # provisions only onboarded tenants.
    auth_required: bool = False
    auto_create_tenants: bool = True
    # The broker's database prefix: its platform database holds tenants and sharing rules.
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

    def mqtt_options(self) -> MqttOptions:
        return MqttOptions(
            host=self.mqtt_host,
            port=self.mqtt_port,
            username=self.mqtt_username,
            password=self.mqtt_password,
            protocol=self.mqtt_protocol,
            client_id=self.mqtt_client_id,
            shared_group=self.mqtt_shared_group,
            shared=self.mqtt_shared,
            receive_maximum=self.mqtt_receive_maximum,
        )

    def targets(self) -> TargetDirectory:
        """Where each tenant's fragments go."""
        return TargetDirectory.of(self.broker_url, self.bridge_targets, self.broker_token)
