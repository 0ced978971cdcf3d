"""Settings of the indicators service, from the environment (prefix IOC_INDICATORS_)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class IndicatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IOC_INDICATORS_", extra="ignore")

    app_id: str = "ioc-indicators"
    # The boundary set a first live version is built under (later versions come from `ioc replay`).
    boundary_set: str = "2024"
    # How late an event may arrive, against the newest event time of its partition, and still count.
    lateness_days: float = 7.0
    # Reported figures are judged by report time; a yearly figure may come months after its year.
    figure_lateness_days: float = 400.0
    # A flush as soon as `max_records` Kafka records (of up to 500 events each) or `max_flush_bytes` of
    # record values (~380 bytes per event) are in, else `flush_s` after the previous one. Live traffic
    # flushes every second; a backlog (catch-up after a stop) runs large flushes back to back, which
    # coalesce the changes of a busy series into one value row and one state row (commit time per event
    # falls with the flush size), while the byte bound keeps a flush's memory bounded (~1.2 kB per decoded event,
    # one partition's at a time).
    flush_s: float = 1.0
    max_records: int = 4000
    max_flush_bytes: int = 64 * 1024 * 1024
    # Records Faust may hold fetched beyond the batch being read ahead (its default, 4,096 records of ~110 kB
    # for a backlog of batch records, is ~450 MB of memory); 512 keeps the fetches ahead of the flushes.
    stream_buffer_records: int = 512
    log_every_s: float = 30.0
    # Log `indicators.flushed` with each owned partition's offset once its values are written (tests, bench).
    log_flushes: bool = False
    # How often a worker looks for a version set switched to by `ioc replay`.
    version_check_s: float = 5.0
