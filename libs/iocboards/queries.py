"""Panel SQL (ClickHouse 18.16 and current ClickHouse) and the grafana-clickhouse-datasource macro
semantics used to expand it outside Grafana.

Values that come from the catalog enter SQL only through ioccore.sql.literal(); what Grafana substitutes
at view time are its macros ($__dateFilter, $__timeFilter, $__timeInterval, $__fromTime, $__toTime,
$__interval_s) and the dashboard variables ($district, $commune), which take unit codes only."""

# Panel SQL is composed here for Grafana, which takes no bound parameters: catalog values go through
# ioccore.sql.literal(), the one binding path; nothing from a request reaches this module.
# ruff: noqa: S608
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ioccore.sql import literal


def bucket(column: str) -> str:
    """Grafana's interval bucket of a Date/DateTime column. The plugin's $__timeInterval expands to
    toStartOfInterval, which ClickHouse 18.16 lacks (Code 46); this is the same bucket from $__interval_s."""
    return f"toDateTime(intDiv(toUInt32(toDateTime({column})), $__interval_s) * $__interval_s)"


# The version set reads use: the one switched to `active` last (services/indicators/store.py active_version).
ACTIVE_VERSION_SET = (
    "(SELECT version_set FROM (SELECT version_set, argMax(status, revision) AS st, max(revision) AS rev "
    "FROM indicator_versions GROUP BY version_set) WHERE st = 'active' ORDER BY rev DESC LIMIT 1)"
)
VALUES_FROM = f"FROM indicator_values FINAL WHERE version_set IN {ACTIVE_VERSION_SET}"


# The start of the period that contains a date, per cadence (all exist on 18.16): a quarterly or yearly value
# belongs in a range that overlaps its period even when the period started before the range.
_PERIOD_START = {
    "week": "toMonday",
    "month": "toStartOfMonth",
    "quarter": "toStartOfQuarter",
    "year": "toStartOfYear",
}


def period_filter(cadence: str | None) -> str:
    """Periods overlapping the dashboard range (`None`: any cadence, so from the start of the year)."""
    if cadence == "day":
        return "$__dateFilter(period_start)"
    start = _PERIOD_START.get(cadence or "year", "toStartOfYear")
    return f"period_start >= {start}(toDate($__fromTime)) AND period_start <= toDate($__toTime)"


def in_list(values: Iterable[str]) -> str:
    return "(" + ", ".join(literal(v) for v in values) + ")"


def series(indicator: str, cadence: str, unit: str) -> str:
    """One indicator's values over the dashboard range (tiles and trends)."""
    return (
        f"SELECT toDateTime(period_start) AS time, value {VALUES_FROM} "
        f"AND indicator = {literal(indicator)} AND cadence = {literal(cadence)} AND unit = {unit} "
        f"AND {period_filter(cadence)} ORDER BY time"
    )


def trend(indicators: list[str], cadence: str, unit: str, names: Mapping[str, str]) -> str:
    """Several indicators bucketed by Grafana's interval, one series per indicator (long format)."""
    return (
        f"SELECT {bucket('period_start')} AS time, "
        f"transform(indicator, {_arr(names)}, {_arr(names.values())}, indicator) AS indicator_name, "
        f"avg(value) AS value {VALUES_FROM} AND indicator IN {in_list(indicators)} "
        f"AND cadence = {literal(cadence)} AND unit = {unit} AND {period_filter(cadence)} "
        "GROUP BY time, indicator_name ORDER BY time"
    )


def latest_table(indicators: list[str], unit: str, names: Mapping[str, str]) -> str:
    """The latest value of each indicator and cadence in the range, for one unit."""
    return (
        "SELECT transform(indicator, "
        f"{_arr(names)}, {_arr(names.values())}, indicator) AS indicator_name, cadence, "
        "argMax(period, period_start) AS period, argMax(value, period_start) AS value, "
        f"max(updated_at) AS updated_at {VALUES_FROM} AND indicator IN {in_list(indicators)} "
        f"AND unit = {unit} AND {period_filter(None)} "
        "GROUP BY indicator, cadence ORDER BY indicator, cadence"
    )


def by_unit(indicator: str, cadence: str, units: Mapping[str, str]) -> str:
    """The latest value of one indicator for each of the given units (bar chart)."""
    return (
        f"SELECT transform(unit, {_arr(units)}, {_arr(units.values())}, unit) AS unit_name, "
        f"argMax(value, period_start) AS value {VALUES_FROM} AND indicator = {literal(indicator)} "
        f"AND cadence = {literal(cadence)} AND unit IN {in_list(units)} AND {period_filter(cadence)} "
        "GROUP BY unit_name ORDER BY unit_name"
    )


def map_points(indicator: str, cadence: str, points: Mapping[str, tuple[str, float, float]]) -> str:
    """Latest value per unit with the unit's coordinates (geomap)."""
    codes = list(points)
    return (
        f"SELECT unit, transform(unit, {_arr(codes)}, {_arr(p[0] for p in points.values())}, unit) AS name, "
        f"transform(unit, {_arr(codes)}, [{', '.join(repr(float(p[1])) for p in points.values())}], 0.) AS lat, "
        f"transform(unit, {_arr(codes)}, [{', '.join(repr(float(p[2])) for p in points.values())}], 0.) AS lon, "
        f"argMax(value, period_start) AS value {VALUES_FROM} AND indicator = {literal(indicator)} "
        f"AND cadence = {literal(cadence)} AND unit IN {in_list(codes)} AND {period_filter(cadence)} "
        "GROUP BY unit ORDER BY unit"
    )


