"""The hotline service's ClickHouse tables (contracts/clickhouse/0005_hotline.sql). Parameterised queries that
run on 18.16 and on chdb; every write is idempotent (ReplacingMergeTree on the natural key)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import msgspec

from ioccore.archive import RecordRef
from ioccore.clickhouse import ClickHouse
from ioccore.topics import HOTLINE_CALLS
from services.hotline.calls import KIND_RANK, CallEvent, parse_ms
from services.hotline.kpis import FigureKey
from services.hotline.routing import Router

CALL_EVENTS = "call_events"
CALLS = "calls"
FIGURES = "hotline_figures"
AVAILABILITY = "facility_availability"
_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder()
EPOCH = dt.date(1970, 1, 1)


def _now() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp())


def seq_of(ev: CallEvent) -> str:
    """The fold's order as a sortable string: time, lifecycle rank, source, id."""
    return f"{ev.t:013d}|{KIND_RANK[ev.kind]:02d}|{ev.source}|{ev.event_id}"


def write_events(ch: ClickHouse, rows: list[tuple[CallEvent, RecordRef | None]]) -> int:
    if not rows:
        return 0
    now = _now()
    cols: dict[str, list[Any]] = {
        c: []
        for c in (
            "call_id", "source", "event_id", "line", "type", "subject", "time", "time_ms", "seq",
            "deadline_ms", "data", "received_at", "topic", "partition", "offset",
        )
    }  # fmt: skip
    for ev, rec in rows:
        cols["call_id"].append(ev.call_id)
        cols["source"].append(ev.source)
        cols["event_id"].append(ev.event_id)
        cols["line"].append(ev.call_id.split("-", 1)[0])
        cols["type"].append(ev.kind)
        cols["subject"].append(ev.subject)
        cols["time"].append(ev.t // 1000)
        cols["time_ms"].append(ev.t)
        cols["seq"].append(seq_of(ev))
        cols["deadline_ms"].append(parse_ms(str(ev.data.get("deadline", ""))) or 0)
        cols["data"].append(_enc.encode(ev.data).decode())
        cols["received_at"].append(now)
        cols["topic"].append(rec.topic if rec else "")
        cols["partition"].append(rec.partition if rec else 0)
        cols["offset"].append(rec.offset if rec else 0)
    return ch.insert(CALL_EVENTS, cols)


def write_calls(ch: ClickHouse, calls: Iterable[Any], router: Router) -> int:
    cols: dict[str, list[Any]] = {}
    now = _now()

    def put(name: str, value: Any) -> None:
        cols.setdefault(name, []).append(value)

    for call in calls:
        s = call.state
        if s is None:
            continue
        put("call_id", s.call_id)
        put("line", s.line)
        put("state", s.state)
        put("known", int(s.known))
        put("unit", s.unit)
        put("district", router.district(s.unit))
        put("day", EPOCH + dt.timedelta(days=s.day))
        put("caller_hash", s.caller_hash)
        put("caller_masked", s.caller_masked)
        put("has_location", int(s.has_location))
        put("received_at", (s.received_at or 0) // 1000)
        put("answered_at", (s.answered_at or 0) // 1000)
        put("deadline", (s.deadline or 0) // 1000)
        put("received_ms", s.received_at or 0)
        put("answered_ms", s.answered_at or 0)
        put("wait_s", -1 if s.wait_s is None else s.wait_s)
        put("agent", s.agent)
        put("field", s.field)
        put("topic", s.topic)
        put("urgent", int(s.urgent))
        put("suggested_focal_point", call.suggested_focal_point)
        put("suggested_hospital", call.suggested_hospital)
        put("suggested_km", call.suggested_km or 0.0)
        put("focal_point", s.focal_point)
        put("hospital", s.hospital)
        put("distance_km", s.distance_km or 0.0)
        put("forwarded_ms", s.forwarded_at or 0)
        put("closed_ms", s.closed_at or 0)
        put("outcome", s.outcome)
        put("callback_ms", s.callback_at or 0)
        put("resolved", int(s.resolved))
        put("resolved_ms", s.resolved_at or 0)
        put("satisfaction", s.satisfaction or 0)
        put("deadline_ms", s.deadline or 0)
        put("on_time", int(s.on_time))
        put("overdue", int(s.overdue))
        put("anomalies", ",".join(sorted(call.anomalies)))
        put("events", s.events)
        put("version", s.events)
        put("updated_at", now)
    return ch.insert(CALLS, cols) if cols else 0


def write_figures(ch: ClickHouse, rows: list[tuple[FigureKey, float, int, dict[str, Any]]]) -> int:
    if not rows:
        return 0
    now = _now()
    return ch.insert(
        FIGURES,
        {
            "indicator": [k.indicator for k, _, _, _ in rows],
            "cadence": ["day"] * len(rows),
            "unit": [k.unit for k, _, _, _ in rows],
            "period": [k.period for k, _, _, _ in rows],
            "value": [float(v) for _, v, _, _ in rows],
            "revision": [r for _, _, r, _ in rows],
            "event_id": [e["id"] for _, _, _, e in rows],
            "time": [(parse_ms(e["time"]) or 0) // 1000 for _, _, _, e in rows],
            "updated_at": [now] * len(rows),
        },
    )


def write_availability(ch: ClickHouse, rows: list[tuple[str, bool, int, str, str]]) -> int:
    return ch.insert(
        AVAILABILITY,
        {
            "hospital": [r[0] for r in rows],
            "available": [int(r[1]) for r in rows],
            "time_ms": [r[2] for r in rows],
            "event_id": [r[3] for r in rows],
            "reason": [r[4] for r in rows],
        },
    )


# ---------------------------------------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------------------------------------
def newest_event_ms(ch: ClickHouse) -> int:
    rows = ch.execute("SELECT max(time_ms) FROM call_events")
    return int(rows[0][0] or 0) if rows else 0


def load_events(ch: ClickHouse, since_ms: int) -> list[CallEvent]:
    """Every event of the calls with an event at or after `since_ms`."""
    rows = ch.execute(
        "SELECT call_id, source, event_id, type, time_ms, subject, data FROM call_events FINAL "
        "WHERE call_id IN (SELECT call_id FROM call_events WHERE time_ms >= %(since)s)",
        {"since": since_ms},
    )
    return [CallEvent(c, e, s, k, int(t), subj, _dec.decode(d)) for c, s, e, k, t, subj, d in rows]


def load_availability(ch: ClickHouse) -> list[tuple[str, int, int, str]]:
    return [
        (h, int(a), int(t), i)
        for h, a, t, i in ch.execute(
            "SELECT hospital, available, time_ms, event_id FROM facility_availability "
            "GROUP BY hospital, available, time_ms, event_id"
        )
    ]


def load_figures(ch: ClickHouse) -> dict[FigureKey, tuple[float, int]]:
    rows = ch.execute(
        "SELECT indicator, unit, period, argMax(value, revision), max(revision) FROM hotline_figures "
        "GROUP BY indicator, unit, period"
    )
    return {FigureKey(i, u, p): (float(v), int(r)) for i, u, p, v, r in rows}


def calls_summary(ch: ClickHouse) -> dict[str, Any]:
    rows = ch.execute(
        "SELECT line, state, count() FROM calls FINAL GROUP BY line, state ORDER BY line, state"
    )
    by_state: dict[str, dict[str, int]] = {}
    for line, state, n in rows:
        by_state.setdefault(line, {})[state] = int(n)
    anomalies = {
        k: int(n)
        for k, n in ch.execute(
            "SELECT a, count() FROM calls FINAL ARRAY JOIN splitByChar(',', anomalies) AS a "
            "WHERE anomalies != '' GROUP BY a ORDER BY a"
        )
    }
    nearest = ch.execute(
        "SELECT countIf(hospital != '' AND hospital = suggested_hospital), countIf(hospital != '') "
        "FROM calls FINAL WHERE line = '115'"
    )
    dead = ch.execute("SELECT count() FROM dead_letters FINAL WHERE topic = %(t)s", {"t": HOTLINE_CALLS})
    return {
        "calls": by_state,
        "anomalies": anomalies,
        "forwarded_115_to_nearest": {"nearest": int(nearest[0][0]), "forwarded": int(nearest[0][1])},
        "dead_letters": int(dead[0][0]),
        "figures": int(ch.execute("SELECT count() FROM (SELECT 1 FROM hotline_figures FINAL)")[0][0]),
    }


def hourly_counts(ch: ClickHouse, day: dt.date) -> list[dict[str, Any]]:
    """Calls per local hour of a day by line, field and district (known calls)."""
    rows = ch.execute(
        "SELECT line, field, district, intDiv((intDiv(received_ms, 1000) + 25200) %% 86400, 3600) AS hour, "
        "count() FROM calls FINAL WHERE known = 1 AND day = %(day)s "
        "GROUP BY line, field, district, hour ORDER BY line, field, district, hour",
        {"day": day},
    )
    return [
        {"line": ln, "field": f, "district": d, "hour": int(h), "calls": int(n)} for ln, f, d, h, n in rows
    ]
