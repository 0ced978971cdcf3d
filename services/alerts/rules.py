"""Alert rules (contracts/rules, loaded and checked by ioccore.catalog) given their meaning: thresholds with
per-unit overrides and a clear threshold (hysteresis), periods and deadlines, maintenance silences.

Everything here is pure: the verdict of a value against a rule, period arithmetic, silence windows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

PROVINCE = "74"
TZ = dt.timezone(dt.timedelta(hours=7))  # province time
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

BREACH, CLEAR, HOLD, UNKNOWN = "breach", "clear", "hold", "unknown"


@dataclass(frozen=True)
class Bounds:
    threshold: float | None = None
    clear: float | None = None
    low: float | None = None
    high: float | None = None
    clear_low: float | None = None
    clear_high: float | None = None
    clear_margin: float = 0.0

    def merged(self, over: dict[str, Any]) -> Bounds:
        return Bounds(**{**self.__dict__, **{k: float(v) for k, v in over.items()}})


@dataclass(frozen=True)
class Rule:
    id: str
    field: str
    indicator: str
    levels: tuple[str, ...]
    cadence: str
    kind: str  # above | below | outside | change | target | no_data
    bounds: Bounds
    severity: str
    title_vi: str
    title_en: str
    sop_vi: str
    escalate_after_s: float
    flap_window_s: float = 3600.0
    direction: str = "both"
    grace_days: float = 0.0
    for_windows: int = 1
    for_duration_s: float | None = None
    overrides: dict[str, Bounds] = field(default_factory=dict)
    # target rules: level -> (target value, comparison) from the catalog
    targets: dict[str, tuple[float, str]] = field(default_factory=dict)

    def bounds_for(self, unit: str) -> Bounds:
        return self.overrides.get(unit, self.bounds)


@dataclass(frozen=True)
class Verdict:
    kind: str  # BREACH | CLEAR | HOLD | UNKNOWN
    threshold: float | None = None
    why: Callable[[], str] | None = None  # the reason, written only when an event needs it

    @property
    def reason(self) -> str:
        return self.why() if self.why else ""


def _num(v: float) -> str:
    return f"{v:,.10g}".replace(",", " ")


def judge(rule: Rule, unit: str, level: str, value: float, prev: float | None) -> Verdict:
    """A window's value against the rule: breach (fire), clear (past the clear threshold: resolve) or hold."""
    b = rule.bounds_for(unit)
    k = rule.kind
    if k == "above":
        assert b.threshold is not None and b.clear is not None
        if value > b.threshold:
            return Verdict(
                BREACH,
                b.threshold,
                lambda: (
                    f"Giá trị {_num(value)} vượt ngưỡng {_num(b.threshold)} / value {_num(value)} above threshold {_num(b.threshold)}"
                ),
            )
        if value <= b.clear:
            return Verdict(
                CLEAR,
                b.clear,
                lambda: (
                    f"Giá trị {_num(value)} về dưới ngưỡng phục hồi {_num(b.clear)} / value {_num(value)} back at or below the clear threshold {_num(b.clear)}"
                ),
            )
        return Verdict(HOLD, b.threshold)
    if k == "below":
        assert b.threshold is not None and b.clear is not None
        if value < b.threshold:
            return Verdict(
                BREACH,
                b.threshold,
                lambda: (
                    f"Giá trị {_num(value)} dưới ngưỡng {_num(b.threshold)} / value {_num(value)} below threshold {_num(b.threshold)}"
                ),
            )
        if value >= b.clear:
            return Verdict(
                CLEAR,
                b.clear,
                lambda: (
                    f"Giá trị {_num(value)} đạt ngưỡng phục hồi {_num(b.clear)} / value {_num(value)} back at or above the clear threshold {_num(b.clear)}"
                ),
            )
        return Verdict(HOLD, b.threshold)
    if k == "outside":
        assert b.low is not None and b.high is not None
        if value < b.low or value > b.high:
            edge = b.low if value < b.low else b.high
            return Verdict(
                BREACH,
                edge,
                lambda: (
                    f"Giá trị {_num(value)} ngoài khoảng [{_num(b.low)}, {_num(b.high)}] / value {_num(value)} outside [{_num(b.low)}, {_num(b.high)}]"
                ),
            )
        lo = b.clear_low if b.clear_low is not None else b.low
        hi = b.clear_high if b.clear_high is not None else b.high
        if lo <= value <= hi:
            return Verdict(
                CLEAR,
                None,
                lambda: (
                    f"Giá trị {_num(value)} trở lại khoảng [{_num(lo)}, {_num(hi)}] / value {_num(value)} back within [{_num(lo)}, {_num(hi)}]"
                ),
            )
        return Verdict(HOLD, None)
    if k == "change":
        assert b.threshold is not None and b.clear is not None
        if prev is None or prev == 0:
            return Verdict(UNKNOWN)
        pct = (value - prev) / abs(prev) * 100.0
        moved = {"up": pct, "down": -pct}.get(rule.direction, abs(pct))
        if moved > b.threshold:
            return Verdict(
                BREACH,
                b.threshold,
                lambda: (
                    f"Thay đổi {pct:+.1f}% so với kỳ trước ({_num(prev)} → {_num(value)}), ngưỡng {_num(b.threshold)}% / change {pct:+.1f}% on the previous window, threshold {_num(b.threshold)}%"
                ),
            )
        if moved <= b.clear:
            return Verdict(
                CLEAR,
                b.clear,
                lambda: (
                    f"Thay đổi {pct:+.1f}% so với kỳ trước, dưới ngưỡng phục hồi {_num(b.clear)}% / change {pct:+.1f}%, within the clear threshold {_num(b.clear)}%"
                ),
            )
        return Verdict(HOLD, b.threshold)
    if k == "target":
        target = rule.targets.get(level) or rule.targets.get("*")
        if target is None:
            return Verdict(UNKNOWN)
        t, cmp = target
        m = b.clear_margin
        met, cleared = {
            ">=": (value >= t, value >= t + m),
            ">": (value > t, value > t + m),
            "<=": (value <= t, value <= t - m),
            "<": (value < t, value < t - m),
            "=": (value == t, value == t),
        }[cmp]
        if not met:
            return Verdict(
                BREACH,
                t,
                lambda: (
                    f"Giá trị {_num(value)} chưa đạt chỉ tiêu {cmp} {_num(t)} / value {_num(value)} misses the target {cmp} {_num(t)}"
                ),
            )
        if cleared:
            return Verdict(
                CLEAR,
                t,
                lambda: (
                    f"Giá trị {_num(value)} đạt chỉ tiêu {cmp} {_num(t)} / value {_num(value)} meets the target {cmp} {_num(t)}"
                ),
            )
        return Verdict(HOLD, t)
    return Verdict(UNKNOWN)


