"""Frozen, numbered ClickHouse migrations (contracts/clickhouse/NNNN_name.sql), applied in order.

`ioc migrate` records each applied migration with its checksum and is safe to run twice. A
migration that changed after it was applied is refused: add a new one instead. Every statement
must be idempotent on its own (IF NOT EXISTS ...), so a migration interrupted half-way can be
applied again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from ioccore.clickhouse import ClickHouse
from ioccore.errors import ContractError
from ioccore.logging import get_logger
from ioccore.sql import identifier

log = get_logger("ioccore.migrations")

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime
)
ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self) -> list[str]:
        return split_statements(self.sql)


def split_statements(sql: str) -> list[str]:
    """Split on `;` at the end of a line, dropping `--` comment lines and blanks."""
    lines = [ln for ln in sql.splitlines() if not ln.strip().startswith("--")]
    parts = re.split(r";\s*(?:\n|$)", "\n".join(lines))
    return [p.strip() for p in parts if p.strip()]


# ---------------------------------------------------------------------------------------------------------
# Cluster mode (deploy/k8s prod): each table becomes a Replicated `<name>_local` on every node and a
# Distributed `<name>` over them, so services keep their table names. Rows are sharded by the table's
# natural key (its ORDER BY), so every version of a row lands on one shard and FINAL / argMax stay right.
# ---------------------------------------------------------------------------------------------------------
# Tables whose rows must stay together on one shard: a flush of a stream partition is one INSERT with its
# checkpoint row (services/indicators), so they are sharded by that partition.
SHARD_KEYS = {
    "indicator_partials": "(version_set, partition)",
    "indicator_segments": "(version_set, partition)",
}
_CREATE = re.compile(
    r"(?is)^\s*CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+(\w+)\s*(\(.*\))\s*ENGINE\s*=\s*(\w*MergeTree)\s*"
    r"(?:\((.*?)\))?\s*(.*)$"
)
_ORDER_BY = re.compile(r"(?is)\bORDER\s+BY\s+(.+?)\s*(?:\bSETTINGS\b.*)?$")


def on_cluster(stmt: str, cluster: str, database: str) -> list[str]:
    """The statements that create `stmt`'s table on `cluster`: Replicated local table + Distributed table."""
    m = _CREATE.match(stmt)
    if not m:
        raise ContractError(
            f"cluster mode handles CREATE TABLE ... MergeTree statements only, not: {stmt[:80]}"
        )
    name, columns, engine, args, rest = m.groups()
    order = _ORDER_BY.search(rest)
    if not order:
        raise ContractError(f"{name}: no ORDER BY to shard by")
    identifier(cluster)
    identifier(database)
    key = SHARD_KEYS.get(name, order.group(1).strip())
    engine_args = f"'/clickhouse/ioc/tables/{{shard}}/{database}/{name}_local', '{{replica}}'"
    if args and args.strip():
        engine_args += f", {args.strip()}"
    local = (
        f"CREATE TABLE IF NOT EXISTS {name}_local ON CLUSTER {cluster} {columns} "
        f"ENGINE = Replicated{engine}({engine_args}) {rest}"
    )
    distributed = (
        f"CREATE TABLE IF NOT EXISTS {name} ON CLUSTER {cluster} AS {name}_local "
        f"ENGINE = Distributed({cluster}, {database}, {name}_local, cityHash64({key}))"
    )
    return [local, distributed]


def load_migrations(directory: Path) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise ContractError(f"{path}: migration files are named NNNN_name.sql")
        found.append(Migration(int(m.group(1)), m.group(2), path, path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise ContractError(
            f"{directory}: migrations must be numbered 0001, 0002, ... without gaps: {versions}"
        )
    for mig in found:
        for stmt in mig.statements():
            if re.match(
                r"(?is)^CREATE\s+(TABLE|DATABASE|VIEW|MATERIALIZED\s+VIEW)\b", stmt
            ) and not re.search(r"(?is)\bIF\s+NOT\s+EXISTS\b", stmt):
                raise ContractError(f"{mig.path}: every CREATE must say IF NOT EXISTS (re-runnable)")
    return found


def applied(ch: ClickHouse, cluster: str | None = None) -> dict[int, str]:
    for stmt in on_cluster(LEDGER_DDL, cluster, ch.database) if cluster else [LEDGER_DDL]:
        ch.execute(stmt)
    return {int(v): str(c) for v, c in ch.execute("SELECT version, checksum FROM schema_migrations FINAL")}


def migrate(ch: ClickHouse, directory: Path, cluster: str | None = None) -> list[Migration]:
    """Apply what is missing, in order. Returns the migrations applied now. With `cluster`, every table is
    created Replicated on each node of that cluster with a Distributed table over it (see on_cluster)."""
    ch.ensure_database()
    if cluster:
        identifier(cluster)
        ch.execute(f"CREATE DATABASE IF NOT EXISTS {identifier(ch.database)} ON CLUSTER {cluster}")
    migrations = load_migrations(directory)
    done = applied(ch, cluster)
    for mig in migrations:
        if mig.version in done and done[mig.version] != mig.checksum:
            raise ContractError(
                f"{mig.path.name} changed after it was applied (checksum differs): "
                "migrations are frozen, add a new numbered migration instead"
            )
    newly: list[Migration] = []
    for mig in migrations:
        if mig.version in done:
            continue
        for stmt in mig.statements():
            for part in on_cluster(stmt, cluster, ch.database) if cluster else [stmt]:
                ch.execute(part)
        ch.insert(
            "schema_migrations",
            {
                "version": [mig.version],
                "name": [mig.name],
                "checksum": [mig.checksum],
                "applied_at": [dt.datetime.now(dt.UTC).replace(microsecond=0)],
            },
        )
        log.info("migration.applied", version=mig.version, name=mig.name, database=ch.database)
        newly.append(mig)
    return newly
