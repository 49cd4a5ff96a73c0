"""Settings of the `contesto up` stack (env prefix CONTESTO_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# sensor_ingest's DEFAULT_MAX_MESSAGE_BYTES (a unit test holds them equal), written out so
# that reading the settings does not import the ingest pipeline.
_INGEST_MAX_MESSAGE_BYTES = 256 * 1024


class StackSettings(BaseSettings):
    """Where the stack listens and keeps its data.

    No `mongo_url` means the embedded store; no `mqtt_external` means a local MQTT broker
    (Mosquitto) started on `mqtt_port`.
    """

    model_config = SettingsConfigDict(env_prefix="CONTESTO_", extra="ignore")

    mongo_url: str | None = None
    # Opt-in: the store acknowledges writes before journaling them; a crash can lose them.
    store_unjournaled_writes_risk_loss: bool = False
    data_dir: Path = Path("var")
    # The embedded store's cache (SecantusDB's WiredTiger cache), e.g. 256M or 1G.
    store_cache_size: str = "256M"
    # A child (store, MQTT broker, ingest) that dies is restarted; more than this many
    # restarts of one child within the window end the stack (exit status 1).
    restart_max: int = 5
    restart_window_s: float = 60.0
    # API processes sharing the HTTP port, and ingest workers sharing one MQTT v5
    # subscription group; 1 runs the API inside `contesto up` itself, as before.
    workers: int = Field(default=1, ge=1, le=32)
    host: str = "127.0.0.1"
    port: int = 1026
    log_level: str = "info"
    # "json": one JSON object per log line (time, level, logger, message, requestId), for
    # log collectors; the API and the ingest process alike.
    log_format: Literal["text", "json"] = "text"
    # One log line per request costs about 4% of a request's CPU on the hot path.
    access_log: bool = False
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_external: bool = False
    # auto: Mosquitto if installed, else amqtt (dev profile only); or name one of them.
    mqtt_broker: Literal["auto", "mosquitto", "amqtt"] = "auto"
    # Mosquitto drops larger payloads; ingest dead-letters them (CONTESTO_INGEST_...).
    ingest_max_message_bytes: int = _INGEST_MAX_MESSAGE_BYTES
    # The regional profile (as for the broker): MQTT asks every client to log in.
    auth_required: bool = False
    ingest: bool = True
    provisioning_port: int = 4041
    demo_tenants: bool = True