def load_rules(catalog: Any) -> list[Rule]:
    """The rules of the catalog (ioccore.catalog.load_catalog().rules), with the catalog's targets."""
    by_id = {i.id: i for i in catalog.indicators}
    out = []
    for r in catalog.rules:
        ind = by_id.get(r["indicator"])
        cond = dict(r["condition"])
        kind = cond.pop("kind")
        direction = cond.pop("direction", "both")
        grace = float(cond.pop("grace_days", 0))
        targets: dict[str, tuple[float, str]] = {}
        if ind is not None:
            if ind.target is not None:
                targets["*"] = (ind.target.value, ind.target.comparison or ">=")
            for t in ind.targets_by_scope:
                if t.scope:
                    targets[t.scope] = (t.value, t.comparison or ">=")
        bounds = Bounds().merged(cond)
        forr = r["for"]
        out.append(
            Rule(
                id=r["id"],
                field=r["field"],
                indicator=r["indicator"],
                levels=tuple(r["levels"]),
                cadence=r["cadence"],
                kind=kind,
                bounds=bounds,
                severity=r["severity"],
                title_vi=r["title_vi"],
                title_en=r["title_en"],
                sop_vi=r["sop_vi"],
                escalate_after_s=float(r["routing"]["escalate_after_min"]) * 60,
                flap_window_s=float(r["routing"].get("flap_window_min", 60)) * 60,
                direction=direction,
                grace_days=grace,
                for_windows=int(forr.get("windows", 1)),
                for_duration_s=float(forr["duration_min"]) * 60 if "duration_min" in forr else None,
                overrides={u: bounds.merged(o) for u, o in (r.get("overrides") or {}).items()},
                targets=targets,
            )
        )
    return out


