"""The state of one call as a pure, deterministic fold of its events (no Kafka, no ClickHouse).

Events of a call may arrive late, twice or out of order (closed before answered); the fold sorts them by
(event time, lifecycle rank, source, id) and applies fixed rules, so the same set of events always gives the
same state whatever the arrival order. Times are epoch milliseconds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ioccore.contracts import TYPE_PREFIX, CloudEvent

HOTLINE_TYPE = TYPE_PREFIX + "hotline."
# Lifecycle order of the kinds: breaks ties between events stamped with the same time.
KINDS = (
    "received",
    "answered",
    "classified",
    "note",
    "forwarded",
    "deadline_set",
    "closed",
    "callback",
    "overdue",
)
KIND_RANK = {k: i for i, k in enumerate(KINDS)}
SATISFIED_FROM = 4  # satisfaction 4 and 5 count as satisfied (call.closed / call.callback schemas)
TZ_OFFSET_S = 7 * 3600  # Asia/Ho_Chi_Minh, no daylight saving
LOCAL_TZ = dt.timezone(dt.timedelta(seconds=TZ_OFFSET_S))


def local_day(ms: int) -> int:
    """Days since 1970-01-01 of the local (UTC+07:00) date of an epoch-ms time."""
    return (ms // 1000 + TZ_OFFSET_S) // 86400


def kind_of(event_type: str) -> str | None:
    """`vn.binhduong.hotline.call.answered` -> `answered`; None for anything that is not a call event."""
    if not event_type.startswith(HOTLINE_TYPE + "call."):
        return None
    kind = event_type[len(HOTLINE_TYPE) + 5 :]
    return kind if kind in KIND_RANK else None


def parse_ms(text: str) -> int | None:
    """RFC 3339 -> epoch ms (None when unreadable)."""
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        return None
    return int(t.timestamp()) * 1000 + t.microsecond // 1000


def format_ms(ms: int) -> str:
    """Epoch ms -> RFC 3339 in local time (+07:00), to the second."""
    return dt.datetime.fromtimestamp(ms // 1000, LOCAL_TZ).isoformat()


def line_of(call_id: str) -> str:
    return call_id.split("-", 1)[0]


@dataclass(frozen=True)
class CallEvent:
    """One event of a call, with the caller's number already replaced by its hash and masked form."""

    call_id: str
    event_id: str
    source: str
    kind: str
    t: int  # epoch ms
    subject: str
    data: dict[str, Any]

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.event_id)

    @property
    def order(self) -> tuple[int, int, str, str]:
        return (self.t, KIND_RANK[self.kind], self.source, self.event_id)

    @classmethod
    def from_cloudevent(cls, ev: CloudEvent, data: dict[str, Any]) -> CallEvent:
        kind = kind_of(ev.type)
        assert kind is not None, ev.type
        t = int(ev.time.timestamp()) * 1000 + ev.time.microsecond // 1000
        return cls(str(data["call_id"]), ev.id, ev.source, kind, t, ev.subject, data)


