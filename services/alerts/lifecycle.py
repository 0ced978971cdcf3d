"""The alert lifecycle, pure and deterministic: no Kafka, no ClickHouse, no clock (time is an argument).

    firing ──acknowledge──▶ acknowledged ──assign──▶ assigned ──resolve──▶ resolved
       │                                                ▲                    │
       └──────────────assign / resolve──────────────────┘      reopened ◀────┘ (fires again within the
                                                                                 rule's flap window)
  commented, silenced: the state stays; escalated: firing and unacknowledged past escalate_after.

- `apply(alert, transition, data)`: the state after one event; it refuses an event that does not follow
  (wrong version, impossible transition), so a fold over any stored history is either valid or an error.
- `fold(events)`: the states of all alerts from their events (the worker does this at start from ClickHouse).
- `Core.decide_update / decide_command / decide_tick`: indicator updates, operators' commands and timers ->
  lifecycle events (or a rejection with a reason). `Core.apply_events` folds decided events into the state.

A lifecycle event is (transition, data) with data as on ioc.alerts (contracts/events/alerts/*.schema.json):
a snapshot of the alert after the event plus actor, reason, note, command_id.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from services.alerts.rules import (
    BREACH,
    CLEAR,
    PROVINCE,
    UNKNOWN,
    Maintenance,
    Rule,
    due_period,
    epoch,
    in_window,
    iso,
    judge,
    parse_recurring,
    prev_iso,
)

SYSTEM = "system"
STATES = ("firing", "acknowledged", "assigned", "resolved")
OPEN = frozenset({"firing", "acknowledged", "assigned"})
TRANSITIONS = (
    "raised",
    "reopened",
    "acknowledged",
    "assigned",
    "commented",
    "escalated",
    "silenced",
    "resolved",
)
# transition -> (states it may follow (None: no alert yet), state after; None: unchanged)
ALLOWED: dict[str, tuple[frozenset[str | None], str | None]] = {
    "raised": (frozenset({None}), "firing"),
    "reopened": (frozenset({"resolved"}), "firing"),
    "acknowledged": (frozenset({"firing"}), "acknowledged"),
    "assigned": (frozenset(OPEN), "assigned"),
    "commented": (frozenset(STATES), None),
    "escalated": (frozenset({"firing"}), None),
    "silenced": (frozenset(OPEN), None),
    "resolved": (frozenset(OPEN), "resolved"),
}
ACTION_TRANSITION = {
    "acknowledge": "acknowledged",
    "assign": "assigned",
    "comment": "commented",
    "resolve": "resolved",
    "silence": "silenced",
}
WRITERS = {"province_admin", "district_operator"}


class InvalidEvent(ValueError):
    """An event that cannot follow the alert's history."""