# -- periods ---------------------------------------------------------------------------------------------
def _add_months(d: dt.date, n: int) -> dt.date:
    m = d.month - 1 + n
    return dt.date(d.year + m // 12, m % 12 + 1, 1)


def period_of(cadence: str, day: dt.date) -> tuple[str, dt.date]:
    """The label and first day of the period of `cadence` containing `day`."""
    if cadence == "day":
        return day.isoformat(), day
    if cadence == "week":
        start = day - dt.timedelta(days=day.weekday())
        y, w, _ = start.isocalendar()
        return f"{y}-W{w:02d}", start
    if cadence == "month":
        return f"{day.year}-{day.month:02d}", day.replace(day=1)
    if cadence == "quarter":
        q = (day.month - 1) // 3
        return f"{day.year}-Q{q + 1}", dt.date(day.year, q * 3 + 1, 1)
    return str(day.year), dt.date(day.year, 1, 1)


def next_start(cadence: str, start: dt.date) -> dt.date:
    if cadence == "day":
        return start + dt.timedelta(days=1)
    if cadence == "week":
        return start + dt.timedelta(days=7)
    return _add_months(start, {"month": 1, "quarter": 3, "year": 12}[cadence])


@lru_cache(maxsize=4096)
def prev_iso(cadence: str, start: str) -> str:
    """prev_start on ISO dates."""
    return prev_start(cadence, dt.date.fromisoformat(start)).isoformat()


def prev_start(cadence: str, start: dt.date) -> dt.date:
    if cadence == "day":
        return start - dt.timedelta(days=1)
    if cadence == "week":
        return start - dt.timedelta(days=7)
    return _add_months(start, -{"month": 1, "quarter": 3, "year": 12}[cadence])


def due_period(cadence: str, grace_days: float, now: float) -> tuple[str, dt.date, float]:
    """The latest period whose reporting deadline (its end plus grace_days, province time) has passed at
    `now`: (label, first day, deadline as epoch seconds)."""
    local = dt.datetime.fromtimestamp(now, TZ) - dt.timedelta(days=grace_days)
    _, cur = period_of(cadence, local.date())
    start = prev_start(cadence, cur)
    label, _ = period_of(cadence, start)
    deadline = dt.datetime.combine(cur, dt.time(), TZ) + dt.timedelta(days=grace_days)
    return label, start, deadline.timestamp()


# -- silences ----------------------------------------------------------------------------------------------
def parse_recurring(text: str) -> tuple[frozenset[str], int, int]:
    """'sat,sun 22:00-24:00' -> ({sat, sun}, 1320, 1440) (minutes of the day, province time)."""
    days, span = text.split(" ")
    a, b = span.split("-")
    return frozenset(days.split(",")), _minutes(a), _minutes(b)


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def in_window(days: frozenset[str], start_min: int, end_min: int, now: float) -> bool:
    local = dt.datetime.fromtimestamp(now, TZ)
    m = local.hour * 60 + local.minute
    if start_min <= end_min:
        return WEEKDAYS[local.weekday()] in days and start_min <= m < end_min
    # over midnight: the part after midnight belongs to the previous day's window
    if m >= start_min:
        return WEEKDAYS[local.weekday()] in days
    return m < end_min and WEEKDAYS[(local.weekday() - 1) % 7] in days


@dataclass(frozen=True)
class Maintenance:
    """A maintenance silence of a district (or the province: all districts) from silences.yaml: recurring
    (days, start_min, end_min) or one-off (the epoch-seconds `once` window)."""

    id: str
    district: str
    fields: frozenset[str]
    days: frozenset[str] = frozenset()
    start_min: int = 0
    end_min: int = 0
    once: tuple[float, float] | None = None

    def covers(self, district: str, field_code: str, now: float) -> bool:
        if self.district not in (PROVINCE, district):
            return False
        if self.fields and field_code not in self.fields:
            return False
        if self.once is not None:
            return self.once[0] <= now < self.once[1]
        return in_window(self.days, self.start_min, self.end_min, now)


def load_maintenance(catalog: Any) -> list[Maintenance]:
    out = []
    for s in catalog.silences:
        common = (s["id"], s["district"], frozenset(s.get("fields") or ()))
        if "from" in s:
            out.append(Maintenance(*common, once=(epoch(s["from"]), epoch(s["until"]))))
        else:
            out.append(
                Maintenance(*common, frozenset(s["weekdays"]), _minutes(s["start"]), _minutes(s["end"]))
            )
    return out


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(int(ts), TZ).isoformat()


def epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()
