"""The pure computation: events of one Kafka partition -> cumulative series states, in per-batch aggregates.

Deterministic by construction: a partition's state after offset o depends only on its records up to o, in
offset order (lateness is judged against the partition's own event-time watermark, not the wall clock), so
any worker, any batching and any restart reach the same state. No I/O here.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ioccore.contracts import CloudEvent
from services.indicators.model import (
    CADENCE_RANK,
    Boundaries,
    Model,
    Ratio,
    Spec,
    local_day,
    parse_period,
    period_labels,
)
from services.indicators.state import State, new_state

SeriesKey = tuple[str, int, str, str]  # (indicator id, cadence index, unit, period label)
_EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class Lateness:
    """How old an event may be, against the newest event time seen in its partition, and still count.
    Reported figures are judged by their report time; their period may be much older."""

    events_s: float = 7 * 86400
    figures_s: float = 400 * 86400


@dataclass
class PartitionState:
    partition: int
    next_offset: int = 0  # every record below this offset is in `series`
    watermark: float = 0.0  # newest event time seen (epoch seconds)
    series: dict[SeriesKey, State] = field(default_factory=dict)
    # (source, id) of the raw events counted, per local day of event time, within the lateness window: a
    # re-sent event (same identity, new offset) is counted once. Rebuilt from the archive on restore.
    seen: dict[int, set[tuple[str, str]]] = field(default_factory=dict)


@dataclass
class Rejected:
    offset: int
    position: int
    event: CloudEvent
    reason: str


@dataclass
class Applied:
    accepted: list[tuple[int, int, CloudEvent]] = field(default_factory=list)  # (offset, position, event)
    rejected: list[Rejected] = field(default_factory=list)
    changed: set[SeriesKey] = field(default_factory=set)
    processed: Counter = field(default_factory=Counter)  # per source
    late: Counter = field(default_factory=Counter)
    dead_lettered: Counter = field(default_factory=Counter)
    duplicates: Counter = field(default_factory=Counter)  # re-sent events dropped (not archived again)


def state_kind(spec: Spec) -> str:
    return "figures" if spec.reported else spec.measure


def make_state(spec: Spec) -> State:
    s = new_state(state_kind(spec))
    if spec.reported:
        s.measure = spec.measure
    elif spec.measure == "quantile":
        s.q = spec.q if spec.q is not None else 0.5
    return s


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


def _instant(v: Any) -> dt.datetime | None:
    if not isinstance(v, str):
        return None
    try:
        t = dt.datetime.fromisoformat(v)
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.timezone(dt.timedelta(hours=7)))


def event_value(spec: Spec, data: dict[str, Any]) -> Any:
    """The value an event contributes to a raw-event indicator, or None when it contributes nothing."""
    m = spec.measure
    if m == "count":
        return 1
    if m == "on_time_rate":
        done, due = _instant(data.get(spec.done_field or "")), _instant(data.get(spec.due_field or ""))
        if done is None or due is None:
            return None
        return 1.0 if done <= due else 0.0
    raw = data.get(spec.value_field or "")
    if m == "distinct_count":
        return None if raw is None else msgspec.json.encode(raw).decode()
    return _number(raw)


class Engine:
    def __init__(self, model: Model, bounds: Boundaries, lateness: Lateness | None = None):
        self.model = model
        self.bounds = bounds
        self.lateness = lateness or Lateness()
        self.spec_of_index = {s.id: s for s in model.specs}
        self.plans = {t: _plan(specs) for t, specs in model.by_type.items()}
        self.spec_pos = {id(s): i for i, s in enumerate(model.specs)}

    def make_state(self, indicator_id: str) -> State:
        return make_state(self.spec_of_index[indicator_id])

    def restore(self, indicator_id: str, kind: str, dumped: Any) -> State:
        """A stored state back into its class, with the catalog's quantile level or figure measure."""
        st = self.make_state(indicator_id)
        if st.kind != kind:
            raise ValueError(f"{indicator_id}: stored state kind {kind!r}, catalog wants {st.kind!r}")
        st.load(dumped)
        return st

    def apply(
        self, part: PartitionState, records: Iterable[tuple[int, list[tuple[int, CloudEvent]]]]
    ) -> Applied:
        """Apply records (offset, [(position, event), ...]) in offset order; records below the partition's
        next_offset are already in the state and are skipped whole."""
        out = Applied()
        raw_groups: dict[tuple[int, str, int], list[Any]] = {}
        figures: dict[SeriesKey, list[tuple[str, int, str, float]]] = {}
        by_type = self.model.by_type
        units_of = self.bounds.rollup
        late_events, late_figures = self.lateness.events_s, self.lateness.figures_s
        specs = self.model.specs
        spec_pos = self.spec_pos
        plans = self.plans
        seen = part.seen
        for offset, items in records:
            if offset < part.next_offset:
                continue
            for position, ev in items:
                units = units_of.get(ev.subject)
                if units is None:
                    out.rejected.append(
                        Rejected(
                            offset,
                            position,
                            ev,
                            f"subject {ev.subject!r} is not a unit of boundary set {self.bounds.name}: "
                            "use a province (74), district or commune code of contracts/geo",
                        )
                    )
                    out.dead_lettered[ev.source] += 1
                    continue
                t = ev.time.timestamp()
                type_specs = by_type.get(ev.type, ())
                is_figure = ev.type.endswith(".figure.reported")
                limit = late_figures if is_figure else late_events
                if t < part.watermark - limit:
                    out.rejected.append(
                        Rejected(
                            offset,
                            position,
                            ev,
                            f"too late: event time {ev.time.isoformat()} is more than {limit / 86400:g} days "
                            "older than the newest event of its partition; re-send it as a restated figure "
                            "or raise IOC_INDICATORS_LATENESS_DAYS",
                        )
                    )
                    out.dead_lettered[ev.source] += 1
                    continue
                day = local_day(t)
                if not is_figure:  # figures are idempotent by (time, id) in their state already
                    bucket = seen.get(day)
                    if bucket is None:
                        bucket = seen[day] = set()
                    identity = (ev.source, ev.id)
                    if identity in bucket:
                        out.duplicates[ev.source] += 1
                        continue
                    bucket.add(identity)
                if t > part.watermark:
                    part.watermark = t
                elif day < local_day(part.watermark):
                    out.late[ev.source] += 1
                out.processed[ev.source] += 1
                out.accepted.append((offset, position, ev))
                if not type_specs:
                    continue
                data = ev.data
                if is_figure:
                    self._figure(ev, units, type_specs, figures)
                    continue
                always, buckets = plans[ev.type]
                candidates = list(always)
                for key, bucket in buckets:
                    got = data.get(key)
                    if got is not None and not isinstance(got, list | dict):
                        hit = bucket.get(got)
                        if hit:
                            candidates.extend(hit)
                for spec in candidates:
                    if spec.filter and not spec.matches(data):
                        continue
                    v = event_value(spec, data)
                    if v is None:
                        continue
                    gk = (spec_pos[id(spec)], ev.subject, day)
                    g = raw_groups.get(gk)
                    if g is None:
                        raw_groups[gk] = [v]
                    else:
                        g.append(v)
            part.next_offset = offset + 1
        horizon = local_day(part.watermark - late_events) - 1  # older events are too late anyway
        for d in [d for d in seen if d < horizon]:
            del seen[d]
        series = part.series
        changed = out.changed
        for (si, subject, day), values in raw_groups.items():
            spec = specs[si]
            labels = period_labels(day)
            for level, unit in units_of[subject]:
                if level not in spec.scopes:
                    continue
                for c in spec.cadences:
                    key = (spec.id, c, unit, labels[c])
                    st = series.get(key)
                    if st is None:
                        st = series[key] = make_state(spec)
                    st.add(values)
                    changed.add(key)
        for key, values in figures.items():
            st = series.get(key)
            if st is None:
                st = series[key] = self.make_state(key[0])
            st.add(values)
            changed.add(key)
        return out

    def _figure(
        self,
        ev: CloudEvent,
        units: tuple[tuple[str, str], ...],
        type_specs: list[Spec],
        figures: dict[SeriesKey, list[tuple[str, int, str, float]]],
    ) -> None:
        data = ev.data
        value = _number(data.get("value"))
        cadence = CADENCE_RANK.get(str(data.get("cadence")))
        if value is None or cadence is None:
            return
        try:
            period_cadence, first_day = parse_period(str(data.get("period")))
        except ValueError:
            return
        if CADENCE_RANK[period_cadence] != cadence:
            return
        stamp = int(ev.time.timestamp()) * 1000 + ev.time.microsecond // 1000  # as the archive keeps it
        entry_key = f"{ev.subject}|{data['period']}"
        for spec in type_specs:
            if spec.filter and not spec.matches(data):
                continue
            entry = (entry_key, stamp, ev.id, value)
            if spec.measure == "last":
                # A stock as reported: one series per reported cadence, for the reporting unit only.
                if cadence not in spec.cadences:
                    continue
                own = units[0] if units[0][1] == ev.subject else None
                if own is None or own[0] not in spec.scopes:
                    continue
                figures.setdefault((spec.id, cadence, own[1], str(data["period"])), []).append(entry)
                continue
            # Additive figures: those of the finest cadence add up into longer periods and larger units.
            if cadence != spec.finest:
                continue
            labels = period_labels((first_day - _EPOCH).days)
            for level, unit in units:
                if level not in spec.scopes:
                    continue
                for c in spec.cadences:
                    figures.setdefault((spec.id, c, unit, labels[c]), []).append(entry)


def _plan(specs: list[Spec]) -> tuple[list[Spec], list[tuple[str, dict[Any, list[Spec]]]]]:
    """Index an event type's indicators by their first filter condition, so that an event meets only the
    indicators whose first condition its value can satisfy (the full filter is still checked)."""
    always: list[Spec] = []
    buckets: dict[str, dict[Any, list[Spec]]] = {}
    for spec in specs:
        if not spec.filter:
            always.append(spec)
            continue
        key, want = spec.filter[0]
        wants = want if isinstance(want, frozenset) else (want,)
        if any(isinstance(w, list | dict) for w in wants):
            always.append(spec)
            continue
        bucket = buckets.setdefault(key, {})
        for w in wants:
            bucket.setdefault(w, []).append(spec)
    return always, list(buckets.items())


# ---------------------------------------------------------------------------------------------------------
# Values: merged states -> numbers, ratios on top
# ---------------------------------------------------------------------------------------------------------
def series_value(spec: Spec, state: State) -> float | None:
    v = state.value()
    if v is None:
        return None
    if spec.measure == "on_time_rate" and not spec.reported:
        return v * spec.scale
    return float(v)


def ratio_value(ratio: Ratio, num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den == 0:
        return None
    return num / den * ratio.scale
