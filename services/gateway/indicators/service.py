"""Indicator values from ClickHouse (indicator_values FINAL, the active version set). Runs on 18.16 and chdb."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from ioccore.catalog import Indicator
from ioccore.clickhouse import ClickHouse
from services.gateway.geo import catalog
from services.gateway.sqlparams import in_

CADENCE_ORDER = ("day", "week", "month", "quarter", "year")
_active_cache: dict[int, tuple[float, str | None]] = {}


def active_version_set(ch: ClickHouse, max_age_s: float = 5.0) -> str | None:
    """The version set reads use: the one switched to `active` last (as services/indicators decides)."""
    hit = _active_cache.get(id(ch))
    if hit and time.monotonic() - hit[0] < max_age_s:
        return hit[1]
    rows = ch.execute(
        "SELECT version_set, argMax(status, revision) AS status, max(revision) AS rev "
        "FROM indicator_versions GROUP BY version_set"
    )
    active = [(rev, vs) for vs, status, rev in rows if status == "active"]
    vs = max(active)[1] if active else None
    _active_cache[id(ch)] = (time.monotonic(), vs)
    return vs


def series(
    ch: ClickHouse,
    indicator: str,
    unit: str,
    cadence: str,
    since: dt.date | None,
    until: dt.date | None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    vs = active_version_set(ch)
    if vs is None:
        return []
    rows = ch.execute(
        "SELECT period, period_start, value, n, version, updated_at FROM indicator_values FINAL "
        "WHERE version_set = %(vs)s AND indicator = %(ind)s AND cadence = %(cad)s AND unit = %(unit)s "
        "AND period_start >= %(since)s AND period_start <= %(until)s "
        "ORDER BY period_start DESC LIMIT %(limit)s",
        {
            "vs": vs,
            "ind": indicator,
            "cad": cadence,
            "unit": unit,
            "since": since or dt.date(1970, 1, 2),
            "until": until or dt.date(2105, 12, 31),
            "limit": limit,
        },
    )
    keys = ("period", "period_start", "value", "n", "version", "updated_at")
    return [dict(zip(keys, r, strict=True)) for r in reversed(rows)]


def latest(
    ch: ClickHouse,
    units: list[str],
    *,
    indicators: list[str] | None = None,
    field: str | None = None,
    cadence: str | None = None,
    limit: int = 5000,
) -> list[dict[str, Any]]:
    """The latest period's value per (indicator, unit, cadence)."""
    vs = active_version_set(ch)
    if vs is None or not units:
        return []
    where = ["version_set = %(vs)s", "unit IN %(units)s"]
    params: dict[str, Any] = {"vs": vs, "units": in_(tuple(units)), "limit": limit}
    if indicators:
        where.append("indicator IN %(inds)s")
        params["inds"] = in_(indicators)
    if field:
        where.append("field = %(field)s")
        params["field"] = field
    if cadence:
        where.append("cadence = %(cad)s")
        params["cad"] = cadence
    rows = ch.execute(
        "SELECT indicator, field, unit, cadence, argMax(period, period_start), max(period_start), "  # noqa: S608
        "argMax(value, period_start), argMax(n, period_start), argMax(updated_at, period_start) "
        f"FROM indicator_values FINAL WHERE {' AND '.join(where)} "
        "GROUP BY indicator, field, unit, cadence ORDER BY indicator, unit, cadence LIMIT %(limit)s",
        params,
    )
    keys = ("indicator", "field", "unit", "cadence", "period", "period_start", "value", "n", "updated_at")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def ranking(
    ch: ClickHouse,
    indicator: str,
    cadence: str,
    level: str,
    units: list[str],
    period: str | None,
    order: str,
    limit: int,
) -> tuple[str | None, list[dict[str, Any]]]:
    """Top (or bottom) units of `level` for the period (default: the latest one with values)."""
    vs = active_version_set(ch)
    if vs is None or not units:
        return period, []
    params: dict[str, Any] = {
        "vs": vs,
        "ind": indicator,
        "cad": cadence,
        "level": level,
        "units": in_(tuple(units)),
        "limit": limit,
    }
    if period is None:
        rows = ch.execute(
            "SELECT argMax(period, period_start) FROM indicator_values FINAL "
            "WHERE version_set = %(vs)s AND indicator = %(ind)s AND cadence = %(cad)s AND level = %(level)s "
            "AND unit IN %(units)s",
            params,
        )
        period = rows[0][0] if rows and rows[0][0] else None
        if not period:
            return None, []
    params["period"] = period
    direction = "DESC" if order == "top" else "ASC"
    rows = ch.execute(
        "SELECT unit, value, n FROM indicator_values FINAL "  # noqa: S608 (direction is ASC or DESC)
        "WHERE version_set = %(vs)s AND indicator = %(ind)s AND cadence = %(cad)s AND level = %(level)s "
        "AND period = %(period)s AND unit IN %(units)s "
        f"ORDER BY value {direction}, unit LIMIT %(limit)s",
        params,
    )
    return period, [{"unit": u, "value": v, "n": n} for u, v, n in rows]


