"""Hotline reads: live calls (table `calls`, owned by services/hotline) and KPIs (catalog indicators of the
hotline fields in indicator_values)."""

from __future__ import annotations

from typing import Any

from ioccore.clickhouse import ClickHouse
from services.gateway.indicators import service as indicators
from services.gateway.sqlparams import in_

CLOSED_STATES = ("closed", "resolved", "abandoned")  # a live call is in none of these
KPI_FIELDS = ("hotline_1022", "emergency_115")
# calls (contracts/clickhouse/0005_hotline.sql) without caller_hash: the masked number is what screens show
CALL_COLUMNS = (
    "call_id", "line", "state", "known", "unit", "district", "day", "caller_masked", "has_location",
    "received_at", "answered_at", "deadline", "received_ms", "answered_ms", "wait_s", "agent", "field", "topic",
    "urgent", "suggested_focal_point", "suggested_hospital", "suggested_km", "focal_point", "hospital",
    "distance_km", "forwarded_ms", "closed_ms", "outcome", "callback_ms", "resolved", "resolved_ms",
    "satisfaction", "deadline_ms", "on_time", "overdue", "anomalies", "events", "version", "updated_at",
)  # fmt: skip


def live_calls(ch: ClickHouse, units: list[str], limit: int) -> list[dict[str, Any]]:
    """Calls not closed yet, newest first (never a clear number: calls holds none)."""
    if not units:
        return []
    rows = ch.execute(
        f"SELECT {', '.join(CALL_COLUMNS)} FROM calls FINAL WHERE unit IN %(units)s AND state NOT IN %(closed)s "  # noqa: S608
        "ORDER BY received_at DESC LIMIT %(limit)s",
        {"units": in_(tuple(units)), "closed": in_(CLOSED_STATES), "limit": limit},
    )
    return [dict(zip(CALL_COLUMNS, r, strict=True)) for r in rows]


def kpis(ch: ClickHouse, unit: str) -> list[dict[str, Any]]:
    """The latest daily value of each hotline indicator for the unit."""
    out: list[dict[str, Any]] = []
    for field in KPI_FIELDS:
        out.extend(indicators.latest(ch, [unit], field=field, cadence="day"))
    return out
