"""Columns of tables another service owns (alert_events, calls): read from system.columns, so the gateway
returns whatever that service's migration defines and filters only on the columns contracts.md guarantees."""

from __future__ import annotations

import time

from ioccore.clickhouse import ClickHouse
from ioccore.sql import identifier

_cache: dict[tuple[int, str], tuple[float, list[tuple[str, str]]]] = {}


def table_columns(ch: ClickHouse, table: str, max_age_s: float = 60.0) -> list[tuple[str, str]]:
    key = (id(ch), table)
    hit = _cache.get(key)
    if hit and time.monotonic() - hit[0] < max_age_s and hit[1]:
        return hit[1]
    rows = ch.execute(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = %(t)s",
        {"t": table},
    )
    cols = [(identifier(n), t) for n, t in rows]
    _cache[key] = (time.monotonic(), cols)
    return cols
