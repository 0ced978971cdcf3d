"""Alert reads (tables `alerts` and `alert_events`, owned by services/alerts: contracts/clickhouse/0004_alerts.sql)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ioccore.clickhouse import ClickHouse
from services.gateway.sqlparams import in_

ALERT_COLUMNS = (
    "alert_id", "rule", "indicator", "field", "cadence", "period", "unit", "level", "district", "severity",
    "state", "opened_at", "updated_at", "acknowledged_by", "assignee", "escalated", "silenced", "value",
    "threshold", "title_vi", "sop_vi", "version",
)  # fmt: skip
OPEN_STATES = ("firing", "acknowledged", "assigned")
EVENT_COLUMNS = (  # alert_events (contracts/clickhouse/0004_alerts.sql)
    "alert_id", "version", "transition", "at", "rule", "indicator", "field", "cadence", "period", "unit",
    "level", "district", "severity", "state", "actor", "reason", "value", "threshold", "command_id", "payload",
    "recorded_at",
)  # fmt: skip


def _row(r: tuple) -> dict[str, Any]:
    d = dict(zip(ALERT_COLUMNS, r, strict=True))
    d["escalated"] = bool(d["escalated"])
    d["silenced"] = bool(d["silenced"])
    return d


def query(
    ch: ClickHouse,
    units: list[str],
    *,
    states: list[str] | None = None,
    severities: list[str] | None = None,
    field: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    if not units:
        return []
    where = ["unit IN %(units)s"]
    params: dict[str, Any] = {"units": in_(tuple(units)), "limit": limit}
    if states:
        where.append("state IN %(states)s")
        params["states"] = in_(states)
    if severities:
        where.append("severity IN %(sev)s")
        params["sev"] = in_(severities)
    if field:
        where.append("field = %(field)s")
        params["field"] = field
    if since:
        where.append("opened_at >= %(since)s")
        params["since"] = since
    if until:
        where.append("opened_at <= %(until)s")
        params["until"] = until
    rows = ch.execute(
        f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts FINAL WHERE {' AND '.join(where)} "  # noqa: S608
        "ORDER BY opened_at DESC, alert_id LIMIT %(limit)s",
        params,
    )
    return [_row(r) for r in rows]


def get(ch: ClickHouse, alert_id: str) -> dict[str, Any] | None:
    rows = ch.execute(
        f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts FINAL WHERE alert_id = %(id)s LIMIT 1",  # noqa: S608
        {"id": alert_id},
    )
    return _row(rows[0]) if rows else None


def timeline(ch: ClickHouse, alert_id: str) -> list[dict[str, Any]]:
    """Every lifecycle event of the alert, oldest first."""
    rows = ch.execute(
        f"SELECT {', '.join(EVENT_COLUMNS)} FROM alert_events FINAL WHERE alert_id = %(id)s ORDER BY version",  # noqa: S608
        {"id": alert_id},
    )
    return [dict(zip(EVENT_COLUMNS, r, strict=True)) for r in rows]


def open_by_district(ch: ClickHouse, units: list[str]) -> list[dict[str, Any]]:
    """Open alerts per district and severity (the wall's district panel)."""
    if not units:
        return []
    rows = ch.execute(
        "SELECT district, severity, count() FROM alerts FINAL "
        "WHERE unit IN %(units)s AND state IN %(open)s GROUP BY district, severity",
        {"units": in_(tuple(units)), "open": in_(OPEN_STATES)},
    )
    return [{"district": d, "severity": s, "count": c} for d, s, c in rows]


def open_by_field(ch: ClickHouse, units: list[str]) -> list[dict[str, Any]]:
    if not units:
        return []
    rows = ch.execute(
        "SELECT field, severity, count() FROM alerts FINAL "
        "WHERE unit IN %(units)s AND state IN %(open)s GROUP BY field, severity",
        {"units": in_(tuple(units)), "open": in_(OPEN_STATES)},
    )
    return [{"field": f, "severity": s, "count": c} for f, s, c in rows]
