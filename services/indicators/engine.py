"""The pure computation: events of one Kafka partition -> cumulative series states, in per-batch aggregates.

Deterministic by construction: a partition's state after offset o depends only on its records up to o, in
offset order (lateness is judged against the partition's own event-time watermark, not the wall clock), so
any worker, any batching and any restart reach the same state. No I/O here.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from ioccore.contracts import CloudEvent
from services.indicators.columns import (
    CADENCE_SHIFT,
    IND_SHIFT,
    MAX_PERIODS,
    MAX_UNITS,
    OBJECT,
    RATIO,
    SUMMARISED,
    UNIT_SHIFT,
    Summaries,
    no_codes,
    series_codes,
    split_codes,
    unique_codes,
)
from services.indicators.model import (
    CADENCE_RANK,
    CADENCES,
    TZ_OFFSET_S,
    Boundaries,
    Model,
    Ratio,
    Spec,
    local_day,
    parse_period,
    period_labels,
    period_last_day,
    period_start,
)
from services.indicators.state import KINDS, State, new_state

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
    next_offset: int = 0  # every record below this offset is in the states
    watermark: float = 0.0  # newest event time seen (epoch seconds)
    series: dict[SeriesKey, State] = field(default_factory=dict)  # states kept as objects (see columns.py)
    summaries: Summaries = field(default_factory=Summaries)  # the summarised measures' states, by series code
    # The ids of the raw events counted, per local day of event time and source, within the lateness window: a
    # re-sent event (same source and id, new offset) is counted once. Nested rather than a set of (source, id)
    # pairs: no tuple per event kept (40% less memory). Rebuilt from the archive on restore.
    seen: dict[int, dict[str, set[str]]] = field(default_factory=dict)


@dataclass
class Rejected:
    offset: int
    position: int
    event: CloudEvent
    reason: str


@dataclass
class Applied:
    accepted: list[CloudEvent] = field(default_factory=list)  # the events applied, in order
    accepted_offsets: list[int] = field(default_factory=list)  # the offset of each one's record
    accepted_times: list[float] = field(default_factory=list)  # their event times (epoch seconds)
    rejected: list[Rejected] = field(default_factory=list)
    changed: set[SeriesKey] = field(default_factory=set)  # series kept as objects
    changed_codes: Any = field(default_factory=no_codes)  # summarised series (sorted codes)
    processed: Counter = field(default_factory=Counter)  # per source
    late: Counter = field(default_factory=Counter)
    dead_lettered: Counter = field(default_factory=Counter)
    duplicates: Counter = field(default_factory=Counter)  # re-sent events dropped (not archived again)
    first_day: float = math.inf  # the earliest local day of the raw events applied (figures aside)


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


_SUMMARISED = frozenset(
    {"sum", "avg", "min", "max", "on_time_rate"}
)  # count: a constant 1, expanded by numpy
_MEMO_MAX = 50_000
_NUMBERS = (int, float)  # JSON numbers (bool is its own class)
Feeds = tuple[
    int, tuple[tuple[int, str], ...], tuple[tuple[int, "Spec"], ...], tuple[tuple[int, "Spec"], ...]
]


class TypePlan:
    """The indicators of one event type, and which of them an event feeds: memoised on the values (and their
    types) of the fields the filters read, since the outcome depends on nothing else."""

    __slots__ = ("engine", "is_figure", "specs", "keys", "always", "buckets", "memo")

    def __init__(self, engine: Engine, is_figure: bool, specs: list[Spec]):
        self.engine = engine
        self.is_figure = is_figure
        self.specs = specs
        raw = [] if is_figure else specs
        self.keys = tuple(sorted({k for s in raw for k, _ in s.filter}))
        self.always, self.buckets = _plan(raw)
        self.memo: dict[Any, Feeds] = {}

    def lookup(self, data: dict[str, Any]) -> Feeds:
        """(count signature id or -1, (position, value field) of sum/avg/min/max, (position, spec) of the
        on-time rates and of the measures keeping their values)."""
        keys = self.keys
        if not keys:  # no filters: the same for every event
            return self.memo.get(None) or self.memo.setdefault(None, self._compute(data))
        if len(keys) == 1:
            v = data.get(keys[0])
            sig: Any = (v, v.__class__)
        else:
            vals = tuple(map(data.get, keys))
            sig = (vals, tuple(map(type, vals)))
        try:
            got = self.memo.get(sig)
        except TypeError:  # a list or object value: not memoised
            return self._compute(data)
        if got is None:
            if len(self.memo) >= _MEMO_MAX:
                self.memo.clear()
            got = self.memo[sig] = self._compute(data)
        return got

    def _compute(self, data: dict[str, Any]) -> Feeds:
        candidates = list(self.always)
        for key, bucket in self.buckets:
            got = data.get(key)
            if got is not None and not isinstance(got, list | dict):
                hit = bucket.get(got)
                if hit:
                    candidates.extend(hit)
        spec_pos = self.engine.spec_pos
        counts: list[int] = []
        numeric: list[tuple[int, str]] = []
        valued: list[tuple[int, Spec]] = []
        listed: list[tuple[int, Spec]] = []
        for spec in candidates:
            if spec.filter and not spec.matches(data):
                continue
            pos = spec_pos[id(spec)]
            if spec.measure == "count":
                counts.append(pos)
            elif spec.measure == "on_time_rate":
                valued.append((pos, spec))
            elif spec.measure in _SUMMARISED:
                numeric.append((pos, spec.value_field or ""))
            else:
                listed.append((pos, spec))
        sig = -1
        if counts:
            key = tuple(counts)
            sig = self.engine.sig_index.get(key, -1)
            if sig < 0:
                sig = self.engine.sig_index[key] = len(self.engine.sig_specs)
                self.engine.sig_specs.append(key)
        return sig, tuple(numeric), tuple(valued), tuple(listed)


class Engine:
    def __init__(self, model: Model, bounds: Boundaries, lateness: Lateness | None = None):
        self.model = model
        self.bounds = bounds
        self.lateness = lateness or Lateness()
        self.spec_of_index = {s.id: s for s in model.specs}
        self.spec_pos = {id(s): i for i, s in enumerate(model.specs)}
        self.type_plan: dict[str, TypePlan] = {}
        # Count indicators an event feeds, per filter outcome: id -> spec positions (few distinct tuples).
        self.sig_specs: list[tuple[int, ...]] = []
        self.sig_index: dict[tuple[int, ...], int] = {}
        # Tables for the columnar roll-up: subjects, units and levels as numbers.
        self.subjects = list(bounds.rollup)
        self.subject_index = {s: i for i, s in enumerate(self.subjects)}
        self.units: list[str] = []
        unit_index: dict[str, int] = {}
        levels: dict[str, int] = {}
        depth = max((len(r) for r in bounds.rollup.values()), default=1)
        self.roll_unit = np.full((len(self.subjects), depth), -1, np.int64)
        self.roll_level = np.zeros((len(self.subjects), depth), np.int64)
        for i, subject in enumerate(self.subjects):
            for d, (level, unit) in enumerate(bounds.rollup[subject]):
                if unit not in unit_index:
                    unit_index[unit] = len(self.units)
                    self.units.append(unit)
                self.roll_unit[i, d] = unit_index[unit]
                self.roll_level[i, d] = levels.setdefault(level, len(levels))
        specs = model.specs
        self.spec_level = np.zeros((len(specs), max(len(levels), 1)), bool)
        self.spec_cadence = np.zeros((len(specs), len(CADENCES)), bool)
        for i, s in enumerate(specs):
            for level, li in levels.items():
                self.spec_level[i, li] = level in s.scopes
            for c in s.cadences:
                self.spec_cadence[i, c] = True
        self.spec_extreme = np.array([s.measure in ("min", "max") for s in specs] or [False])
        # new states of the summarised measures (no quantile level or figure measure to set)
        self.factories = [KINDS[state_kind(s)] for s in specs]
        self.period_index: dict[str, int] = {}
        self.period_labels: list[str] = []
        # Series codes (columns.py): indicators (specs, then ratios) and units by number.
        self.indicator_ids = list(dict.fromkeys([s.id for s in specs] + [r.id for r in model.ratios]))
        self.indicator_index = {i: n for n, i in enumerate(self.indicator_ids)}
        self.spec_indicator = np.array([self.indicator_index[s.id] for s in specs] or [0], np.int64)
        self.unit_index = unit_index
        kinds, scales = [], []
        for i in self.indicator_ids:
            got = model.by_id[i]
            if isinstance(got, Ratio):
                kinds.append(RATIO)
            else:
                kinds.append(OBJECT if got.reported else SUMMARISED.get(got.measure, OBJECT))
            scales.append(got.scale if not isinstance(got, Ratio) and got.measure == "on_time_rate" else 1.0)
        self.indicator_kind = np.array(kinds, np.int8)
        self.indicator_scale = np.array(scales, np.float64)
        self.indicator_names = np.array(self.indicator_ids + [""], object)[:-1]
        self.indicator_fields = np.array(
            [model.fields.get(i, "") for i in self.indicator_ids] + [""], object
        )[:-1]
        # Ratios by number: numerator and denominator numbers (-1: not a ratio, or unknown), scale; and the
        # ratios computed from each indicator: (ratio number, cadence mask, scopes).
        size = len(self.indicator_ids)
        self.ratio_numerator = np.full(size, -1, np.int64)
        self.ratio_denominator = np.full(size, -1, np.int64)
        self.ratio_scale = np.ones(size)
        self.ratios_of: dict[int, list[tuple[int, Any, frozenset[str]]]] = {}
        index = self.indicator_index
        for r in model.ratios:
            i = index[r.id]
            self.ratio_numerator[i] = index.get(r.numerator, -1)
            self.ratio_denominator[i] = index.get(r.denominator, -1)
            self.ratio_scale[i] = r.scale
        for part_id, ratios in model.ratios_of.items():
            if part_id in index:
                for r in ratios:
                    mask = np.zeros(8, bool)
                    mask[list(r.cadences)] = True
                    self.ratios_of.setdefault(index[part_id], []).append((index[r.id], mask, r.scopes))
        self._period_arrays: tuple[Any, ...] = ()
        self._unit_arrays: tuple[Any, ...] = ()

    # -- series codes (columns.py) ----------------------------------------------------------------------------
    def period_id(self, label: str) -> int:
        got = self.period_index.get(label)
        if got is None:
            got = self.period_index[label] = len(self.period_labels)
            if got >= MAX_PERIODS:
                raise OverflowError("more than 2^24 period labels")
            self.period_labels.append(label)
        return got

    def unit_id(self, unit: str) -> int:
        got = self.unit_index.get(unit)
        if got is None:
            got = self.unit_index[unit] = len(self.units)
            if got >= MAX_UNITS:
                raise OverflowError("more than 2^16 units")
            self.units.append(unit)
        return got

    def is_summarised(self, indicator_id: str) -> bool:
        i = self.indicator_index.get(indicator_id)
        return i is not None and OBJECT < self.indicator_kind[i] < RATIO

    def code_of(self, key: SeriesKey) -> int:
        indicator, cadence, unit, period = key
        ind = self.indicator_index[indicator]
        return (
            (ind << IND_SHIFT)
            | (self.unit_id(unit) << UNIT_SHIFT)
            | (cadence << CADENCE_SHIFT)
            | self.period_id(period)
        )

    def codes_of(self, keys: Iterable[SeriesKey]) -> Any:
        """Series keys -> sorted unique codes."""
        return unique_codes(np.fromiter(map(self.code_of, keys), np.int64))

    def keys_of(self, codes: Any) -> list[SeriesKey]:
        ind, unit, cadence, period = split_codes(codes)
        ids, units, labels = self.indicator_ids, self.units, self.period_labels
        return [
            (ids[i], c, units[u], labels[p])
            for i, c, u, p in zip(ind.tolist(), cadence.tolist(), unit.tolist(), period.tolist(), strict=True)
        ]

    def period_arrays(self) -> tuple[Any, Any, Any]:
        """(labels, first days, last day numbers) of the periods by number, as numpy arrays (object, object,
        int64); rebuilt when periods were added."""
        n = len(self.period_labels)
        if not self._period_arrays or len(self._period_arrays[0]) != n:
            labels = np.array(self.period_labels + [""], object)[:n]
            self._period_arrays = (
                labels,
                np.array([period_start(x) for x in self.period_labels] + [None], object)[:n],
                np.fromiter((period_last_day(x) for x in self.period_labels), np.int64, n),
            )
        return self._period_arrays  # type: ignore[return-value]

    def unit_arrays(self) -> tuple[Any, Any]:
        """(codes, levels) of the units by number, as numpy object arrays."""
        n = len(self.units)
        if not self._unit_arrays or len(self._unit_arrays[0]) != n:
            levels = self.bounds.levels
            self._unit_arrays = (
                np.array(self.units + [""], object)[:n],
                np.array([levels.get(u, "") for u in self.units] + [""], object)[:n],
            )
        return self._unit_arrays  # type: ignore[return-value]

    def series_of(self, part: PartitionState) -> dict[SeriesKey, State]:
        """Every state of a partition as a state object (for inspection and tests; the hot path keeps the
        summarised ones as columns)."""
        out = dict(part.series)
        t = part.summaries
        c = t.cols
        for key, n, total, low, high in zip(
            self.keys_of(t.codes),
            c["n"].tolist(),
            c["total"].tolist(),
            c["low"].tolist(),
            c["high"].tolist(),
            strict=True,
        ):
            st = self.make_state(key[0])
            st.add_summary(n, total, low, high)
            out[key] = st
        return out

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
        self, part: PartitionState, records: Iterable[tuple[int, Iterable[tuple[int, CloudEvent]]]]
    ) -> Applied:
        """Apply records (offset, [(position, event), ...]) in offset order (each record's pairs are read once);
        records below the partition's next_offset are already in the state and are skipped whole.

        Columnar: the per-event loop only checks each event (unit, lateness, re-sends) and notes which
        indicators it feeds (memoised per event type on the values of the fields their filters read) and the
        numbers it contributes; numpy then sums, counts and takes min/max per (indicator, unit, cadence,
        period) for the whole batch, and each changed series' state is updated once."""
        out = Applied()
        list_groups: dict[tuple[int, int, int], list[Any]] = {}  # distinct_count, quantile: the values kept
        figures: dict[SeriesKey, list[tuple[str, int, str, float]]] = {}
        late_events, late_figures = self.lateness.events_s, self.lateness.figures_s
        subject_index = self.subject_index
        type_plan = self.type_plan
        seen = part.seen
        ev_subject: list[int] = []
        ev_day: list[int] = []
        ev_sig: list[int] = []
        val_spec: list[int] = []
        val_event: list[int] = []
        val_value: list[float] = []
        accepted = out.accepted
        accepted_offsets = out.accepted_offsets
        accepted_times = out.accepted_times
        sources: list[str] = []  # of the events processed, counted at the end
        watermark = part.watermark  # kept in a local, stored back after the loop
        watermark_day = local_day(watermark)
        for offset, items in records:
            if offset < part.next_offset:
                continue
            for position, ev in items:
                si = subject_index.get(ev.subject)
                if si is None:
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
                plan = type_plan.get(ev.type)
                if plan is None:
                    plan = self._type_plan(ev.type)
                is_figure = plan.is_figure
                limit = late_figures if is_figure else late_events
                if t < watermark - limit:
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
                day = int((t + TZ_OFFSET_S) // 86400)
                if not is_figure:  # figures are idempotent by (time, id) in their state already
                    of_day = seen.get(day)
                    if of_day is None:
                        of_day = seen[day] = {}
                    ids = of_day.get(ev.source)
                    if ids is None:
                        ids = of_day[ev.source] = set()
                    if ev.id in ids:
                        out.duplicates[ev.source] += 1
                        continue
                    ids.add(ev.id)
                if t > watermark:
                    watermark = t
                    watermark_day = day
                elif day < watermark_day:
                    out.late[ev.source] += 1
                sources.append(ev.source)
                accepted.append(ev)
                accepted_offsets.append(offset)
                accepted_times.append(t)
                if not plan.specs:
                    continue
                data = ev.data
                if is_figure:
                    self._figure(ev, self.bounds.rollup[ev.subject], plan.specs, figures)
                    continue
                sig, numeric, valued, listed = plan.lookup(data)
                if sig >= 0 or numeric or valued:
                    i = len(ev_sig)
                    ev_subject.append(si)
                    ev_day.append(day)
                    ev_sig.append(sig)
                    for pos, name in numeric:
                        v = data.get(name)
                        if v.__class__ in _NUMBERS:  # as event_value: numbers only, not booleans
                            val_spec.append(pos)
                            val_event.append(i)
                            val_value.append(v)
                    for pos, spec in valued:
                        v = event_value(spec, data)
                        if v is not None:
                            val_spec.append(pos)
                            val_event.append(i)
                            val_value.append(v)
                for pos, spec in listed:
                    v = event_value(spec, data)
                    if v is None:
                        continue
                    gk = (pos, si, day)
                    g = list_groups.get(gk)
                    if g is None:
                        list_groups[gk] = [v]
                    else:
                        g.append(v)
            part.next_offset = offset + 1
        part.watermark = watermark
        out.processed.update(sources)
        horizon = local_day(part.watermark - late_events) - 1  # older events are too late anyway
        for d in [d for d in seen if d < horizon]:
            del seen[d]
        if ev_day:
            out.first_day = min(ev_day)
        if list_groups:
            out.first_day = min(out.first_day, min(day for _, _, day in list_groups))
        if ev_sig:
            out.changed_codes = self._aggregate(
                part, ev_subject, ev_day, ev_sig, val_spec, val_event, val_value
            )
        series = part.series
        changed = out.changed
        specs = self.model.specs
        subjects = self.subjects
        units_of = self.bounds.rollup
        for (si, subj, day), values in list_groups.items():
            spec = specs[si]
            labels = period_labels(day)
            for level, unit in units_of[subjects[subj]]:
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

    def _aggregate(
        self,
        part: PartitionState,
        ev_subject: list[int],
        ev_day: list[int],
        ev_sig: list[int],
        val_spec: list[int],
        val_event: list[int],
        val_value: list[float],
    ) -> Any:
        """The batch's numbers -> (count, sum, min, max) per changed series, added to the partition's summaries.
        Returns the codes of the series changed (sorted)."""
        n_events = len(ev_sig)
        subj = np.fromiter(ev_subject, np.int64, n_events)
        days, day_of = np.unique(np.fromiter(ev_day, np.int64, n_events), return_inverse=True)
        sig = np.fromiter(ev_sig, np.int64, n_events)
        # Count indicators: each event feeds those of its signature (expanded with numpy).
        sigs, sig_of = np.unique(sig, return_inverse=True)
        sig_specs = self.sig_specs
        lists = [sig_specs[s] if s >= 0 else () for s in sigs.tolist()]
        lens = np.fromiter((len(x) for x in lists), np.int64, len(lists))
        flat = np.fromiter((p for x in lists for p in x), np.int64, int(lens.sum()))
        per_event = lens[sig_of]
        total = int(per_event.sum())
        first = np.cumsum(per_event) - per_event
        within = np.arange(total, dtype=np.int64) - np.repeat(first, per_event)
        c_spec = flat[np.repeat((np.cumsum(lens) - lens)[sig_of], per_event) + within]
        c_event = np.repeat(np.arange(n_events, dtype=np.int64), per_event)
        n_vals = len(val_spec)
        spec = np.concatenate([c_spec, np.fromiter(val_spec, np.int64, n_vals)])
        event = np.concatenate([c_event, np.fromiter(val_event, np.int64, n_vals)])
        value = np.concatenate([np.ones(total), np.fromiter(val_value, np.float64, n_vals)])
        if not len(spec):
            return no_codes()
        # Stage 1: per (indicator, subject, day).
        n_subj, n_days = len(self.subjects), len(days)
        k1 = (spec * n_subj + subj[event]) * n_days + day_of[event]
        groups, inv = np.unique(k1, return_inverse=True)
        n_groups = len(groups)
        g_n = np.bincount(inv, minlength=n_groups).astype(np.float64)
        g_sum = np.bincount(inv, weights=value, minlength=n_groups)
        g_spec = groups // (n_subj * n_days)
        g_subj = (groups // n_days) % n_subj
        g_day = groups % n_days
        extreme = self.spec_extreme[spec]
        has_extreme = bool(extreme.any())
        if has_extreme:
            g_low = np.full(n_groups, np.inf)
            g_high = np.full(n_groups, -np.inf)
            np.minimum.at(g_low, inv[extreme], value[extreme])
            np.maximum.at(g_high, inv[extreme], value[extreme])
        # Stage 2: fan out to every unit the subject rolls up to and every cadence, per period: series codes.
        period_of = self._period_ids(days.tolist())[g_day]  # (groups, cadences)
        g_ind = self.spec_indicator[g_spec]  # the specs of one indicator (one per event type) feed its series
        codes: list[Any] = []
        picks: list[Any] = []
        for depth in range(self.roll_unit.shape[1]):
            unit = self.roll_unit[g_subj, depth]
            ok_level = (unit >= 0) & self.spec_level[g_spec, self.roll_level[g_subj, depth]]
            for c in range(len(CADENCES)):
                idx = np.nonzero(ok_level & self.spec_cadence[g_spec, c])[0]
                if len(idx):
                    codes.append(series_codes(g_ind[idx], unit[idx], c, period_of[idx, c]))
                    picks.append(idx)
        if not codes:
            return no_codes()
        pick = np.concatenate(picks)
        series, inv2 = np.unique(np.concatenate(codes), return_inverse=True)
        n_series = len(series)
        s_n = np.bincount(inv2, weights=g_n[pick], minlength=n_series).astype(np.int64)
        s_sum = np.bincount(inv2, weights=g_sum[pick], minlength=n_series)
        s_low = np.full(n_series, np.inf)
        s_high = np.full(n_series, -np.inf)
        if has_extreme:
            np.minimum.at(s_low, inv2, g_low[pick])
            np.maximum.at(s_high, inv2, g_high[pick])
        part.summaries.add(series, s_n, s_sum, s_low, s_high)
        return series

    def _period_ids(self, days: list[int]) -> Any:
        """(len(days), cadences) ids of the periods containing each local day (ids index period_labels)."""
        out = np.empty((len(days), len(CADENCES)), np.int64)
        period_id = self.period_id
        for i, day in enumerate(days):
            for c, label in enumerate(period_labels(day)):
                out[i, c] = period_id(label)
        return out

    def _type_plan(self, event_type: str) -> TypePlan:
        specs = self.model.by_type.get(event_type, [])
        plan = TypePlan(self, event_type.endswith(".figure.reported"), specs)
        self.type_plan[event_type] = plan
        return plan

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
