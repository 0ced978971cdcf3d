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


def applied(ch: ClickHouse) -> dict[int, str]:
    ch.execute(LEDGER_DDL)
    return {int(v): str(c) for v, c in ch.execute("SELECT version, checksum FROM schema_migrations FINAL")}


def migrate(ch: ClickHouse, directory: Path) -> list[Migration]:
    """Apply what is missing, in order. Returns the migrations applied now."""
    ch.ensure_database()
    migrations = load_migrations(directory)
    done = applied(ch)
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
            ch.execute(stmt)
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
