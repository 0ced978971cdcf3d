"""`ioc hotline reconcile`: recount every daily figure the service reported, with SQL, from the event log
(call_events) alone, and compare. The SQL applies the KPI rules on its own (one row per call from its events,
then sums and quantiles per unit, focal point, hospital, district and day): it shares no code with the fold.
Runs on 18.16 and on chdb."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ioccore.catalog import slug
from ioccore.clickhouse import ClickHouse
from services.hotline.kpis import QUANTILES, day_end_ms, period_of

# One row per call with a call.received, from its events only (the fold's rules, written again in SQL).
PER_CALL = """
SELECT call_id, line, unit, day, received_ms, answered, wait_s, topic, focal_point, hospital, forwarded_ms,
       outcome, resolved, callback_ms, surveyed, satisfaction, has_deadline, deadline_ms, has_overdue,
       resolved AND has_deadline AND callback_ms <= deadline_ms AS on_time,
       has_deadline AND NOT on_time AND (has_overdue OR resolved) AS overdue
FROM (
  SELECT call_id,
    any(line) AS line,
    argMinIf(visitParamExtractString(data, 'unit'), seq, type = 'received') AS unit,
    argMinIf(time_ms, seq, type = 'received') AS received_ms,
    intDiv(intDiv(received_ms, 1000) + 25200, 86400) AS day,
    countIf(type = 'received') > 0 AS known,
    countIf(type = 'answered') > 0 AS answered,
    argMinIf(time_ms, seq, type = 'answered') AS answered_ms,
    argMinIf(visitParamHas(data, 'wait_seconds'), seq, type = 'answered') AS wait_given,
    argMinIf(visitParamExtractInt(data, 'wait_seconds'), seq, type = 'answered') AS wait_seconds,
    if(wait_given, wait_seconds, greatest(intDiv(toInt64(answered_ms) - toInt64(received_ms), 1000), 0)) AS wait_s,
    argMaxIf(visitParamExtractString(data, 'topic'), seq, type = 'classified') AS topic,
    argMaxIf(visitParamExtractString(data, 'focal_point'), seq, type = 'forwarded') AS focal_point,
    argMaxIf(visitParamExtractString(data, 'hospital'), seq, type = 'forwarded') AS hospital,
    argMaxIf(time_ms, seq, type = 'forwarded') AS forwarded_ms,
    argMaxIf(visitParamExtractString(data, 'outcome'), seq, type = 'closed') AS outcome,
    argMaxIf(visitParamExtractBool(data, 'resolved'), seq, type = 'callback') AS resolved,
    argMaxIf(time_ms, seq, type = 'callback') AS callback_ms,
    countIf(type IN ('closed', 'callback') AND visitParamHas(data, 'satisfaction')) > 0 AS surveyed,
    argMaxIf(visitParamExtractInt(data, 'satisfaction'), seq,
             type IN ('closed', 'callback') AND visitParamHas(data, 'satisfaction')) AS satisfaction,
    countIf(type = 'deadline_set') > 0 AS has_deadline,
    argMinIf(deadline_ms, seq, type = 'deadline_set') AS deadline_ms,
    countIf(type = 'overdue') > 0 AS has_overdue
  FROM call_events FINAL
  GROUP BY call_id
  HAVING known
)
"""

UNIT_SUMS = (
    "SELECT line, unit, day, count(), countIf(answered), countIf(outcome = 'abandoned'), countIf(topic != ''), "
    "countIf(focal_point != ''), countIf(outcome = 'resolved'), countIf(resolved), countIf(on_time), "
    "countIf(overdue), countIf(surveyed), countIf(surveyed AND satisfaction >= 4), countIf(hospital != '') "
    "FROM ({per_call}) GROUP BY line, unit, day"
)
TOPIC_SUMS = (
    "SELECT line, unit, day, topic, count(), countIf(focal_point != ''), countIf(resolved), countIf(on_time), "
    "countIf(overdue), countIf(surveyed), countIf(surveyed AND satisfaction >= 4) "
    "FROM ({per_call}) WHERE topic != '' GROUP BY line, unit, day, topic"
)
FP_SUMS = (
    "SELECT day, focal_point, count(), countIf(resolved), countIf(on_time), countIf(overdue) "
    "FROM ({per_call}) WHERE line = '1022' AND focal_point != '' GROUP BY day, focal_point"
)
HOSPITAL_SUMS = "SELECT day, hospital, count() FROM ({per_call}) WHERE line = '115' AND hospital != '' GROUP BY day, hospital"
WAITS = (
    "SELECT line, scope, day, arraySort(groupArray(wait_s)) FROM ("
    "  SELECT line, day, wait_s, arrayJoin(if(transform(unit, %(units)s, %(districts)s, '74') = '74', ['74'], [transform(unit, %(units)s, %(districts)s, '74'), '74'])) AS scope"
    "  FROM ({per_call}) WHERE answered"
    ") GROUP BY line, scope, day"
)
FORWARDS = (
    "SELECT scope, day, arraySort(groupArray(secs)) FROM ("
    "  SELECT day, greatest(intDiv(toInt64(forwarded_ms) - toInt64(received_ms), 1000), 0) AS secs,"
    "    arrayJoin(if(transform(unit, %(units)s, %(districts)s, '74') = '74', ['74'], [transform(unit, %(units)s, %(districts)s, '74'), '74'])) AS scope"
    "  FROM ({per_call}) WHERE line = '115' AND hospital != ''"
    ") GROUP BY scope, day"
)
HANDLING = (
    "SELECT scope, day, sum(ms), count() FROM ("
    "  SELECT day, toInt64(callback_ms) - toInt64(forwarded_ms) AS ms,"
    "    arrayJoin(if(transform(unit, %(units)s, %(districts)s, '74') = '74', ['74'], [transform(unit, %(units)s, %(districts)s, '74'), '74'])) AS scope"
    "  FROM ({per_call}) WHERE line = '1022' AND focal_point != '' AND resolved"
    ") GROUP BY scope, day"
)
BACKLOG = (
    "SELECT count() FROM ({per_call}) WHERE line = '1022' AND focal_point = %(fp)s "
    "AND forwarded_ms <= %(end)s AND NOT (resolved AND callback_ms <= %(end)s)"
)
REPORTED = "SELECT indicator, unit, period, argMax(value, revision) FROM hotline_figures GROUP BY indicator, unit, period"


@dataclass
class Report:
    checked: int = 0
    mismatches: int = 0
    examples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"checked": self.checked, "mismatches": self.mismatches, "examples": self.examples}


def _q(values: list[int], q: float) -> float:
    vals = list(values)
    return float(vals[min(int(q * len(vals)), len(vals) - 1)]) if vals else 0.0


def recount(ch: ClickHouse, district_of: dict[str, str]) -> dict[tuple[str, str, str], float]:
    """The figures as SQL counts them, (indicator, unit, period) -> value (backlogs apart: see reconcile)."""
    out: dict[tuple[str, str, str], float] = {}

    def put(ind: str, unit: str, day: int, v: float) -> None:
        if v:
            out[(ind, unit, period_of(int(day)))] = float(v)

    pc = PER_CALL
    for line, unit, day, *n in ch.execute(UNIT_SUMS.format(per_call=pc)):
        if line == "1022":
            names = ("calls_received", "calls_answered", "calls_abandoned", "requests_created",
                     "requests_forwarded", "requests_answered_directly", "requests_resolved",
                     "requests_resolved_on_time", "requests_overdue", "surveyed", "satisfied")  # fmt: skip
            for name, v in zip(names, n[:11], strict=True):
                put(f"hotline_1022.{name}", unit, day, v)
        else:
            put("emergency_115.requests_received", unit, day, n[0])
            put("emergency_115.calls_answered", unit, day, n[1])
            put("emergency_115.requests_forwarded", unit, day, n[11])
    for line, unit, day, topic, *n in ch.execute(TOPIC_SUMS.format(per_call=pc)):
        if line == "1022":
            names = ("requests_created", "requests_forwarded", "requests_resolved", "requests_resolved_on_time",
                     "requests_overdue", "surveyed", "satisfied")  # fmt: skip
            for name, v in zip(names, n, strict=True):
                put(f"hotline_1022.{name}.{topic}", unit, day, v)
        else:
            put(f"emergency_115.requests_received.{topic}", unit, day, n[0])
    for day, fp, *n in ch.execute(FP_SUMS.format(per_call=pc)):
        names = ("requests_forwarded", "requests_resolved", "requests_resolved_on_time", "requests_overdue")
        for name, v in zip(names, n, strict=True):
            put(f"hotline_1022.{name}.{slug(fp)}", "74", day, v)
    for day, hospital, n in ch.execute(HOSPITAL_SUMS.format(per_call=pc)):
        put(f"emergency_115.patients_delivered.{slug(hospital)}", "74", day, n)
    units = sorted(district_of)
    params = {"units": units, "districts": [district_of[u] for u in units]}
    for line, scope, day, waits in ch.execute(WAITS.format(per_call=pc), params):
        field_ = "hotline_1022" if line == "1022" else "emergency_115"
        for name, q in QUANTILES.items():
            out[(f"{field_}.wait_seconds_{name}", scope, period_of(int(day)))] = _q(waits, q)
    for scope, day, total, n in ch.execute(HANDLING.format(per_call=pc), params):
        out[("hotline_1022.avg_handling_hours", scope, period_of(int(day)))] = int(total) / int(n) / 3_600_000
    for scope, day, secs in ch.execute(FORWARDS.format(per_call=pc), params):
        for name, q in QUANTILES.items():
            out[(f"emergency_115.forward_seconds_{name}", scope, period_of(int(day)))] = _q(secs, q)
    return out


def reconcile(
    ch: ClickHouse, district_of: dict[str, str], fp_codes: list[str], indicator_ids: set[str]
) -> Report:
    rep = Report()
    want = recount(ch, district_of)
    want = {k: v for k, v in want.items() if k[0] in indicator_ids}
    got = {(i, u, p): float(v) for i, u, p, v in ch.execute(REPORTED)}
    slugs = {slug(c): c for c in fp_codes}
    keys = set(want) | {k for k, v in got.items() if ".backlog." not in k[0]}
    for key in sorted(keys):
        rep.checked += 1
        w, g = want.get(key, 0.0), got.get(key, 0.0)
        if abs(w - g) > 1e-9:
            rep.mismatches += 1
            if len(rep.examples) < 10:
                rep.examples.append(f"{key[0]} {key[1]} {key[2]}: reported {g:g}, recount {w:g}")
    # backlog: every (focal point, day) reported, recounted as of the end of that day
    for (ind, unit, period), g in sorted(got.items()):
        if ".backlog." not in ind:
            continue
        fp = slugs.get(ind.rsplit(".", 1)[1])
        if fp is None:
            continue
        day = _day_number(period)
        w = float(ch.execute(BACKLOG.format(per_call=PER_CALL), {"fp": fp, "end": day_end_ms(day)})[0][0])
        rep.checked += 1
        if abs(w - g) > 1e-9:
            rep.mismatches += 1
            if len(rep.examples) < 10:
                rep.examples.append(f"{ind} {unit} {period}: reported {g:g}, recount {w:g}")
    return rep


def _day_number(period: str) -> int:
    import datetime as dt

    return (dt.date.fromisoformat(period) - dt.date(1970, 1, 1)).days


def reconcile_all(ch: ClickHouse) -> dict[str, Any]:
    """The `ioc_reconcilers` entry point of `ioc reconcile`: every reported hotline figure against its recount."""
    from ioccore.catalog import load_catalog
    from services.hotline.routing import Router

    catalog = load_catalog()
    return reconcile(
        ch,
        Router(catalog).district_of,
        [f.code for f in catalog.focal_points],
        {i.id for i in catalog.indicators},
    ).as_dict()
