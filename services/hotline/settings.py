"""Settings of the hotline service, from the environment (prefix IOC_HOTLINE_)."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class HotlineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IOC_HOTLINE_", extra="ignore")

    app_id: str = "ioc-hotline"
    # Key of the callers' hashes. Unset locally: generated once into $IOC_HOME/secrets/hotline_caller_key.
    caller_key: SecretStr | None = None
    boundary_set: str = "2024"
    # A flush as soon as `max_records` records or `max_flush_bytes` of them are in, else `flush_s` after the
    # previous one (the first call after a quiet spell goes at once): ClickHouse writes, live feed, figures.
    flush_s: float = 0.2
    max_flush_bytes: int = 16 * 1024 * 1024
    # Cap on a fetch's wait for data (Tansu answers an empty fetch only at its max wait; Faust's is 1.5 s).
    fetch_max_wait_ms: int = 100
    max_records: int = 2000
    # Calls stay in memory (and are restored from call_events on start) this many days after their last event.
    retention_days: float = 14.0
    log_every_s: float = 30.0
    # Log `hotline.flushed` with the offsets written per partition after each flush (tests, bench).
    log_flushes: bool = False