@dataclass
class CallState:
    call_id: str
    line: str
    unit: str = ""
    known: bool = False  # its call.received arrived: only known calls count in the figures
    caller_hash: str = ""
    caller_masked: str = ""
    lat: float | None = None
    lon: float | None = None
    received_at: int | None = None
    answered_at: int | None = None
    agent: str = ""
    wait_s: int | None = None
    field: str = ""
    topic: str = ""
    urgent: bool = False
    forwarded_at: int | None = None
    focal_point: str = ""
    hospital: str = ""
    distance_km: float | None = None
    closed_at: int | None = None
    outcome: str = ""
    callback_at: int | None = None
    reached: bool = False
    resolved: bool = False
    resolved_at: int | None = None
    satisfaction: int | None = None
    deadline: int | None = None
    deadline_hours: float | None = None
    overdue_event: bool = False
    notes: int = 0
    events: int = 0
    first_t: int = 0
    last_t: int = 0

    @property
    def has_location(self) -> bool:
        return self.lat is not None and self.lon is not None

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @property
    def classified(self) -> bool:
        return bool(self.topic)

    @property
    def forwarded(self) -> bool:
        return bool(self.focal_point or self.hospital)

    @property
    def on_time(self) -> bool:
        """A 1022 request resolved by its deadline."""
        return (
            self.resolved
            and self.deadline is not None
            and self.resolved_at is not None
            and self.resolved_at <= self.deadline
        )

    @property
    def overdue(self) -> bool:
        """Past its deadline: resolved late, or still open when the stream's time passed the deadline."""
        return self.deadline is not None and not self.on_time and (self.overdue_event or self.resolved)

    @property
    def satisfied(self) -> bool:
        return self.satisfaction is not None and self.satisfaction >= SATISFIED_FROM

    @property
    def day(self) -> int:
        """The call's cohort day: the local date it was received (its first event while that is unknown)."""
        return local_day(self.received_at if self.received_at is not None else self.first_t)

    @property
    def state(self) -> str:
        if self.outcome == "abandoned":
            return "abandoned"
        if self.resolved or self.outcome == "resolved":
            return "resolved"
        if self.line == "115" and self.closed_at is not None:
            return "closed"
        if self.forwarded:
            return "forwarded"
        if self.closed_at is not None:
            return "closed"
        if self.classified:
            return "classified"
        if self.answered:
            return "answered"
        return "ringing"

    def backlog_at(self, t: int) -> bool:
        """Forwarded to a focal point by `t` and not resolved by then."""
        return (
            bool(self.focal_point)
            and self.forwarded_at is not None
            and self.forwarded_at <= t
            and not (self.resolved and self.resolved_at is not None and self.resolved_at <= t)
        )


def fold(call_id: str, events: Iterable[CallEvent]) -> CallState:
    """The call's state from its events (any order, duplicates by (source, id) ignored)."""
    unique = {e.key: e for e in events}
    ordered = sorted(unique.values(), key=lambda e: e.order)
    s = CallState(call_id=call_id, line=line_of(call_id))
    if not ordered:
        return s
    s.events = len(ordered)
    s.first_t = ordered[0].t
    s.last_t = max(e.t for e in ordered)
    s.unit = ordered[0].subject
    sat_t: tuple[int, int, str, str] | None = None
    for e in ordered:
        d = e.data
        k = e.kind
        if k == "received":
            if s.known:
                continue  # a second call.received (another id) does not move the first
            s.known = True
            s.received_at = e.t
            s.unit = str(d.get("unit") or e.subject)
            s.caller_hash = str(d.get("caller_hash", ""))
            s.caller_masked = str(d.get("caller_masked", ""))
            loc = d.get("location")
            if isinstance(loc, dict) and "lat" in loc and "lon" in loc:
                s.lat, s.lon = float(loc["lat"]), float(loc["lon"])
        elif k == "answered":
            if s.answered_at is None:
                s.answered_at = e.t
                s.agent = str(d.get("agent", ""))
                if isinstance(d.get("wait_seconds"), int):
                    s.wait_s = int(d["wait_seconds"])
        elif k == "classified":
            s.field = str(d.get("field", ""))
            s.topic = str(d.get("topic", ""))
            s.urgent = bool(d.get("urgent", False))
        elif k == "forwarded":
            s.forwarded_at = e.t
            s.focal_point = str(d.get("focal_point", ""))
            s.hospital = str(d.get("hospital", ""))
            km = d.get("distance_km")
            s.distance_km = float(km) if isinstance(km, int | float) else None
        elif k == "closed":
            s.closed_at = e.t
            s.outcome = str(d.get("outcome", ""))
        elif k == "callback":
            s.callback_at = e.t
            s.reached = bool(d.get("reached", False))
            s.resolved = bool(d.get("resolved", False))
            s.resolved_at = e.t if s.resolved else None
        elif k == "note":
            s.notes += 1
        elif k == "deadline_set":
            if s.deadline is None:
                s.deadline = parse_ms(str(d.get("deadline", "")))
                hours = d.get("hours")
                s.deadline_hours = float(hours) if isinstance(hours, int | float) else None
        elif k == "overdue":
            s.overdue_event = True
        if k in ("closed", "callback") and isinstance(d.get("satisfaction"), int):
            if sat_t is None or e.order > sat_t:
                sat_t = e.order
                s.satisfaction = int(d["satisfaction"])
    if s.wait_s is None and s.answered_at is not None and s.received_at is not None:
        s.wait_s = max(0, (s.answered_at - s.received_at) // 1000)
    return s
