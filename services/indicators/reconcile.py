"""`ioc reconcile`: recompute every indicator value from the raw archive with SQL in ClickHouse, independently
of the stream's Python code, and compare with the streamed values in `indicator_values`.

One query per (indicator, event type): the events of the type in `events_archive` (FINAL: each event once),
filtered and valued with ClickHouse's JSON functions, rolled up to the units of the boundary set (subject ->
"level:unit" chains passed as parameters) and to the five cadences' periods in Asia/Ho_Chi_Minh. Ratios are
divided from the recomputed parts. Runs on ClickHouse 18.16 and on current ClickHouse.
"""

from __future__ import annotations

import math
import queue
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import msgspec

from ioccore.clickhouse import ClickHouse, connect
from services.indicators import store
from services.indicators.engine import ratio_value
from services.indicators.model import CADENCES, PROVINCE_TZ, Boundaries, Model, Ratio, Spec

Key = tuple[str, str, str, str]  # (indicator, cadence, unit, period)

_DAY = f"toDate(time, '{PROVINCE_TZ}')"


def _periods(d: str) -> str:
    """[(cadence, period label), ...] of a Date expression, labels as services.indicators.model makes them."""
    monday = f"toMonday({d})"
    thursday = f"({monday} + 3)"
    week_no = f"intDiv(toDayOfYear({thursday}) - 1, 7) + 1"
    return (
        f"[('day', toString({d})), "
        f"('week', concat(toString(toYear({thursday})), '-W', if({week_no} < 10, '0', ''), toString({week_no}))), "
        f"('month', concat(toString(toYear({d})), '-', if(toMonth({d}) < 10, '0', ''), toString(toMonth({d})))), "
        f"('quarter', concat(toString(toYear({d})), '-Q', toString(toQuarter({d})))), "
        f"('year', toString(toYear({d})))]"
    )


def _raw(name: str) -> str:
    # the JSON text of a top-level field of `data`, as the archive stores it (msgspec's encoding)
    return f"visitParamExtractRaw(data, {_lit(name)})"


def _lit(s: str) -> str:
    from ioccore.sql import literal

    return literal(s)


_enc = msgspec.json.Encoder()


def _filters(spec: Spec) -> tuple[list[str], dict[str, Any]]:
    conds: list[str] = []
    params: dict[str, Any] = {}
    for i, (key, want) in enumerate(spec.filter):
        values = sorted(want, key=str) if isinstance(want, frozenset) else [want]
        params[f"f{i}"] = [_enc.encode(v).decode() for v in values]
        conds.append(f"has(%(f{i})s, {_raw(key)})")
    return conds, params


def _number(name: str) -> tuple[str, str]:
    return f"visitParamExtractFloat(data, {_lit(name)})", f"match({_raw(name)}, '^-?[0-9]')"


def spec_query(spec: Spec) -> tuple[str, dict[str, Any]]:
    conds, params = _filters(spec)
    params.update(
        {
            "type": spec.event_type,
            "scopes": sorted(spec.scopes),
            "cadences": [CADENCES[c] for c in spec.cadences],
        }
    )
    m = spec.measure
    if spec.reported:
        return _figures_query(spec, conds, params)
    if m == "count":
        value, agg = "1", "toFloat64(count())"
    elif m == "on_time_rate":
        done, due = _raw(spec.done_field or ""), _raw(spec.due_field or "")
        conds.append(f"match({done}, '^\"') AND match({due}, '^\"')")
        value = (
            f"parseDateTimeBestEffort(visitParamExtractString(data, {_lit(spec.done_field or '')})) <= "
            f"parseDateTimeBestEffort(visitParamExtractString(data, {_lit(spec.due_field or '')}))"
        )
        agg = f"avg(v) * {float(spec.scale)!r}"
    elif m == "distinct_count":
        value, agg = _raw(spec.value_field or ""), "toFloat64(uniqExact(v))"
        conds.append(f"visitParamHas(data, {_lit(spec.value_field or '')})")
    else:
        value, present = _number(spec.value_field or "")
        conds.append(present)
        agg = {
            "sum": "sum(v)",
            "avg": "avg(v)",
            "min": "min(v)",
            "max": "max(v)",
            "quantile": f"quantileExact({float(spec.q if spec.q is not None else 0.5)!r})(v)",
        }[m]
    where = " AND ".join(["type = %(type)s", *conds])
    sql = f"""
SELECT tupleElement(cp, 1) AS cadence, tupleElement(cp, 2) AS period, u.2 AS unit, {agg} AS value, count() AS n
FROM
(
    SELECT {value} AS v, splitByChar(':', arrayJoin(splitByChar(',', transform(subject, %(subjects)s, %(chains)s, '')))) AS uu,
           (uu[1], uu[2]) AS u, arrayJoin({_periods(_DAY)}) AS cp
    FROM events_archive FINAL
    WHERE {where}
)
WHERE has(%(scopes)s, u.1) AND has(%(cadences)s, tupleElement(cp, 1))
GROUP BY cadence, period, unit
"""  # noqa: S608 - parameters bound by ioccore.sql; only catalog field names are formatted in, as literals
    return sql, params


