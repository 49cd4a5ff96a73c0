"""Settings of an ingest worker (env prefix CONTESTO_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from ._mqtt import MqttOptions
from ._pipeline import DEFAULT_MAX_MESSAGE_BYTES


class IngestSettings(BaseSettings):
    """Where the worker reads MQTT and keeps its registry, outbox and dead letters."""

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
    # The regional profile, as for the broker: the provisioning API asks for API keys and
    # provisions only onboarded tenants.
    auth_required: bool = False
    auto_create_tenants: bool = True

    def mqtt_options(self) -> MqttOptions:
        return MqttOptions(
            host=self.mqtt_host,
            port=self.mqtt_port,
            username=self.mqtt_username,
            password=self.mqtt_password,
            protocol=self.mqtt_protocol,
            client_id=self.mqtt_client_id,
            shared_group=self.mqtt_shared_group,
            receive_maximum=self.mqtt_receive_maximum,
        )