def key_indicator(field: str, level: str) -> tuple[Indicator, str] | None:
    """The indicator a wall tile shows for a field at a level: a plain indicator available there, those with
    a target first, then the finest cadence."""
    best: tuple[tuple[int, int, int], Indicator, str] | None = None
    for pos, ind in enumerate(catalog().indicators):
        if ind.field != field or ind.family is not None or level not in ind.scopes:
            continue
        cadence = min(ind.cadences, key=CADENCE_ORDER.index)
        rank = (0 if ind.target else 1, CADENCE_ORDER.index(cadence), pos)
        if best is None or rank < best[0]:
            best = (rank, ind, cadence)
    return (best[1], best[2]) if best else None


def status(ind: Indicator, value: float | None) -> str:
    """good | bad | neutral: the value against the indicator's target."""
    if value is None or ind.target is None:
        return "neutral"
    t = ind.target.value
    cmp = ind.target.comparison or (">=" if ind.direction == "higher_is_better" else "<=")
    ok = {">=": value >= t, ">": value > t, "<=": value <= t, "<": value < t, "=": value == t}.get(cmp, True)
    return "good" if ok else "bad"


def tiles(ch: ClickHouse, unit: str, level: str, trend_points: int = 14) -> list[dict[str, Any]]:
    """The wall's 27 tiles for a unit: each field's key indicator, its latest value and recent trend."""
    chosen = {f.code: key_indicator(f.code, level) for f in catalog().fields}
    wanted = [(ind.id, cad) for k in chosen.values() if k for ind, cad in [k]]
    vs = active_version_set(ch)
    trends: dict[str, list[tuple]] = {}
    if vs is not None and wanted:
        rows = ch.execute(
            "SELECT indicator, cadence, period, period_start, value FROM indicator_values FINAL "
            "WHERE version_set = %(vs)s AND unit = %(unit)s AND (indicator, cadence) IN %(wanted)s "
            "AND period_start >= %(since)s ORDER BY indicator, period_start",
            {
                "vs": vs,
                "unit": unit,
                "wanted": in_(wanted),
                "since": dt.date.today() - dt.timedelta(days=800),
            },
        )
        for ind_id, _cadence, period, start, value in rows:
            trends.setdefault(ind_id, []).append((period, start, value))
    out = []
    for f in catalog().fields:
        k = chosen[f.code]
        tile: dict[str, Any] = {
            "field": f.code,
            "name_vi": f.name_vi,
            "name_en": f.name_en,
            "indicator": None,
        }
        if k:
            ind, cad = k
            points = trends.get(ind.id, [])[-trend_points:]
            value = points[-1][2] if points else None
            tile.update(
                indicator=ind.id,
                indicator_name_vi=ind.name_vi,
                indicator_name_en=ind.name_en,
                unit_of_measure=ind.unit,
                cadence=cad,
                period=points[-1][0] if points else None,
                value=value,
                trend=[p[2] for p in points],
                target=ind.target.value if ind.target else None,
                direction=ind.direction,
                status=status(ind, value),
            )
        out.append(tile)
    return out