def _figures_query(spec: Spec, conds: list[str], params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    latest = (
        "SELECT subject, visitParamExtractString(data, 'period') AS period, "
        "visitParamExtractString(data, 'cadence') AS fcadence, "
        "argMax(visitParamExtractFloat(data, 'value'), concat(toString(toUInt64(time) * 1000 + time_ms), id)) AS v "
        "FROM events_archive FINAL WHERE "
        + " AND ".join(["type = %(type)s", *conds, "match(" + _raw("value") + ", '^-?[0-9]')"])
        + " GROUP BY subject, period, fcadence"
    )
    if spec.measure == "last":
        sql = f"""
SELECT fcadence AS cadence, period, subject AS unit, v AS value, toUInt64(1) AS n
FROM ({latest})
WHERE has(%(cadences)s, fcadence) AND has(%(scopes)s, transform(subject, %(subjects)s, %(levels)s, ''))
  AND transform(subject, %(subjects)s, %(own)s, '') = subject
"""  # noqa: S608
        return sql, params
    params["finest"] = CADENCES[spec.finest]
    # 18.16 evaluates every branch of multiIf for every row: each branch gets a string it can parse
    first_day = (
        "multiIf(fcadence = 'day', toDate(if(fcadence = 'day', period, '1970-01-01')), "
        "fcadence = 'week', toMonday(toDate(concat(substring(period, 1, 4), '-01-04'))) + (toUInt16OrZero(substring(period, 7, 2)) - 1) * 7, "
        "fcadence = 'month', toDate(if(fcadence = 'month', concat(period, '-01'), '1970-01-01')), "
        "fcadence = 'quarter', toDate(concat(substring(period, 1, 4), '-', ['01', '04', '07', '10'][if(fcadence = 'quarter', toUInt8OrZero(substring(period, 7, 1)), 1)], '-01')), "
        "toDate(if(fcadence = 'year', concat(period, '-01-01'), '1970-01-01')))"
    )
    agg = {"sum": "sum(v)", "min": "min(v)", "max": "max(v)", "count": "toFloat64(count())", "avg": "avg(v)"}[
        spec.measure
    ]
    sql = f"""
SELECT tupleElement(cp, 1) AS cadence, tupleElement(cp, 2) AS p, u.2 AS unit, {agg} AS value, count() AS n
FROM
(
    SELECT v, splitByChar(':', arrayJoin(splitByChar(',', transform(subject, %(subjects)s, %(chains)s, '')))) AS uu,
           (uu[1], uu[2]) AS u, arrayJoin({_periods(first_day)}) AS cp
    FROM ({latest})
    WHERE fcadence = %(finest)s
)
WHERE has(%(scopes)s, u.1) AND has(%(cadences)s, tupleElement(cp, 1))
GROUP BY cadence, p, unit
"""  # noqa: S608
    return sql, params


def unit_params(bounds: Boundaries) -> dict[str, Any]:
    subjects = sorted(bounds.rollup)
    return {
        "subjects": subjects,
        "chains": [",".join(f"{lvl}:{u}" for lvl, u in bounds.rollup[s]) for s in subjects],
        "levels": [bounds.rollup[s][0][0] for s in subjects],
        "own": [bounds.rollup[s][0][1] for s in subjects],
    }


def recompute(
    ch: ClickHouse,
    model: Model,
    bounds: Boundaries,
    progress: Callable[[int, int], None] | None = None,
    *,
    parallel: int = 4,
) -> dict[Key, float]:
    units = unit_params(bounds)
    out: dict[Key, float] = {}
    specs = model.specs
    # Every spec's query reads one event type; one without archived events yields no row, so it is not run.
    # Most of the cost is per query (~25 ms each on 18.16 even over a small archive, ~1,400 specs): on a server
    # the queries run on `parallel` connections.
    archived = {t for (t,) in ch.execute("SELECT DISTINCT type FROM events_archive")}
    todo = [spec for spec in specs if spec.event_type in archived]
    skipped = len(specs) - len(todo)
    conns = [ch]
    if parallel > 1 and urlparse(ch.url).scheme == "clickhouse":
        conns += [connect(ch.url) for _ in range(min(parallel, len(todo)) - 1)]
    free: queue.SimpleQueue[ClickHouse] = queue.SimpleQueue()
    for c in conns:
        free.put(c)

    def rows(spec: Spec) -> tuple[Spec, list[tuple]]:
        sql, params = spec_query(spec)
        conn = free.get()
        try:
            return spec, conn.execute(sql, {**params, **units})
        finally:
            free.put(conn)

    try:
        with ThreadPoolExecutor(len(conns)) as pool:
            for i, done_query in enumerate(as_completed([pool.submit(rows, spec) for spec in todo])):
                spec, result = done_query.result()
                for cadence, period, unit, value, _n in result:
                    if value is None or (isinstance(value, float) and math.isnan(value)):
                        continue
                    out[(spec.id, cadence, unit, period)] = float(value)
                if progress:
                    progress(skipped + i + 1, len(specs) + 1)
    finally:
        for c in conns[1:]:
            c.close()
    # ratios, parts first (a ratio may use another ratio)
    pending: list[Ratio] = list(model.ratios)
    done = {s.id for s in specs}
    while pending:
        nxt = []
        for r in pending:
            if r.numerator in done and r.denominator in done:
                _ratio(r, out, bounds)
                done.add(r.id)
            else:
                nxt.append(r)
        if len(nxt) == len(pending):
            break
        pending = nxt
    if progress:
        progress(len(specs) + 1, len(specs) + 1)
    return out


def _ratio(r: Ratio, out: dict[Key, float], bounds: Boundaries) -> None:
    nums = {k[1:]: v for k, v in out.items() if k[0] == r.numerator}
    dens = {k[1:]: v for k, v in out.items() if k[0] == r.denominator}
    cadences = {CADENCES[c] for c in r.cadences}
    for rest, num in nums.items():
        cadence, unit, _period = rest
        if cadence not in cadences or bounds.levels.get(unit) not in r.scopes:
            continue
        v = ratio_value(r, num, dens.get(rest))
        if v is not None:
            out[(r.id, *rest)] = v


@dataclass
class Report:
    checked: int = 0
    mismatches: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)
    version_set: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "mismatches": self.mismatches,
            "examples": self.examples,
            "version_set": self.version_set,
        }


def close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def compare(streamed: dict[Key, float], recomputed: dict[Key, float], limit: int = 10) -> Report:
    rep = Report()
    for key in sorted(set(streamed) | set(recomputed)):
        rep.checked += 1
        s, r = streamed.get(key), recomputed.get(key)
        if s is not None and r is not None and close(s, r):
            continue
        rep.mismatches += 1
        if len(rep.examples) < limit:
            rep.examples.append(
                {
                    "indicator": key[0],
                    "cadence": key[1],
                    "unit": key[2],
                    "period": key[3],
                    "streamed": s,
                    "recomputed": r,
                }
            )
    return rep


def reconcile(
    ch: ClickHouse,
    model: Model,
    bounds: Boundaries,
    version_set: str,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    recomputed = recompute(ch, model, bounds, progress)
    rep = compare(store.read_values(ch, version_set), recomputed)
    rep.version_set = version_set
    return rep