@dataclass(frozen=True)
class Alert:
    alert_id: str
    rule: str
    indicator: str
    field: str
    unit: str
    level: str
    district: str
    severity: str
    state: str
    version: int
    title_vi: str
    sop_vi: str
    value: float | None
    threshold: float | None
    cadence: str
    period: str
    opened_at: str
    fired_at: str
    updated_at: str
    acknowledged_by: str | None = None
    assignee: str | None = None
    escalated: bool = False
    silenced: bool = False
    silenced_until: str | None = None
    silence_rule: str | None = None
    resolved_at: str | None = None

    @property
    def is_open(self) -> bool:
        return self.state in OPEN

    def snapshot(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("updated_at")
        d.pop("resolved_at")
        return d


_SNAPSHOT = {f.name for f in dataclasses.fields(Alert)} - {"updated_at", "resolved_at"}


def apply(alert: Alert | None, transition: str, data: dict[str, Any]) -> Alert:
    """The alert after one lifecycle event; InvalidEvent when the event cannot follow."""
    if transition not in ALLOWED:
        raise InvalidEvent(f"unknown transition {transition!r}")
    after, to = ALLOWED[transition]
    state = alert.state if alert else None
    if state not in after:
        raise InvalidEvent(f"{transition} cannot follow state {state} ({data.get('alert_id')})")
    expected = (alert.version if alert else 0) + 1
    if data.get("version") != expected:
        raise InvalidEvent(f"{data.get('alert_id')}: version {data.get('version')} where {expected} was due")
    if alert is not None and data.get("alert_id") != alert.alert_id:
        raise InvalidEvent(f"event of {data.get('alert_id')} applied to {alert.alert_id}")
    want = to or state
    if data.get("state") != want:
        raise InvalidEvent(f"{transition} leads to {want}, the event says {data.get('state')}")
    values = {k: data.get(k) for k in _SNAPSHOT}
    values["escalated"] = bool(values["escalated"])
    values["silenced"] = bool(values["silenced"])
    resolved_at = data["at"] if transition == "resolved" else (alert.resolved_at if alert else None)
    if transition == "reopened":
        resolved_at = None
    return Alert(**values, updated_at=data["at"], resolved_at=resolved_at)


def fold(events: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, Alert]:
    """Alert id -> state, from lifecycle events in each alert's version order."""
    alerts: dict[str, Alert] = {}
    for transition, data in events:
        aid = data["alert_id"]
        alerts[aid] = apply(alerts.get(aid), transition, data)
    return alerts


@dataclass
class Series:
    """What the core remembers of one rule × unit's indicator series: the values of its last periods, since when the condition holds (duration rules), and when each period was first reported."""

    values: dict[str, float] = field(default_factory=dict)  # first day of a period -> its value
    newest: str = ""  # first day of the newest period seen
    pending_since: float | None = None
    pending: tuple[float, float | None, str, str] | None = None  # value, threshold, reason, period
    reported_at: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Rejection:
    reason: str


@dataclass(frozen=True)
class UnitInfo:
    level: str
    district: str


Event = tuple[str, dict[str, Any]]


class Core:
    """The alerts' state and the decisions on it. Not thread-safe: one caller at a time."""

    def __init__(
        self,
        rules: list[Rule],
        units: dict[str, UnitInfo],
        maintenance: list[Maintenance] | None = None,
        keep_windows: int = 4,
    ) -> None:
        self.rules = {r.id: r for r in rules}
        self.by_indicator: dict[tuple[str, str], list[Rule]] = {}
        for r in rules:
            self.by_indicator.setdefault((r.indicator, r.cadence), []).append(r)
        self.units = units
        self.maintenance = maintenance or []
        self.keep = keep_windows
        self.alerts: dict[str, Alert] = {}
        self.open_ids: set[str] = set()  # the alerts not resolved (the timers look at these only)
        self.latest: dict[tuple[str, str], str] = {}  # (rule, unit) -> newest alert id
        self.series: dict[tuple[str, str], Series] = {}
        self.commands: dict[str, dict[str, Any]] = {}  # command_id -> result data of the applied command
        self.timeliness_sent: dict[tuple[str, str], str] = {}  # (field, cadence) -> period last reported

    # -- state --------------------------------------------------------------------------------------------
    def apply_events(self, events: Iterable[Event]) -> None:
        for transition, data in events:
            aid = data["alert_id"]
            alert = apply(self.alerts.get(aid), transition, data)
            self.alerts[aid] = alert
            if alert.is_open:
                self.open_ids.add(aid)
            else:
                self.open_ids.discard(aid)
            key = (alert.rule, alert.unit)
            cur = self.latest.get(key)
            if cur is None or _seq(aid) >= _seq(cur):
                self.latest[key] = aid
            if data.get("command_id"):
                self.commands[data["command_id"]] = _result(
                    data["command_id"], alert, "applied", data["reason"]
                )

    def open_alert(self, rule_id: str, unit: str) -> Alert | None:
        aid = self.latest.get((rule_id, unit))
        a = self.alerts.get(aid) if aid else None
        return a if a is not None and a.is_open else None

    def silenced(self, a: Alert, now: float) -> bool:
        if a.silenced_until and now >= epoch(a.silenced_until):
            per_alert = False
        elif a.silence_rule:
            per_alert = in_window(*parse_recurring(a.silence_rule), now)
        else:
            per_alert = a.silenced_until is not None
        return per_alert or any(m.covers(a.district, a.field, now) for m in self.maintenance)

    def _event(self, transition: str, a: Alert, now: float, actor: str, reason: str, **extra: Any) -> Event:
        data = a.snapshot()
        data.update(
            version=a.version + 1,
            actor=actor,
            reason=reason,
            at=iso(now),
            note=extra.pop("note", None),
            command_id=extra.pop("command_id", None),
        )
        data.update(extra)
        if "silenced" not in extra:
            silences = {k: v for k, v in extra.items() if k in ("silenced_until", "silence_rule")}
            data["silenced"] = self.silenced(dataclasses.replace(a, **silences), now)
        return transition, data

    # -- indicator updates ----------------------------------------------------------------------------------
    def decide_update(self, u: dict[str, Any], now: float) -> list[Event]:
        """One indicator update: a row of a vn.binhduong.indicators.values.updated event with the event's
        level, unit and version_set (read: indicator, cadence, level, unit, period, period_start, value)."""
        rules = self.by_indicator.get((u["indicator"], u["cadence"]))
        if not rules:
            return []
        out: list[Event] = []
        for rule in rules:
            if u["level"] not in rule.levels:
                continue
            out.extend(self._evaluate(rule, u, now))
        return out

    def _evaluate(self, rule: Rule, u: dict[str, Any], now: float) -> list[Event]:
        unit = u["unit"]
        s = self.series.setdefault((rule.id, unit), Series())
        period, start, value = u["period"], u["period_start"], float(u["value"])
        self._remember(s, period, start, value, now)
        if rule.kind == "no_data":  # the missing period arrived (late): resolved
            current = self.open_alert(rule.id, unit)
            if current is not None and current.period == period:
                reason = f"Đã nhận số liệu kỳ {period} / figure for {period} received"
                return [self._event("resolved", current, now, SYSTEM, reason, state="resolved", value=value)]
            return []
        if start < s.newest:
            return []  # a late update of an older window: remembered, not judged
        s.newest = start
        current = self.open_alert(rule.id, unit)
        verdicts = self._window_verdicts(rule, unit, u["level"], s)
        last = verdicts[-1]
        if last.kind == CLEAR or last.kind == UNKNOWN:
            s.pending_since, s.pending = None, None
        if current is not None:
            if last.kind == CLEAR:
                return [
                    self._event(
                        "resolved",
                        current,
                        now,
                        SYSTEM,
                        last.reason,
                        state="resolved",
                        value=value,
                        period=period,
                    )
                ]
            return []
        if last.kind != BREACH:
            return []
        if rule.for_duration_s is not None:
            s.pending_since = s.pending_since if s.pending_since is not None else now
            s.pending = (value, last.threshold, last.reason, period)
            if now - s.pending_since < rule.for_duration_s:
                return []
        elif len(verdicts) < rule.for_windows or any(v.kind != BREACH for v in verdicts):
            return []
        return [self._fire(rule, unit, u["level"], value, last.threshold, last.reason, period, now)]

    def _remember(self, s: Series, period: str, start: str, value: float, at: float) -> None:
        s.values[start] = value
        if period not in s.reported_at:
            s.reported_at[period] = at
        if len(s.values) > self.keep:
            for old in sorted(s.values)[: len(s.values) - self.keep]:
                del s.values[old]
        if len(s.reported_at) > self.keep:
            for old in sorted(s.reported_at)[: len(s.reported_at) - self.keep]:
                del s.reported_at[old]

    def _window_verdicts(self, rule: Rule, unit: str, level: str, s: Series) -> list:
        """Verdicts of the newest `for_windows` consecutive windows, oldest first (fewer when missing)."""
        values = s.values
        if rule.for_windows == 1 and rule.kind != "change":
            return [judge(rule, unit, level, values[s.newest], None)]
        start = s.newest
        out = []
        for _ in range(max(1, rule.for_windows)):
            v = values.get(start)
            if v is None:
                break
            p = prev_iso(rule.cadence, start)
            out.append(judge(rule, unit, level, v, values.get(p)))
            start = p
        return list(reversed(out))

    def _fire(
        self,
        rule: Rule,
        unit: str,
        level: str,
        value: float | None,
        threshold: float | None,
        reason: str,
        period: str,
        now: float,
    ) -> Event:
        prev_id = self.latest.get((rule.id, unit))
        prev = self.alerts.get(prev_id) if prev_id else None
        if (
            prev is not None
            and prev.resolved_at is not None
            and now - epoch(prev.resolved_at) <= rule.flap_window_s
        ):
            why = f"Lại vi phạm trong thời gian chống dao động / fired again within the flap window: {reason}"
            return self._event(
                "reopened", prev, now, SYSTEM, why,
                state="firing", value=value, threshold=threshold, period=period, fired_at=iso(now),
                escalated=False, acknowledged_by=None, assignee=None, sop_vi=rule.sop_vi,
            )  # fmt: skip
        n = _seq(prev_id) + 1 if prev_id else 1
        info = self.units.get(unit) or UnitInfo(level, PROVINCE)
        a = Alert(
            alert_id=f"{rule.id}|{unit}|{n}",
            rule=rule.id,
            indicator=rule.indicator,
            field=rule.field,
            unit=unit,
            level=info.level,
            district=info.district,
            severity=rule.severity,
            state="firing",
            version=0,
            title_vi=rule.title_vi,
            sop_vi=rule.sop_vi,
            value=value,
            threshold=threshold,
            cadence=rule.cadence,
            period=period,
            opened_at=iso(now),
            fired_at=iso(now),
            updated_at=iso(now),
        )
        return self._event("raised", a, now, SYSTEM, reason)

    # -- commands ---------------------------------------------------------------------------------------------
    def decide_command(self, c: dict[str, Any], now: float) -> tuple[list[Event], dict[str, Any]]:
        """One command (the data of a vn.binhduong.alerts.command event): its events and its result."""
        cid, aid = c["command_id"], c["alert_id"]
        if cid in self.commands:
            return [], self.commands[cid]  # a redelivered command: the same result, nothing new
        a = self.alerts.get(aid)

        def reject(reason: str) -> tuple[list[Event], dict[str, Any]]:
            return [], _result(cid, a, "rejected", reason, aid)

        if a is None:
            return reject(f"Không có cảnh báo {aid} / no alert {aid}")
        actor = c["actor"]
        role, district = actor.get("role"), actor.get("district")
        action = c["action"]
        if role not in WRITERS and not (role == "department_system" and action == "comment"):
            return reject(f"Vai trò {role} không được thực hiện '{action}' / role {role} may not {action}")
        if role == "district_operator" and district != a.district:
            return reject(
                f"Cảnh báo thuộc địa bàn {a.district}, người dùng thuộc {district} / "
                f"the alert belongs to district {a.district}, the actor to {district}"
            )
        ev = c.get("expected_version")
        if ev is not None and ev != a.version:
            return reject(
                f"Phiên bản cũ: cảnh báo đang ở phiên bản {a.version}, lệnh dựa trên {ev} / "
                f"stale version: the alert is at {a.version}, the command expected {ev}"
            )
        transition = ACTION_TRANSITION[action]
        after, to = ALLOWED[transition]
        if a.state not in after:
            return reject(
                f"Không thể '{action}' cảnh báo đang ở trạng thái {a.state} / cannot {action} an alert that is {a.state}"
            )
        note = c.get("note")
        extra: dict[str, Any] = {"note": note, "command_id": cid, "actor_role": role, "state": to or a.state}
        who = actor["id"]
        if action == "acknowledge":
            extra["acknowledged_by"] = who
            reason = "Đã xác nhận / acknowledged"
        elif action == "assign":
            if not c.get("assignee"):
                return reject("Thiếu người được giao / assignee missing")
            extra["assignee"] = c["assignee"]
            extra["acknowledged_by"] = a.acknowledged_by or who
            reason = f"Đã giao cho {c['assignee']} / assigned to {c['assignee']}"
        elif action == "comment":
            if not note:
                return reject("Ghi chú trống / empty note")
            reason = "Ghi chú / comment"
        elif action == "resolve":
            reason = "Đã xử lý xong / resolved by an operator"
        else:  # silence
            sil = c.get("silence") or {}
            if not sil:
                return reject("Thiếu thời hạn tạm ngưng / silence needs until or recurring")
            if sil.get("until") and epoch(sil["until"]) <= now:
                return reject("Thời hạn tạm ngưng đã qua / the silence would already be over")
            extra["silenced_until"] = iso(epoch(sil["until"])) if sil.get("until") else None
            extra["silence_rule"] = sil.get("recurring")
            reason = "Tạm ngưng thông báo / notifications silenced"
        event = self._event(transition, a, now, who, reason, **extra)
        after_alert = apply(a, *event)
        return [event], _result(cid, after_alert, "applied", reason)

    # -- timers -----------------------------------------------------------------------------------------------
    def decide_tick(self, now: float) -> tuple[list[Event], list[dict[str, Any]]]:
        """Escalations, duration rules that held long enough, no-data deadlines; and the reporting-timeliness
        figures of periods whose deadline passed ({field, cadence, period, value})."""
        out: list[Event] = []
        for a in [self.alerts[aid] for aid in sorted(self.open_ids)]:
            if a.state != "firing" or a.escalated:
                continue
            rule = self.rules.get(a.rule)
            if rule is None or now - epoch(a.fired_at) < rule.escalate_after_s or self.silenced(a, now):
                continue
            mins = round(rule.escalate_after_s / 60)
            why = f"Chưa được xác nhận sau {mins} phút, chuyển lên tỉnh / unacknowledged after {mins} min, escalated to the province"
            out.append(self._event("escalated", a, now, SYSTEM, why, escalated=True))
        for (rule_id, unit), s in self.series.items():
            rule = self.rules.get(rule_id)
            if rule is None or rule.for_duration_s is None or s.pending_since is None or s.pending is None:
                continue
            if now - s.pending_since >= rule.for_duration_s and self.open_alert(rule_id, unit) is None:
                value, threshold, reason, period = s.pending
                level = self.units[unit].level if unit in self.units else rule.levels[0]
                out.append(self._fire(rule, unit, level, value, threshold, reason, period, now))
        figures: dict[tuple[str, str, str], list[int]] = {}
        for rule in self.rules.values():
            if rule.kind != "no_data":
                continue
            period, _, deadline = due_period(rule.cadence, rule.grace_days, now)
            tally = figures.setdefault((rule.field, rule.cadence, period), [0, 0])
            for unit, info in self.units.items():
                if info.level not in rule.levels:
                    continue
                s = self.series.get((rule.id, unit))
                when = s.reported_at.get(period) if s else None
                tally[1] += 1
                if when is not None and when <= deadline:
                    tally[0] += 1
                last = self.alerts.get(self.latest.get((rule.id, unit), ""))
                if when is None and (last is None or (last.period != period and not last.is_open)):
                    # once per missing period: an operator's resolve is not undone by the next tick
                    why = f"Chưa nhận số liệu kỳ {period} sau hạn báo cáo / no figure for {period} by the deadline"
                    out.append(self._fire(rule, unit, info.level, None, None, why, period, now))
        reports = []
        for (fld, cadence, period), (on_time, expected) in sorted(figures.items()):
            if (
                expected
                and cadence in ("month", "quarter", "year")
                and self.timeliness_sent.get((fld, cadence)) != period
            ):
                self.timeliness_sent[(fld, cadence)] = period
                value = round(100.0 * on_time / expected, 2)
                reports.append({"field": fld, "cadence": cadence, "period": period, "value": value})
        return out, reports

    def note_reported(
        self, rule_id: str, unit: str, period: str, start: str, value: float, at: float
    ) -> None:
        """Prime the memory with a value already stored (at start, from indicator_values)."""
        s = self.series.setdefault((rule_id, unit), Series())
        s.reported_at[period] = min(at, s.reported_at.get(period, at))
        self._remember(s, period, start, value, at)
        if start > s.newest:
            s.newest = start


def _seq(alert_id: str) -> int:
    tail = alert_id.rsplit("|", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _result(cid: str, a: Alert | None, outcome: str, reason: str, aid: str | None = None) -> dict[str, Any]:
    return {
        "command_id": cid,
        "alert_id": a.alert_id if a else aid,
        "outcome": outcome,
        "reason": reason,
        "version": a.version if a else 0,
        "state": a.state if a else None,
    }
