"""Hotline reads: live calls (table `calls`, owned by services/hotline) and KPIs (catalog indicators of the
hotline fields in indicator_values)."""

from __future__ import annotations

from typing import Any

from ioccore.clickhouse import ClickHouse
from services.gateway.columns import table_columns
from services.gateway.indicators import service as indicators
from services.gateway.sqlparams import in_

CLOSED_STATES = ("closed", "resolved", "abandoned")  # a live call is in none of these
KPI_FIELDS = ("hotline_1022", "emergency_115")


def live_calls(ch: ClickHouse, units: list[str], limit: int) -> list[dict[str, Any]]:
    """Calls not closed yet, newest first, with whatever columns `calls` has (never a clear number)."""
    cols = [
        n
        for n, _ in table_columns(ch, "calls")
        if n not in ("caller", "caller_number", "phone", "caller_hash")
    ]
    if not cols or not units:
        return []
    rows = ch.execute(
        f"SELECT {', '.join(cols)} FROM calls FINAL WHERE unit IN %(units)s AND state NOT IN %(closed)s "  # noqa: S608
        "ORDER BY received_at DESC LIMIT %(limit)s",
        {"units": in_(tuple(units)), "closed": in_(CLOSED_STATES), "limit": limit},
    )
    return [dict(zip(cols, r, strict=True)) for r in rows]


def kpis(ch: ClickHouse, unit: str) -> list[dict[str, Any]]:
    """The latest daily value of each hotline indicator for the unit."""
    out: list[dict[str, Any]] = []
    for field in KPI_FIELDS:
        out.extend(indicators.latest(ch, [unit], field=field, cadence="day"))
    return out
