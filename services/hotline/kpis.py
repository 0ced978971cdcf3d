"""The daily KPI figures of the hotlines, from call states (pure).

Every figure is a `day` figure of a catalog indicator (contracts/catalog/indicators/hotline_1022.yaml,
emergency_115.yaml), reported per unit as vn.binhduong.<field>.figure.reported; the indicators service adds them
up into longer periods and larger units. Cohorts: a call counts on the local day it was received, in the unit
it was received for; only calls whose call.received arrived count. Per focal point and per hospital figures
are province-wide (subject 74); quantiles (wait before answer, 115 time from call to forward) are reported per
district and for the province; a focal point's backlog is its open forwarded requests at the end of the day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import lru_cache
from typing import NamedTuple

from ioccore.catalog import slug as _slug
from services.hotline.calls import CallState, local_day

F1022 = "hotline_1022"
F115 = "emergency_115"
EPOCH = dt.date(1970, 1, 1)

# Per unit and day: indicator suffix -> predicate on a known call of the line.
SUMS_1022 = {
    "calls_received": lambda c: True,
    "calls_answered": lambda c: c.answered,
    "calls_abandoned": lambda c: c.outcome == "abandoned",
    "requests_created": lambda c: c.classified,
    "requests_forwarded": lambda c: bool(c.focal_point),
    "requests_answered_directly": lambda c: c.outcome == "resolved",
    "requests_resolved": lambda c: c.resolved,
    "requests_resolved_on_time": lambda c: c.on_time,
    "requests_overdue": lambda c: c.overdue,
    "surveyed": lambda c: c.satisfaction is not None,
    "satisfied": lambda c: c.satisfied,
}
BY_CATEGORY_1022 = (
    "requests_created",
    "requests_forwarded",
    "requests_resolved",
    "requests_resolved_on_time",
    "requests_overdue",
    "surveyed",
    "satisfied",
)
BY_FOCAL_POINT_1022 = (
    "requests_forwarded",
    "requests_resolved",
    "requests_resolved_on_time",
    "requests_overdue",
)
SUMS_115 = {
    "requests_received": lambda c: True,
    "calls_answered": lambda c: c.answered,
    "requests_forwarded": lambda c: bool(c.hospital),
}
QUANTILES = {"p50": 0.5, "p90": 0.9}
slug = lru_cache(maxsize=1024)(_slug)


@lru_cache(maxsize=4096)
def period_of(day: int) -> str:
    return (EPOCH + dt.timedelta(days=day)).isoformat()


def day_end_ms(day: int) -> int:
    """The last millisecond of a local day."""
    return ((day + 1) * 86400 - 7 * 3600) * 1000 - 1


def quantile(values: list[int], q: float) -> float | None:
    """The element at floor(q·n) of the sorted values (the recount uses the same rule)."""
    if not values:
        return None
    s = sorted(values)
    return float(s[min(int(q * len(s)), len(s) - 1)])


class FigureKey(NamedTuple):
    indicator: str
    unit: str
    period: str

    @property
    def field(self) -> str:
        return self.indicator.split(".", 1)[0]


def is_unit_figure(indicator: str, topics: set[str]) -> bool:
    """Made by unit_day_figures (a unit's cohort), rather than by province_day_figures or backlog_figures."""
    field, _, rest = indicator.partition(".")
    name, _, key = rest.partition(".")
    names = SUMS_1022 if field == F1022 else SUMS_115
    return name in names and (key == "" or key in topics)


def _add(out: dict[FigureKey, float], indicator: str, unit: str, period: str, n: float = 1) -> None:
    k = FigureKey(indicator, unit, period)
    out[k] = out.get(k, 0) + n


def unit_day_figures(calls: Iterable[CallState], topics_1022: set[str], topics_115: set[str]) -> dict:
    """Sums per (unit, day) of known calls; by category / case type as the catalog's families."""
    out: dict[FigureKey, float] = {}
    for c in calls:
        if not c.known:
            continue
        period = period_of(c.day)
        if c.line == "1022":
            for name, pred in SUMS_1022.items():
                if pred(c):
                    _add(out, f"{F1022}.{name}", c.unit, period)
            if c.topic in topics_1022:
                for name in BY_CATEGORY_1022:
                    if SUMS_1022[name](c):
                        _add(out, f"{F1022}.{name}.{c.topic}", c.unit, period)
        else:
            for name, pred in SUMS_115.items():
                if pred(c):
                    _add(out, f"{F115}.{name}", c.unit, period)
            if c.topic in topics_115:
                _add(out, f"{F115}.requests_received.{c.topic}", c.unit, period)
    return out


def province_day_figures(calls: Iterable[CallState], district_of: dict[str, str]) -> dict:
    """Per focal point and per hospital (subject 74), and the quantiles per district and province."""
    out: dict[FigureKey, float] = {}
    waits: dict[tuple[str, str, int], list[int]] = {}
    forwards: dict[tuple[str, int], list[int]] = {}
    handling: dict[tuple[str, int], list[int]] = {}
    for c in calls:
        if not c.known:
            continue
        period = period_of(c.day)
        district = district_of.get(c.unit, "74")
        if c.line == "1022":
            if c.focal_point and c.resolved and c.resolved_at is not None and c.forwarded_at is not None:
                for scope in {district, "74"}:
                    handling.setdefault((scope, c.day), []).append(c.resolved_at - c.forwarded_at)
            if c.focal_point:
                for name in BY_FOCAL_POINT_1022:
                    if SUMS_1022[name](c):
                        _add(out, f"{F1022}.{name}.{slug(c.focal_point)}", "74", period)
        elif c.hospital:
            _add(out, f"{F115}.patients_delivered.{slug(c.hospital)}", "74", period)
            if c.forwarded_at is not None and c.received_at is not None:
                secs = max(0, (c.forwarded_at - c.received_at) // 1000)
                for scope in {district, "74"}:
                    forwards.setdefault((scope, c.day), []).append(secs)
        if c.wait_s is not None and c.answered:
            for scope in {district, "74"}:
                waits.setdefault((c.line, scope, c.day), []).append(c.wait_s)
    for (line, scope, day), values in waits.items():
        field = F1022 if line == "1022" else F115
        for name, q in QUANTILES.items():
            out[FigureKey(f"{field}.wait_seconds_{name}", scope, period_of(day))] = quantile(values, q) or 0.0
    for (scope, day), values in handling.items():
        # exact integer sum of milliseconds, then one division: the recount computes the same float
        out[FigureKey(f"{F1022}.avg_handling_hours", scope, period_of(day))] = (
            sum(values) / len(values) / 3_600_000
        )
    for (scope, day), values in forwards.items():
        for name, q in QUANTILES.items():
            out[FigureKey(f"{F115}.forward_seconds_{name}", scope, period_of(day))] = (
                quantile(values, q) or 0.0
            )
    return out


def backlog_figures(calls: Iterable[CallState], days: Iterable[int]) -> dict:
    """Open forwarded requests per focal point at the end of each given day (subject 74)."""
    days = sorted(set(days))
    out: dict[FigureKey, float] = {}
    for c in calls:
        if not (c.known and c.line == "1022" and c.focal_point and c.forwarded_at is not None):
            continue
        first = local_day(c.forwarded_at)
        for day in days:
            if day >= first and c.backlog_at(day_end_ms(day)):
                _add(out, f"{F1022}.backlog.{slug(c.focal_point)}", "74", period_of(day))
    return out
