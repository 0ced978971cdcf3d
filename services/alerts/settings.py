"""Settings of the alerts service, from the environment (prefix IOC_ALERTS_)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class AlertSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IOC_ALERTS_", extra="ignore")

    app_id: str = "ioc-alerts"
    # Indicator records taken per step (each one unit's event of up to 1,000 values) and the wait for a batch.
    max_records: int = 200
    batch_s: float = 0.05
    max_batch_bytes: int = 64 << 20  # a step's records, in bytes (an indicators record runs to ~300 kB)
    # A fetch on the local Tansu waits this long when no data is there, even if some arrives (ioccore.streams).
    fetch_max_wait_ms: int = 50
    # Timer for escalations, duration rules and no-data deadlines.
    tick_s: float = 5.0
    log_every_s: float = 30.0
