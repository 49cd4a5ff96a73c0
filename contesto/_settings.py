"""Settings of the `contesto up` stack (env prefix CONTESTO_)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class StackSettings(BaseSettings):
    """Where the stack listens and keeps its data; no `mongo_url` means the embedded store."""

    model_config = SettingsConfigDict(env_prefix="CONTESTO_", extra="ignore")

    mongo_url: str | None = None
    data_dir: Path = Path("var")
    host: str = "127.0.0.1"
    port: int = 1026
    log_level: str = "info"
    # One log line per request costs about 4% of a request's CPU on the hot path.
    access_log: bool = False