def timeliness() -> str:
    """Per department system (CloudEvents source): events received in the range and the last one."""
    return (
        "SELECT source, count() AS events, max(time) AS last_event, max(received_at) AS last_received, "
        "toUInt32(greatest(toInt64($__toTime) - toInt64(max(time)), 0) / 3600) AS hours_since_last "
        "FROM events_archive WHERE $__timeFilter(time) GROUP BY source ORDER BY hours_since_last DESC, source"
    )


def dead_letters_by_interval() -> str:
    return (
        f"SELECT {bucket('received_at')} AS time, count() AS dead_letters FROM dead_letters "
        "WHERE $__timeFilter(received_at) GROUP BY time ORDER BY time"
    )


def _district_filter(district: str | None) -> str:
    return "" if district is None else f" AND district = {literal(district)}"


def open_alerts(district: str | None) -> str:
    """The alerts ticker: open alerts, most severe and newest first (alerts, services/alerts)."""
    return (
        "SELECT opened_at, updated_at, severity, state, district, unit, title_vi, indicator, value, threshold, "
        "assignee FROM alerts FINAL WHERE state != 'resolved'"
        f"{_district_filter(district)} "  # every open alert, however old: the ticker is current state
        "ORDER BY indexOf(['critical', 'warning', 'info'], severity), updated_at DESC LIMIT 200"
    )


def alerts_by_severity(district: str | None) -> str:
    return (
        "SELECT severity, count() AS alerts FROM alerts FINAL WHERE state != 'resolved'"
        f"{_district_filter(district)} GROUP BY severity ORDER BY severity"
    )


def alert_transitions(district: str | None) -> str:
    return (
        f"SELECT {bucket('at')} AS time, transition, count() AS events FROM alert_events FINAL "
        f"WHERE $__timeFilter(at){_district_filter(district)} GROUP BY time, transition ORDER BY time"
    )


def calls_feed(line: str, district: str | None) -> str:
    """The hotline feed: the latest calls (calls, services/hotline); masked numbers only."""
    return (
        "SELECT received_at, state, caller_masked, district, unit, field, topic, focal_point, hospital, "
        "wait_s, overdue FROM calls FINAL "
        f"WHERE line = {literal(line)}{_district_filter(district)} AND $__timeFilter(received_at) "
        "ORDER BY received_at DESC LIMIT 200"
    )


def calls_by_interval(line: str, district: str | None) -> str:
    return (
        f"SELECT {bucket('received_at')} AS time, count() AS calls, sum(overdue) AS overdue FROM calls FINAL "
        f"WHERE line = {literal(line)}{_district_filter(district)} AND $__timeFilter(received_at) "
        "GROUP BY time ORDER BY time"
    )


def units_variable(units: list[tuple[str, str, str]]) -> str:
    """Commune codes of the chosen $district (unit code, name, parent), for a chained variable."""
    tuples = ", ".join(f"({literal(c)}, {literal(n)}, {literal(p)})" for c, n, p in units)
    return f"SELECT tupleElement(u, 1) AS code FROM (SELECT arrayJoin([{tuples}]) AS u) WHERE tupleElement(u, 3) = '$district' ORDER BY code"


def _arr(values: Iterable[str]) -> str:
    return "[" + ", ".join(literal(v) for v in values) + "]"


# ---------------------------------------------------------------------------------------------------------
# Macro expansion, as the grafana-clickhouse-datasource plugin (pkg/macros/macros.go) does it
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TimeRange:
    start: dt.datetime  # UTC
    end: dt.datetime
    interval_s: int = 3600


_MACRO = re.compile(r"\$__(\w+)(?:\(([^()]*)\))?")
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_CODE = re.compile(r"^[0-9]{2,5}$")


def _ts(t: dt.datetime) -> int:
    return int(t.replace(tzinfo=dt.UTC).timestamp())


def expand(sql: str, rng: TimeRange, variables: Mapping[str, str]) -> str:
    """The SQL Grafana would send for this range and these variable values."""

    def macro(m: re.Match[str]) -> str:
        name, arg = m.group(1), (m.group(2) or "").strip()
        frm, to = _ts(rng.start), _ts(rng.end)
        if name == "timeFilter":
            return f"{arg} >= toDateTime({frm}) AND {arg} <= toDateTime({to})"
        if name == "dateFilter":
            return f"{arg} >= toDate('{rng.start:%Y-%m-%d}') AND {arg} <= toDate('{rng.end:%Y-%m-%d}')"
        if name == "fromTime":
            return f"toDateTime({frm})"
        if name == "toTime":
            return f"toDateTime({to})"
        if name == "timeInterval":
            return f"toStartOfInterval(toDateTime({arg}), INTERVAL {max(rng.interval_s, 1)} second)"
        if name == "interval_s":
            return str(max(rng.interval_s, 1))
        raise ValueError(f"macro $__{name} is not one the ClickHouse datasource knows")

    out = _MACRO.sub(macro, sql)

    def variable(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        value = variables.get(name)
        if value is None:
            raise ValueError(f"variable ${name} has no value")
        if not _CODE.match(value):
            raise ValueError(f"variable ${name} must be a unit code, got {value!r}")
        return value

    return _VARIABLE.sub(variable, out)
