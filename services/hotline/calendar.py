"""Handling deadlines counted in working hours: weekdays, office windows, public holidays (all data in
contracts/calendar/working_calendar.yaml and contracts/hotline/deadlines.yaml). Pure; times are epoch ms."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from services.hotline.calls import LOCAL_TZ


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


@dataclass(frozen=True)
class Rule:
    hours: float
    calendar: str  # working | continuous


class WorkingCalendar:
    def __init__(self, doc: dict[str, Any]):
        wh = doc["working_hours"]
        self.weekdays = frozenset(int(d) for d in wh["weekdays"])
        self.windows = sorted((_minutes(a), _minutes(b)) for a, b in (w.split("-") for w in wh["windows"]))
        self.holidays = frozenset(dt.date.fromisoformat(str(h["date"])) for h in doc.get("holidays") or [])
        self.working_days = frozenset(dt.date.fromisoformat(str(d)) for d in doc.get("working_days") or [])

    def is_working_day(self, day: dt.date) -> bool:
        if day in self.working_days:
            return True
        return day.weekday() in self.weekdays and day not in self.holidays

    def add_working_hours(self, start_ms: int, hours: float) -> int:
        """The moment `hours` of working time after `start_ms` (time outside the windows does not count)."""
        remaining = round(hours * 3_600_000)
        start = dt.datetime.fromtimestamp(start_ms / 1000, LOCAL_TZ)
        day = start.date()
        # ms since local midnight of the start day
        offset = start_ms - int(dt.datetime.combine(day, dt.time(), LOCAL_TZ).timestamp() * 1000)
        for _ in range(3660):  # ten years of days at most
            if self.is_working_day(day):
                midnight = int(dt.datetime.combine(day, dt.time(), LOCAL_TZ).timestamp() * 1000)
                for a, b in self.windows:
                    lo, hi = a * 60_000, b * 60_000
                    lo = max(lo, offset)
                    if lo >= hi:
                        continue
                    if remaining <= hi - lo:
                        return midnight + lo + remaining
                    remaining -= hi - lo
            day += dt.timedelta(days=1)
            offset = 0
        raise ValueError("no working time found within ten years: check contracts/calendar")


class Deadlines:
    def __init__(self, doc: dict[str, Any], calendar: WorkingCalendar):
        self.calendar = calendar
        self.default = Rule(float(doc["default"]["hours"]), doc["default"]["calendar"])
        self.by_topic = {k: Rule(float(v["hours"]), v["calendar"]) for k, v in doc["categories"].items()}
        u = doc.get("urgent")
        self.urgent = Rule(float(u["hours"]), u["calendar"]) if u else None

    def rule(self, topic: str, urgent: bool = False) -> Rule:
        rule = self.by_topic.get(topic, self.default)
        if urgent and self.urgent is not None:
            # urgent: whichever comes first is the one the rule names; keep it simple: the urgent rule
            # when it is shorter in clock terms (continuous hours are never longer than working hours).
            if self.urgent.calendar == "continuous" and (
                rule.calendar == "working" or self.urgent.hours < rule.hours
            ):
                return self.urgent
        return rule

    def deadline(self, start_ms: int, topic: str, urgent: bool = False) -> tuple[int, Rule]:
        rule = self.rule(topic, urgent)
        if rule.calendar == "continuous":
            return start_ms + round(rule.hours * 3_600_000), rule
        return self.calendar.add_working_hours(start_ms, rule.hours), rule


@lru_cache(maxsize=4)
def load_deadlines(contracts_dir: Path) -> Deadlines:
    cal = yaml.safe_load((contracts_dir / "calendar" / "working_calendar.yaml").read_text(encoding="utf-8"))
    doc = yaml.safe_load((contracts_dir / "hotline" / "deadlines.yaml").read_text(encoding="utf-8"))
    return Deadlines(doc, WorkingCalendar(cal))
