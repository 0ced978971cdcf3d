"""The hotline service's processing, Faust-independent (the worker, the tests and the benchmark drive it).

`ingest(records)` decodes a batch of ioc.hotline.calls records, hashes and masks callers' numbers, folds each
touched call again (services.hotline.calls), derives deadlines and overdue events, suggests routes, and
returns a Flush: rows for ClickHouse, derived events (back onto ioc.hotline.calls), live summaries
(ioc.hotline.live), changed daily figures (ioc.events) and redacted dead letters. `write(flush)` stores the rows;
`written(flush)` records the figures once they are sent. State is restored from call_events on start.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ioccore.archive import Batch, RecordRef, add_dead_letter, write_batch
from ioccore.catalog import Catalog
from ioccore.clickhouse import ClickHouse
from ioccore.contracts import TYPE_PREFIX, CloudEvent, Contracts, Rejection
from ioccore.logging import get_logger
from services.hotline import store
from services.hotline.calendar import Deadlines
from services.hotline.calls import (
    CallEvent,
    CallState,
    fold,
    format_ms,
    kind_of,
    local_day,
)
from services.hotline.kpis import (
    F115,
    F1022,
    FigureKey,
    backlog_figures,
    is_unit_figure,
    period_of,
    province_day_figures,
    unit_day_figures,
)
from services.hotline.privacy import CallerPrivacy
from services.hotline.routing import Router

log = get_logger("services.hotline")
SOURCE = "urn:ioc:hotline"
AVAILABILITY = TYPE_PREFIX + "hotline.facility.availability"
LIVE = TYPE_PREFIX + "hotline.live.call"
DERIVED = ("deadline_set", "overdue")
_enc = msgspec.json.Encoder()
DAY_MS = 86_400_000


def _event(id_: str, type_: str, t_ms: int, subject: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": id_,
        "source": SOURCE,
        "type": type_,
        "time": format_ms(t_ms),
        "subject": subject,
        "datacontenttype": "application/json",
        "data": data,
    }


@dataclass
class Call:
    """A call in memory: its events, its folded state, and what the service said about it."""

    call_id: str
    events: dict[tuple[str, str], CallEvent] = field(default_factory=dict)
    state: CallState | None = None
    max_order: tuple[int, int, str, str] | None = None
    anomalies: set[str] = field(default_factory=set)
    suggested_focal_point: str = ""
    suggested_hospital: str = ""
    suggested_km: float | None = None
    repeat_caller: bool = False
    batch_kinds: set[str] = field(default_factory=set)  # kinds of the events the current batch brought


@dataclass
class Flush:
    event_rows: list[tuple[CallEvent, RecordRef | None]] = field(default_factory=list)
    call_rows: list[Call] = field(default_factory=list)
    derived: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (key, event)
    live: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    figures: list[tuple[str, dict[str, Any], FigureKey, float, int]] = field(default_factory=list)
    dead: Batch = field(default_factory=Batch)  # dead letters only (ioccore.archive's rows and records)
    availability: list[tuple[str, bool, int, str, str]] = field(default_factory=list)
    anomalies: dict[str, int] = field(default_factory=dict)
    events: int = 0
    records: int = 0

    def anomaly(self, kind: str) -> None:
        self.anomalies[kind] = self.anomalies.get(kind, 0) + 1


class Processor:
    def __init__(
        self,
        ch: ClickHouse,
        contracts: Contracts,
        catalog: Catalog,
        router: Router,
        deadlines: Deadlines,
        privacy: CallerPrivacy,
        retention_days: float = 14.0,
    ):
        self.ch = ch
        self.contracts = contracts
        self.router = router
        self.deadlines = deadlines
        self.privacy = privacy
        self.retention_ms = int(retention_days * DAY_MS)
        self.calls: dict[str, Call] = {}
        self.by_day: dict[int, set[str]] = {}
        self.watermark = 0
        # hospital -> its availability events (t, id, available), in time order
        self.availability: dict[str, list[tuple[int, str, bool]]] = {}
        self.emitted: dict[FigureKey, tuple[float, int]] = {}
        self.emitted_by_period: dict[str, set[FigureKey]] = {}
        self.by_unit_day: dict[tuple[str, int], set[str]] = {}
        self.forwarded_1022: set[str] = set()  # calls forwarded to a focal point (backlog)
        self.callers: dict[str, set[str]] = {}  # caller hash -> call ids seen
        self.totals: dict[str, int] = {"records": 0, "events": 0, "dead_lettered": 0}
        self.anomaly_totals: dict[str, int] = {}
        ids = {i.id for i in catalog.indicators}
        self.indicator_ids = ids
        self.topics_1022 = {i.rsplit(".", 1)[1] for i in ids if i.startswith(F1022 + ".requests_created.")}
        self.topics_115 = {i.rsplit(".", 1)[1] for i in ids if i.startswith(F115 + ".requests_received.")}
        self.skipped_figures: set[str] = set()

    # -- restore -------------------------------------------------------------------------------------------
    def restore(self) -> int:
        """Calls with an event in the last `retention` days (of the newest event stored), availability and the
        figures already reported. Returns the number of calls restored."""
        newest = store.newest_event_ms(self.ch)
        if newest:
            for ev in store.load_events(self.ch, newest - self.retention_ms):
                call = self.calls.get(ev.call_id) or self._new_call(ev.call_id)
                call.events[ev.key] = ev
                if ev.source != SOURCE:
                    self.watermark = max(self.watermark, ev.t)
            for call in self.calls.values():
                self._refold(call)
                call.max_order = max(e.order for e in call.events.values())
            for call in sorted(self.calls.values(), key=lambda c: c.state.first_t):  # type: ignore[union-attr]
                self._link_caller(call)
                self._suggest(call)
        for hospital, available, t, id_ in store.load_availability(self.ch):
            self._set_availability(hospital, t, id_, bool(available))
        for key, (value, revision) in store.load_figures(self.ch).items():
            self._remember(key, value, revision)
        return len(self.calls)

    def _set_availability(self, hospital: str, t: int, id_: str, available: bool) -> None:
        hist = self.availability.setdefault(hospital, [])
        if (t, id_, available) not in hist:
            hist.append((t, id_, available))
            hist.sort()

    def unavailable_at(self, t: int) -> set[str]:
        """Facilities whose latest availability event at or before `t` says unavailable."""
        down = set()
        for hospital, hist in self.availability.items():
            state = [ok for at, _, ok in hist if at <= t]
            if state and not state[-1]:
                down.add(hospital)
        return down

    def _new_call(self, call_id: str) -> Call:
        call = Call(call_id)
        self.calls[call_id] = call
        return call

    # -- ingest ----------------------------------------------------------------------------------------------
    def ingest(self, records: Iterable[RecordRef]) -> Flush:
        flush = Flush()
        touched: dict[str, Call] = {}
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        for rec in records:
            flush.records += 1
            for item in self.contracts.decode(rec.value):
                if not isinstance(item, CloudEvent):
                    self._dead(flush, rec, item.position, item.raw, item.reason, item.source, item.type, now)
                    continue
                self._accept(flush, rec, item, touched, now)
        self._after(flush, touched)
        for k, n in flush.anomalies.items():
            self.anomaly_totals[k] = self.anomaly_totals.get(k, 0) + n
        self.totals["records"] += flush.records
        self.totals["events"] += flush.events
        self.totals["dead_lettered"] += flush.dead.rejected
        return flush

    def _dead(
        self,
        flush: Flush,
        rec: RecordRef,
        position: int,
        raw: bytes,
        reason: str,
        source: str,
        type_: str,
        now: dt.datetime,
    ) -> None:
        """A dead letter with every number-like string redacted (a broken call.received carries one), in its
        raw bytes, reason and key: the table and the dead-letter topic are downstream of the service."""
        redact = self.privacy.redact
        add_dead_letter(
            flush.dead,
            RecordRef(
                rec.topic, rec.partition, rec.offset, redact(rec.key) if rec.key else rec.key, rec.value
            ),
            Rejection(position, redact(reason.encode()).decode(), redact(raw), source, type_),
            now,
        )

    def _accept(
        self, flush: Flush, rec: RecordRef, ev: CloudEvent, touched: dict[str, Call], now: dt.datetime
    ) -> None:
        if ev.type == AVAILABILITY:
            t = int(ev.time.timestamp() * 1000)
            code = str(ev.data["hospital"])
            if code not in self.router.hospital_codes:
                self._dead(
                    flush, rec, 0, _enc.encode(ev), f"unknown hospital {code!r} (contracts/geo/hospitals.yaml)",
                    ev.source, ev.type, now,
                )  # fmt: skip
                return
            flush.events += 1
            self._set_availability(code, t, ev.id, bool(ev.data["available"]))
            # 115 calls received since then are routed again (events of other partitions may come first)
            for call in self.calls.values():
                st = call.state
                if st is not None and st.line == "115" and st.received_at is not None and st.received_at >= t:
                    call.suggested_hospital, call.suggested_km = "", None
                    if call.call_id not in touched:
                        call.batch_kinds = set()
                    touched[call.call_id] = call
            flush.availability.append(
                (code, bool(ev.data["available"]), t, ev.id, str(ev.data.get("reason", "")))
            )
            return
        kind = kind_of(ev.type)
        if kind is None:
            self._dead(
                flush, rec, 0, _enc.encode(ev),
                f"{ev.type} is not a switchboard call event (vn.binhduong.hotline.call.*)",
                ev.source, ev.type, now,
            )  # fmt: skip
            return
        data = dict(ev.data)
        if kind == "received":
            number = str(data.pop("caller_number", ""))
            data["caller_hash"] = self.privacy.hash(number) if number else ""
            data["caller_masked"] = self.privacy.mask(number) if number else ""
            if "location" not in data:
                flush.anomaly("missing_location")
        ce = CallEvent.from_cloudevent(ev, data)
        flush.events += 1
        call = self.calls.get(ce.call_id)
        if call is None:
            call = self._new_call(ce.call_id)
            if kind != "received":
                call.anomalies.add("unknown_call")
                flush.anomaly("unknown_call")
        if ce.key in call.events:
            if ce.source != SOURCE:
                call.anomalies.add("duplicate")
                flush.anomaly("duplicate")
            return
        if call.max_order is not None and ce.order < call.max_order:
            call.anomalies.add("out_of_order")
            flush.anomaly("out_of_order")
        if kind == "received" and "location" not in data:
            call.anomalies.add("missing_location")
        if kind == "received" and "unknown_call" in call.anomalies:
            call.anomalies.add("received_late")
        call.max_order = ce.order if call.max_order is None else max(call.max_order, ce.order)
        call.events[ce.key] = ce
        flush.event_rows.append((ce, rec))
        if ce.source != SOURCE:
            self.watermark = max(self.watermark, ce.t)
        if call.call_id not in touched:
            call.batch_kinds = set()
        call.batch_kinds.add(kind)
        touched[call.call_id] = call

    # -- derive ----------------------------------------------------------------------------------------------
    def _refold(self, call: Call) -> None:
        old = call.state
        new = call.state = fold(call.call_id, call.events.values())
        if old is not None and (old.day, old.unit) != (new.day, new.unit):
            self.by_day.get(old.day, set()).discard(call.call_id)
            self.by_unit_day.get((old.unit, old.day), set()).discard(call.call_id)
        self.by_day.setdefault(new.day, set()).add(call.call_id)
        self.by_unit_day.setdefault((new.unit, new.day), set()).add(call.call_id)
        if new.line == "1022" and new.focal_point and new.forwarded_at is not None:
            self.forwarded_1022.add(call.call_id)
        else:
            self.forwarded_1022.discard(call.call_id)

    def _link_caller(self, call: Call) -> None:
        """Repeat callers, linked by the keyed hash of their number (never the number)."""
        s = call.state
        if s is None or not s.caller_hash:
            return
        ids = self.callers.setdefault(s.caller_hash, set())
        if call.call_id not in ids:
            call.repeat_caller = bool(ids)
            ids.add(call.call_id)

    def _suggest(self, call: Call) -> None:
        s = call.state
        assert s is not None
        if s.line == "1022" and s.field and not call.suggested_focal_point:
            call.suggested_focal_point = self.router.focal_point(s.field, s.unit).code
        if s.line == "115" and s.known and not call.suggested_hospital:
            down = self.unavailable_at(s.received_at if s.received_at is not None else s.first_t)
            hit = self.router.nearest_hospital(s.unit, s.lat, s.lon, down)
            if hit is not None:
                call.suggested_hospital, call.suggested_km = hit.code, hit.distance_km

    def _derive(self, flush: Flush, call: Call, kind: str, t: int, data: dict[str, Any]) -> None:
        s = call.state
        assert s is not None
        event = _event(f"{call.call_id}-{kind.replace('_set', '')}", TYPE_PREFIX + "hotline.call." + kind, t,
                       s.unit, {"call_id": call.call_id, "line": s.line, **data})  # fmt: skip
        ce = CallEvent(call.call_id, event["id"], SOURCE, kind, t, s.unit, event["data"])
        call.events[ce.key] = ce
        flush.event_rows.append((ce, None))
        flush.derived.append((call.call_id, event))
        self._refold(call)

    def _after(self, flush: Flush, touched: dict[str, Call]) -> None:
        changed: dict[str, Call] = dict(touched)
        for call in touched.values():
            self._refold(call)
            s = call.state
            assert s is not None
            self._link_caller(call)
            self._suggest(call)
            if s.line == "1022" and s.focal_point and s.topic and s.deadline is None and s.forwarded_at:
                deadline, rule = self.deadlines.deadline(s.forwarded_at, s.topic, s.urgent)
                self._derive(flush, call, "deadline_set", s.forwarded_at, {
                    "focal_point": s.focal_point, "topic": s.topic, "deadline": format_ms(deadline),
                    "hours": rule.hours, "calendar": rule.calendar,
                })  # fmt: skip
        # overdue: open requests whose deadline the stream's time has passed
        for call in self._open_past_deadline():
            s = call.state
            assert s is not None and s.deadline is not None
            self._derive(flush, call, "overdue", max(s.deadline + 1000, self.watermark), {
                "focal_point": s.focal_point, "topic": s.topic, "deadline": format_ms(s.deadline)
            })  # fmt: skip
            changed[call.call_id] = call
        for call in changed.values():
            flush.call_rows.append(call)
            flush.live.append((call.call_id, self._live(call)))
        self._figures(flush, changed.values())
        self._evict()

    def _open_past_deadline(self) -> list[Call]:
        out = []
        for call_id in self.forwarded_1022:
            call = self.calls[call_id]
            s = call.state
            if (
                s is not None
                and s.deadline is not None
                and s.deadline < self.watermark
                and not s.resolved
                and not s.overdue_event
            ):
                out.append(call)
        return out

    def _live(self, call: Call) -> dict[str, Any]:
        s = call.state
        assert s is not None
        d: dict[str, Any] = {
            "call_id": s.call_id,
            "line": s.line,
            "state": s.state,
            "caller_masked": s.caller_masked,
            "unit": s.unit,
            "district": self.router.district(s.unit),
            "received_at": format_ms(s.received_at if s.received_at is not None else s.first_t),
        }
        if s.field:
            d["field"] = s.field
        if s.topic:
            d["topic"] = s.topic
            d["urgent"] = s.urgent
        if s.line == "1022" and (s.focal_point or call.suggested_focal_point):
            d["focal_point"] = s.focal_point or call.suggested_focal_point
            d["suggested"] = not s.focal_point
        if s.line == "115" and (s.hospital or call.suggested_hospital):
            d["hospital"] = s.hospital or call.suggested_hospital
            d["suggested"] = not s.hospital
            km = s.distance_km if s.hospital else call.suggested_km
            if km is not None:
                d["distance_km"] = km
        if s.answered_at is not None:
            d["answered_at"] = format_ms(s.answered_at)
        if s.wait_s is not None:
            d["wait_s"] = s.wait_s
        if s.outcome:
            d["outcome"] = s.outcome
        if s.deadline is not None:
            d["deadline"] = format_ms(s.deadline)
            d["overdue"] = s.overdue or (not s.resolved and s.deadline < self.watermark)
        if s.satisfaction is not None:
            d["satisfaction"] = s.satisfaction
        d["repeat_caller"] = call.repeat_caller
        return _event(f"{s.call_id}-live-{s.events}", LIVE, max(s.last_t, s.first_t), s.unit, d)

    # -- figures ---------------------------------------------------------------------------------------------
    def _figures(self, flush: Flush, changed: Iterable[Call]) -> None:
        """Recompute the figures of the cohorts the batch touched; emit those that changed."""
        unit_days: set[tuple[str, int]] = set()
        days: set[int] = set()
        backlog_days: set[int] = set()
        wm_day = local_day(self.watermark) if self.watermark else None
        for call in changed:
            s = call.state
            if s is None or not s.known:
                continue
            unit_days.add((s.unit, s.day))
            days.add(s.day)
            moves_backlog = call.batch_kinds & {"received", "forwarded", "callback"}
            if s.line == "1022" and s.forwarded_at is not None and wm_day is not None and moves_backlog:
                first = max(local_day(s.forwarded_at), wm_day - self.retention_ms // DAY_MS + 1)
                backlog_days.update(range(first, max(first, wm_day) + 1))
        if not days and not backlog_days:
            return
        unit_calls = [self.calls[c].state for ud in unit_days for c in self.by_unit_day.get(ud, ())]
        day_calls = [self.calls[c].state for d in days for c in self.by_day.get(d, ())]
        new: dict[FigureKey, float] = {}
        new.update(unit_day_figures(unit_calls, self.topics_1022, self.topics_115))  # type: ignore[arg-type]
        new.update(province_day_figures(day_calls, self.router.district_of))  # type: ignore[arg-type]
        if backlog_days:
            forwarded = [self.calls[c].state for c in self.forwarded_1022]
            new.update(backlog_figures(forwarded, backlog_days))  # type: ignore[arg-type]
        # figures of these cohorts reported before and absent now went back to 0
        touched_units = {(u, period_of(d)) for u, d in unit_days}
        periods = {period_of(d) for d in days}
        periods_b = {period_of(d) for d in backlog_days}
        topics = self.topics_1022 | self.topics_115
        for period in periods | periods_b:
            for key in self.emitted_by_period.get(period, ()):
                if key in new or self.emitted[key][0] == 0:
                    continue
                if ".backlog." in key.indicator:
                    gone = period in periods_b
                elif is_unit_figure(key.indicator, topics):
                    gone = (key.unit, period) in touched_units
                else:
                    gone = period in periods
                if gone:
                    new[key] = 0.0
        t = self.watermark or int(time.time() * 1000)
        for key, value in new.items():
            prev = self.emitted.get(key)
            if prev is not None and prev[0] == value:
                continue
            if prev is None and value == 0:
                continue
            if key.indicator not in self.indicator_ids:
                if key.indicator not in self.skipped_figures:
                    self.skipped_figures.add(key.indicator)
                    log.warning("hotline.figure_not_in_catalog", indicator=key.indicator)
                continue
            revision = (prev[1] if prev else 0) + 1
            data: dict[str, Any] = {
                "indicator_id": key.indicator,
                "period": key.period,
                "cadence": "day",
                "value": value,
            }
            if prev is not None:
                data["restates"] = True
            id_ = f"hl-{key.indicator}-{key.unit}-{key.period}-r{revision:06d}"
            type_ = f"{TYPE_PREFIX}{key.field}.figure.reported"
            flush.figures.append((key.unit, _event(id_, type_, t, key.unit, data), key, value, revision))
            self._remember(key, value, revision)

    def _remember(self, key: FigureKey, value: float, revision: int) -> None:
        self.emitted[key] = (value, revision)
        self.emitted_by_period.setdefault(key.period, set()).add(key)

    def _evict(self) -> None:
        if not self.watermark:
            return
        horizon = self.watermark - self.retention_ms
        old = [c for c in self.calls.values() if c.state is not None and c.state.last_t < horizon]
        for call in old:
            s = call.state
            assert s is not None
            del self.calls[call.call_id]
            self.by_day.get(s.day, set()).discard(call.call_id)
            self.by_unit_day.get((s.unit, s.day), set()).discard(call.call_id)
            self.forwarded_1022.discard(call.call_id)
            if s.caller_hash in self.callers:
                self.callers[s.caller_hash].discard(call.call_id)
        if old:
            cutoff = period_of(local_day(horizon))
            for period in [p for p in self.emitted_by_period if p < cutoff]:
                for key in self.emitted_by_period.pop(period):
                    self.emitted.pop(key, None)

    # -- storage ---------------------------------------------------------------------------------------------
    def write(self, flush: Flush) -> None:
        """Events and call states, then dead letters and availability (all idempotent)."""
        store.write_events(self.ch, flush.event_rows)
        store.write_calls(self.ch, flush.call_rows, self.router)
        write_batch(self.ch, flush.dead)
        if flush.availability:
            store.write_availability(self.ch, flush.availability)

    def written(self, flush: Flush) -> None:
        """After the figures were sent: remember them in ClickHouse (restart, reconcile)."""
        store.write_figures(self.ch, [(k, v, r, e) for _, e, k, v, r in flush.figures])
