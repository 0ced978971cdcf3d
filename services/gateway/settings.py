"""Gateway settings from the environment (prefix IOC_GATEWAY_)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from ioccore.settings import get_settings as core_settings


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IOC_GATEWAY_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8780

    # Production: tokens from an OIDC issuer, verified against its JWKS. Unset: locally signed tokens
    # (`ioc token`), key pair generated under IOC_HOME/gateway/ (never in the repository).
    oidc_issuer: str | None = None
    oidc_jwks_url: str | None = None
    audience: str = "ioc-gateway"
    local_issuer: str = "urn:ioc:local"
    key_dir: Path | None = None

    # Ingest limits, per client (the token's subject).
    max_request_bytes: int = 4 * 1024 * 1024  # = ioccore.contracts.MAX_RECORD_BYTES
    max_batch_events: int = 10_000
    # The whole header section of any request (a JWT is 1-2 kB).
    max_header_bytes: int = 32 * 1024
    requests_per_s: float = 1000.0
    request_burst: float = 2000.0
    events_per_s: float = 100_000.0
    event_burst: float = 200_000.0
    # Re-sent events are recognised in memory (the last N keys), optionally also in the archive (one
    # ClickHouse query per request: off by default, since the archive and the indicators service already
    # count a re-sent (source, id) once; the gateway's check only saves re-publishing and reports duplicates).
    dedup_memory: int = 1_000_000  # ~200 MB at the full million keys (measured)
    dedup_archive: bool = False

    # Alert commands: how long to wait for the alerts service's result.
    command_timeout_s: float = 8.0

    # Live stream.
    stream_buffer: int = 20_000
    stream_buffer_bytes: int = 64 * 1024 * 1024
    stream_client_queue: int = 5_000
    stream_keepalive_s: float = 15.0
    # Whether the app starts its Kafka parts (producer, stream hub, command results); tests of reads only
    # may switch it off.
    kafka: bool = True

    @property
    def effective_key_dir(self) -> Path:
        return self.key_dir or core_settings().home / "gateway"


@lru_cache(maxsize=1)
def get_gateway_settings() -> GatewaySettings:
    return GatewaySettings()
