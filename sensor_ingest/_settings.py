"""Settings of an ingest worker (env prefix CONTESTO_)."""

from __future__ import annotations

from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from ._mqtt import MqttOptions


class IngestSettings(BaseSettings):
    """Where the worker reads MQTT and keeps its registry, outbox and dead letters."""

    model_config = SettingsConfigDict(env_prefix="CONTESTO_", extra="ignore")

    mongo_url: str = "mongodb://127.0.0.1:27017"
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
    # Above this many outbox records, ingest stops taking messages until the bridge catches up.
    outbox_limit: int = 2000

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
