"""Building blocks of the simulation: local time, time-of-day profiles, and event data built from a type's
JSON Schema and examples (so every department type is covered without code per type)."""

from __future__ import annotations

import bisect
import datetime as dt
import random
import re
from dataclasses import dataclass
from typing import Any

from iocsim.reference import Reference

TZ = dt.timezone(dt.timedelta(hours=7), "Asia/Ho_Chi_Minh")  # Việt Nam: UTC+07:00, no daylight saving
OFFSET_S = 7 * 3600
DAY_S = 86400

_day_prefix: dict[int, str] = {}


def fmt_time(t: int) -> str:
    """Epoch seconds -> RFC 3339 local time with +07:00, e.g. 2026-03-05T09:30:00+07:00."""
    local = t + OFFSET_S
    day, sec = divmod(local, DAY_S)
    prefix = _day_prefix.get(day)
    if prefix is None:
        prefix = (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat() + "T"
        if len(_day_prefix) > 4096:
            _day_prefix.clear()
        _day_prefix[day] = prefix
    h, rem = divmod(sec, 3600)
    m, s = divmod(rem, 60)
    return f"{prefix}{h:02d}:{m:02d}:{s:02d}+07:00"


def local_date(t: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=(t + OFFSET_S) // DAY_S)


def day_start(day: dt.date) -> int:
    """Epoch seconds of local midnight."""
    return (day - dt.date(1970, 1, 1)).days * DAY_S - OFFSET_S


def _hhmm(s: str) -> int:
    h, m = s.split(":")
    return int(h) * 3600 + int(m) * 60


def parse_windows(windows: list[str]) -> list[tuple[int, int]]:
    out = []
    for w in windows:
        a, b = w.split("-")
        out.append((_hhmm(a), _hhmm(b)))
    return out


@dataclass(frozen=True)
class Profile:
    """When in the day events happen: weighted segments (seconds of the local day); office: weekdays only."""

    name: str
    segments: tuple[tuple[int, int], ...]
    cum: tuple[float, ...]
    weekdays: frozenset[int]

    def active(self, day: dt.date) -> bool:
        return day.weekday() in self.weekdays

    def sample(self, rng: random.Random, midnight: int) -> int:
        i = bisect.bisect_right(self.cum, rng.random() * self.cum[-1])
        a, b = self.segments[min(i, len(self.segments) - 1)]
        return midnight + a + int(rng.random() * (b - a))


def _profile(name: str, segs: list[tuple[int, int, float]], weekdays: set[int]) -> Profile:
    cum, total = [], 0.0
    for _, _, w in segs:
        total += w
        cum.append(total)
    return Profile(name, tuple((a, b) for a, b, _ in segs), tuple(cum), frozenset(weekdays))


class Calendar:
    """Working hours (office profile) and the other profiles of catalog/simulation.yaml."""

    def __init__(self, model: dict[str, Any]):
        wh = model["working_hours"]
        self.windows = parse_windows(wh["windows"])
        self.weekdays = set(wh["weekdays"])
        every = set(range(7))
        self.profiles: dict[str, Profile] = {
            "office": _profile("office", [(a, b, b - a) for a, b in self.windows], self.weekdays),
            "always": _profile("always", [(0, DAY_S, 1.0)], every),
        }
        prof = model.get("profiles") or {}
        hourly = prof.get("diurnal") or [1] * 24
        self.profiles["diurnal"] = _profile(
            "diurnal", [(h * 3600, (h + 1) * 3600, float(w)) for h, w in enumerate(hourly)], every
        )
        morning = parse_windows(prof.get("morning") or ["06:00-09:00"])
        self.profiles["morning"] = _profile("morning", [(a, b, b - a) for a, b in morning], every)

    def profile(self, name: str) -> Profile:
        if name not in self.profiles:
            raise ValueError(f"unknown profile {name!r}; known: {', '.join(self.profiles)}")
        return self.profiles[name]

    def in_working_hours(self, t: int) -> bool:
        d = local_date(t)
        if d.weekday() not in self.weekdays:
            return False
        sec = (t + OFFSET_S) % DAY_S
        return any(a <= sec < b for a, b in self.windows)

    def snap(self, t: int, rng: random.Random) -> int:
        """The first working moment at or after t (a few minutes into a window when t falls outside)."""
        if self.in_working_hours(t):
            return t
        midnight = t - (t + OFFSET_S) % DAY_S
        sec = t - midnight
        for _ in range(14):
            if local_date(midnight).weekday() in self.weekdays:
                for a, b in self.windows:
                    if sec < a:
                        return midnight + a + min(int(rng.random() * 1800), b - a - 1)
            midnight += DAY_S
            sec = -1
        return t

    def add_working_days(self, day: dt.date, n: int) -> dt.date:
        while n > 0:
            day += dt.timedelta(days=1)
            if day.weekday() in self.weekdays:
                n -= 1
        return day


# -- event data from a schema and its examples ---------------------------------------------------------------
_DATE_TIME_DEFAULTS: dict[str, tuple[int, int]] = {
    "due_at": (-2880, 20160),
    "window_start": (-5, -5),
    "window_end": (0, 0),
}
_EARLIER = {
    "started_at",
    "received_at",
    "requested_at",
    "submitted_at",
    "admitted_at",
    "found_at",
    "detected_at",
}
_DURATION_PAIRS = [
    (
        "duration_minutes",
        ("started_at", "reported_at"),
        ("resolved_at", "restored_at", "ended_at", "extinguished_at"),
    ),
]


def _id_prefix(example: Any) -> str:
    s = str(example)
    m = re.match(r"^([A-Za-z]+)", s)
    return m.group(1) if m else "SIM"


class DataModel:
    """Builds the `data` of one event type: schema-valid values varied around the examples'."""

    def __init__(
        self, type_name: str, schema: dict[str, Any], examples: list[dict[str, Any]], cfg: dict[str, Any]
    ):
        self.type_name = type_name
        self.schema = schema
        props: dict[str, dict[str, Any]] = schema.get("properties") or {}
        self.props = props
        ex_data = [e.get("data") or {} for e in examples]
        order: list[str] = []
        for d in ex_data:
            order.extend(k for k in d if k not in order and k in props)
        order.extend(k for k in schema.get("required", []) if k not in order)
        self.order = order
        self.values: dict[str, list[Any]] = {k: [d[k] for d in ex_data if k in d] for k in order}
        self.pools: dict[str, int] = {k: int(v) for k, v in (cfg.get("pools") or {}).items()}
        unique = cfg.get("unique")
        if unique is None:
            unique = [k for k in order if (k.endswith("_id") or k.endswith("_ref")) and k not in self.pools][
                :1
            ]
        self.unique = list(unique)
        self.times: dict[str, Any] = {**_DATE_TIME_DEFAULTS, **(cfg.get("times") or {})}
        self.share: dict[str, dict[Any, float]] = cfg.get("share") or {}
        self.true_share: dict[str, float] = cfg.get("true_share") or {}
        self.date_lag = int(cfg.get("date_lag_days", 0))
        self.abbr = "".join(p[0] for p in type_name.split(".")[2:]).upper()

    # one value per property
    def _value(self, key: str, rng: random.Random, t: int, seq: int, day_tag: str) -> Any:
        spec = self.props.get(key, {})
        examples = self.values.get(key) or []
        ex = examples[int(rng.random() * len(examples))] if examples else None
        typ = spec.get("type")
        if "enum" in spec:
            weights = self.share.get(key)
            if weights:
                rest = [v for v in spec["enum"] if v not in weights]
                left = max(0.0, 1.0 - sum(weights.values()))
                r = rng.random()
                for v, w in weights.items():
                    if r < w:
                        return v
                    r -= w
                if rest:
                    return rest[int(rng.random() * len(rest))]
                _ = left
            return spec["enum"][int(rng.random() * len(spec["enum"]))]
        if spec.get("format") == "date-time":
            rule = self.times.get(key)
            if rule is None:
                rule = (-4320, -10) if key in _EARLIER else (0, 0)
            if rule == "parent":
                rule = (0, 0)
            lo, hi = rule
            return fmt_time(t + 60 * (lo + int(rng.random() * (hi - lo + 1))))
        if spec.get("format") == "date":
            return local_date(t - self.date_lag * DAY_S).isoformat()
        if typ == "boolean":
            p = self.true_share.get(key)
            if p is None:
                p = 0.8 if ex is True else 0.2
            return rng.random() < p
        if typ in ("integer", "number"):
            base = ex if isinstance(ex, int | float) and not isinstance(ex, bool) else spec.get("minimum", 1)
            if key in self.pools:
                return int(base) + int(rng.random() * self.pools[key])
            if base == 0:
                v: float = 0 if rng.random() < 0.9 else 1 + int(rng.random() * 3)
            else:
                v = base * rng.lognormvariate(0, 0.25)
            lo, hi = spec.get("minimum"), spec.get("maximum")
            if lo is not None:
                v = max(v, lo)
            if hi is not None:
                v = min(v, hi)
            return int(round(v)) if typ == "integer" else round(v, 2)
        if typ == "array":
            return list(ex) if isinstance(ex, list) else []
        if typ == "string" or typ is None:
            maxlen = spec.get("maxLength", 64)
            if key in self.pools:
                n = self.pools[key]
                k = int(rng.random() * n)
                if n <= 1 or ex is None:
                    return ex if ex is not None else f"{self.abbr}-{k}"
                if str(ex).isdigit():
                    return str(int(ex) + k)
                v = f"{ex}-{k}" if "-" in str(ex) else f"{ex}{k}"
                if len(v) > maxlen or ("pattern" in spec and not re.search(spec["pattern"], v)):
                    return ex
                return v
            if key in self.unique:
                v = f"{_id_prefix(ex)}-{day_tag}-{seq:06d}"
                return v[-maxlen:]
            if ex is not None:
                return ex
            return key[: max(1, maxlen)]
        return ex

    def build(self, rng: random.Random, t: int, seq: int, day_tag: str) -> dict[str, Any]:
        data = {k: self._value(k, rng, t, seq, day_tag) for k in self.order}
        return data

    def derive(self, data: dict[str, Any]) -> None:
        """Keep derived fields consistent with the timestamps they summarise."""
        for out, starts, ends in _DURATION_PAIRS:
            if out in data:
                a = next((data[k] for k in starts if k in data), None)
                b = next((data[k] for k in ends if k in data), None)
                if a and b:
                    data[out] = max(0, int((_parse(b) - _parse(a)) // 60))
        if "length_of_stay_days" in data and "admitted_at" in data and "discharged_at" in data:
            data["length_of_stay_days"] = round(
                max(0.0, (_parse(data["discharged_at"]) - _parse(data["admitted_at"])) / DAY_S), 2
            )
        if "delay_minutes" in data and "actual_departure" in data and "scheduled_departure" in data:
            data["delay_minutes"] = max(
                0, int((_parse(data["actual_departure"]) - _parse(data["scheduled_departure"])) // 60)
            )


def _parse(s: str) -> float:
    return dt.datetime.fromisoformat(s).timestamp()


def example_scope(examples: list[dict[str, Any]]) -> str:
    subject = str(examples[0].get("subject", "")) if examples else ""
    return {2: "province", 3: "district", 5: "commune"}.get(len(subject), "commune")


def period_label(day: dt.date, cadence: str) -> str:
    if cadence == "day":
        return day.isoformat()
    if cadence == "week":
        y, w, _ = day.isocalendar()
        return f"{y}-W{w:02d}"
    if cadence == "month":
        return f"{day.year}-{day.month:02d}"
    if cadence == "quarter":
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    return str(day.year)


def period_ends(day: dt.date, cadence: str) -> bool:
    nxt = day + dt.timedelta(days=1)
    if cadence == "day":
        return True
    if cadence == "week":
        return day.weekday() == 6
    if cadence == "month":
        return nxt.day == 1
    if cadence == "quarter":
        return nxt.day == 1 and nxt.month in (1, 4, 7, 10)
    return nxt.day == 1 and nxt.month == 1


class WeightedChoice:
    """Fast weighted choice over a fixed list."""

    def __init__(self, items: list[str], weights: list[float]):
        self.items = items
        self.cum: list[float] = []
        total = 0.0
        for w in weights:
            total += w
            self.cum.append(total)
        self.total = total

    def pick(self, rng: random.Random) -> str:
        return self.items[min(bisect.bisect_right(self.cum, rng.random() * self.total), len(self.items) - 1)]


def reference_summary(ref: Reference) -> dict[str, int]:
    return {"communes": len(ref.communes), "districts": len(ref.districts), "types": len(ref.schemas)}
