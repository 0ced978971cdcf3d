"""ClickHouse for the alerts service: alert_events (the event store) and alerts (current state).

Both writes are keyed (alert_id, version), so a rewrite after a crash changes nothing. The worker writes
them before it publishes on ioc.alerts, and rebuilds its state from alert_events at start.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

from ioccore.clickhouse import ClickHouse
from services.alerts.lifecycle import Alert, Event
from services.alerts.rules import epoch

ALERT_COLUMNS = (
    "alert_id", "rule", "indicator", "field", "cadence", "period", "unit", "level", "district", "severity",
    "state", "opened_at", "updated_at", "acknowledged_by", "assignee", "escalated", "silenced", "value",
    "threshold", "title_vi", "sop_vi", "version",
)  # fmt: skip


def write(ch: ClickHouse, events: list[tuple[str, dict[str, Any], Alert]]) -> None:
    """The events (transition, data, the alert after it) into alert_events, then the states into alerts."""
    if not events:
        return
    now = int(time.time())
    ev: dict[str, list[Any]] = {
        k: []
        for k in (
            "alert_id", "version", "transition", "at", "rule", "indicator", "field", "cadence", "period", "unit",
            "level", "district", "severity", "state", "actor", "reason", "value", "threshold", "command_id",
            "payload", "recorded_at",
        )
    }  # fmt: skip
    for transition, d, _ in events:
        for k in ("alert_id", "rule", "indicator", "field", "cadence", "period", "unit", "level", "district",
                  "severity", "state", "actor", "reason"):  # fmt: skip
            ev[k].append(str(d[k]))
        ev["version"].append(int(d["version"]))
        ev["transition"].append(transition)
        ev["at"].append(int(epoch(d["at"])))
        ev["value"].append(d["value"])
        ev["threshold"].append(d["threshold"])
        ev["command_id"].append(d.get("command_id") or "")
        ev["payload"].append(json.dumps(d, ensure_ascii=False, separators=(",", ":")))
        ev["recorded_at"].append(now)
    ch.insert("alert_events", ev)
    rows: dict[str, list[Any]] = {k: [] for k in ALERT_COLUMNS}
    for _, _, a in events:
        for k in ALERT_COLUMNS:
            v = getattr(a, k)
            if k in ("opened_at", "updated_at"):
                v = int(epoch(v))
            elif k in ("escalated", "silenced"):
                v = int(v)
            elif k in ("acknowledged_by", "assignee"):
                v = v or ""
            rows[k].append(v)
    ch.insert("alerts", rows)


def load_events(ch: ClickHouse) -> Iterable[Event]:
    """Every stored lifecycle event, each alert's in version order (the input of lifecycle.fold)."""
    rows = ch.execute("SELECT transition, payload FROM alert_events FINAL ORDER BY alert_id, version")
    for transition, payload in rows:
        yield transition, json.loads(payload)


def timeline(ch: ClickHouse, alert_id: str) -> list[dict[str, Any]]:
    """The full timeline of one alert, oldest first."""
    rows = ch.execute(
        "SELECT version, transition, payload FROM alert_events FINAL WHERE alert_id = %(a)s ORDER BY version",
        {"a": alert_id},
    )
    return [{"version": v, "transition": t, **json.loads(p)} for v, t, p in rows]


def query(
    ch: ClickHouse,
    *,
    district: str | None = None,
    state: str | None = None,
    severity: str | None = None,
    field: str | None = None,
    since: float | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Current alerts filtered by district, state, severity, field and last change time; newest first."""
    where, params = ["1"], {"limit": limit}
    for name, value in (("district", district), ("state", state), ("severity", severity), ("field", field)):
        if value is not None:
            where.append(f"{name} = %({name})s")
            params[name] = value
    if since is not None:
        where.append("updated_at >= toDateTime(%(since)s)")
        params["since"] = int(since)
    cols = ", ".join(ALERT_COLUMNS)
    rows = ch.execute(
        f"SELECT {cols} FROM alerts FINAL WHERE {' AND '.join(where)} "  # noqa: S608 - fixed names, values bound
        "ORDER BY updated_at DESC, alert_id LIMIT %(limit)s",
        params,
    )
    return [dict(zip(ALERT_COLUMNS, r, strict=True)) for r in rows]


def counts(ch: ClickHouse) -> dict[str, dict[str, int]]:
    """Open alerts per district and severity, and all alerts per state."""
    by_state = dict(ch.execute("SELECT state, count() FROM alerts FINAL GROUP BY state"))
    open_rows = ch.execute(
        "SELECT district, severity, count() FROM alerts FINAL WHERE state != 'resolved' "
        "GROUP BY district, severity ORDER BY district, severity"
    )
    return {
        "by_state": {k: int(v) for k, v in by_state.items()},
        "open_by_district": {f"{d}/{s}": int(n) for d, s, n in open_rows},
    }


def active_version_set(ch: ClickHouse) -> str | None:
    """The indicator values' active version set (the same rule as the indicators service's reads)."""
    rows = ch.execute(
        "SELECT version_set, argMax(status, revision), max(revision) FROM indicator_versions "
        "GROUP BY version_set ORDER BY max(revision) DESC"
    )
    for version_set, status, _ in rows:
        if status == "active":
            return str(version_set)
    return None


SPAN_DAYS = {"day": 7, "week": 35, "month": 130, "quarter": 400, "year": 1200}


def recent_values(
    ch: ClickHouse, version_set: str, wanted: Mapping[str, set[str]]
) -> list[tuple[str, str, str, str, str, float, int]]:
    """The newest values of the indicators rules watch (cadence -> indicators), per cadence the periods within
    a few windows of the newest one: (indicator, cadence, unit, period, period_start, value, updated_at)."""
    out = []
    for cadence, indicators in sorted(wanted.items()):
        rows = ch.execute(
            "SELECT indicator, cadence, unit, period, toString(period_start), value, toUInt32(updated_at) "
            "FROM indicator_values FINAL WHERE version_set = %(v)s AND cadence = %(c)s "
            "AND indicator IN %(i)s AND period_start >= "
            "(SELECT max(period_start) FROM indicator_values WHERE version_set = %(v)s AND cadence = %(c)s "
            "AND indicator IN %(i)s) - %(span)s",
            {"v": version_set, "c": cadence, "i": tuple(sorted(indicators)), "span": SPAN_DAYS[cadence]},
        )
        out.extend((r[0], r[1], r[2], r[3], r[4], float(r[5]), int(r[6])) for r in rows)
    return out
