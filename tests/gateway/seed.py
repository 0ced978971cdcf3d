"""Rows and records for the gateway's read tests, in the shapes of migrations 0004/0005 and the event contracts
(the alerts and hotline services write the real ones; their own tests cover that)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from ioccore.clickhouse import ClickHouse

NOW = dt.datetime(2026, 11, 23, 9, 0, 0)
D718, D724 = "718", "724"
C718, C724 = "25741", "25942"  # a commune of each
TODAY = dt.date(2026, 11, 23)


def active(ch: ClickHouse, version_set: str = "v1", revision: int | None = None) -> None:
    ch.insert(
        "indicator_versions",
        {
            "version_set": [version_set],
            "boundary_set": ["2024"],
            "catalog_hash": ["test"],
            "status": ["active"],
            "note": [""],
            "updated_at": [NOW],
            "revision": [revision or time.time_ns()],
        },
    )


def values(ch: ClickHouse, rows: list[dict[str, Any]]) -> None:
    cols = ("version_set", "indicator", "field", "cadence", "level", "unit", "period", "period_start", "value",
            "n", "version", "updated_at")  # fmt: skip
    defaults = {"version_set": "v1", "cadence": "day", "n": 1, "version": 1, "updated_at": NOW}
    full = [{**defaults, **r} for r in rows]
    ch.insert("indicator_values", {c: [r[c] for r in full] for c in cols})


def level_of(unit: str) -> str:
    return {2: "province", 3: "district", 5: "commune"}[len(unit)]


def value(indicator: str, unit: str, day: dt.date, v: float, **kw: Any) -> dict[str, Any]:
    return {
        "indicator": indicator,
        "field": indicator.split(".")[0],
        "level": level_of(unit),
        "unit": unit,
        "period": day.isoformat(),
        "period_start": day,
        **kw,
        "value": v,
    }


def alert_row(alert_id: str, unit: str, district: str, **kw: Any) -> dict[str, Any]:
    row = {
        "alert_id": alert_id, "rule": "r.test", "indicator": "transport.accidents", "field": "transport",
        "cadence": "day", "period": "2026-11-23", "unit": unit, "level": level_of(unit), "district": district,
        "severity": "warning", "state": "firing", "opened_at": NOW, "updated_at": NOW, "acknowledged_by": "",
        "assignee": "", "escalated": 0, "silenced": 0, "value": 12.0, "threshold": 10.0,
        "title_vi": "Số vụ tai nạn giao thông vượt ngưỡng", "sop_vi": "1. Liên hệ Công an huyện.\n2. Báo cáo.",
        "version": 1,
    }  # fmt: skip
    row.update(kw)
    return row


def alerts(ch: ClickHouse, rows: list[dict[str, Any]]) -> None:
    ch.insert("alerts", {c: [r[c] for r in rows] for c in rows[0]})


def alert_events(ch: ClickHouse, rows: list[dict[str, Any]]) -> None:
    """Rows of alert_events (services/alerts' 0004_alerts.sql); unlisted columns take their defaults."""
    base = {"reason": "", "severity": "warning", "at": NOW, "recorded_at": NOW, "payload": "{}"}
    full = [{**base, **r} for r in rows]
    ch.insert("alert_events", {c: [r[c] for r in full] for c in full[0]})


def call_row(call_id: str, unit: str, district: str, state: str, **kw: Any) -> dict[str, Any]:
    row = {
        "call_id": call_id, "line": "1022", "state": state, "caller_masked": "09******12", "unit": unit,
        "district": district, "field": "transport", "topic": "traffic", "focal_point": "", "hospital": "",
        "received_at": NOW, "answered_at": NOW, "wait_s": 12, "deadline": NOW + dt.timedelta(hours=4),
        "overdue": 0, "version": 1, "updated_at": NOW,
    }  # fmt: skip
    row.update(kw)
    return row


def calls(ch: ClickHouse, rows: list[dict[str, Any]]) -> None:
    ch.insert("calls", {c: [r[c] for r in rows] for c in rows[0]})


def indicator_row(
    indicator: str, day: dt.date, v: float, version: int = 1, cadence: str = "day", period: str | None = None
) -> dict[str, Any]:
    """One row of a values.updated event: `period` is the label of the period starting on `day` (that day's
    date for cadence day)."""
    return {
        "indicator": indicator, "cadence": cadence, "period": period or day.isoformat(),
        "period_start": day.isoformat(), "value": v, "n": 1, "version": version,
    }  # fmt: skip


def indicator_event(unit: str, *rows: dict[str, Any], version_set: str = "v1") -> dict[str, Any]:
    """A record of ioc.indicators as the indicators service sends it: one values.updated event carrying the
    unit's changed values (indicator_row)."""
    top = max(r["version"] for r in rows)
    return {
        "specversion": "1.0",
        "id": f"{version_set}|{unit}|{top}|{len(rows)}|0",
        "source": "urn:ioc:indicators",
        "type": "vn.binhduong.indicators.values.updated",
        "time": "2026-11-23T09:00:00+07:00",
        "subject": unit,
        "datacontenttype": "application/json",
        "data": {"version_set": version_set, "level": level_of(unit), "unit": unit, "values": list(rows)},
    }


def alert_event(
    transition: str, alert: dict[str, Any], version: int, actor: str = "system"
) -> dict[str, Any]:
    data = {k: alert[k] for k in ("alert_id", "rule", "indicator", "field", "unit", "district", "severity",
                                   "title_vi", "value", "threshold", "cadence", "period")}  # fmt: skip
    data.update(state=alert["state"], version=version, actor=actor, reason="")
    return {
        "specversion": "1.0",
        "id": f"{alert['alert_id']}|{version}",
        "source": "urn:ioc:alerts",
        "type": f"vn.binhduong.alerts.{transition}",
        "time": "2026-11-23T09:00:00+07:00",
        "subject": alert["unit"],
        "data": data,
    }


def live_call_event(call_id: str, unit: str, district: str, state: str = "ringing") -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"{call_id}|{state}",
        "source": "urn:ioc:hotline",
        "type": "vn.binhduong.hotline.live.call",
        "time": "2026-11-23T09:00:00+07:00",
        "subject": unit,
        "data": {
            "call_id": call_id,
            "line": "1022",
            "state": state,
            "caller_masked": "09******12",
            "unit": unit,
            "district": district,
            "received_at": "2026-11-23T09:00:00+07:00",
        },  # fmt: skip
    }
