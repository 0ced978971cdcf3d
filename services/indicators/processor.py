"""One flush of the indicators worker: Kafka records of ioc.events -> archive, dead letters, partition states,
values and updates. Independent of Faust so that the worker, the benchmark and the tests drive the same code.

Order of writes in a flush (a crash between any two steps loses nothing and doubles nothing):
  1. events_archive and dead_letters (keyed rows: a rewrite changes nothing), then the dead-letter topic;
  2. per partition, one INSERT of the changed series' states plus the checkpoint (atomic);
  3. the values of the changed series, merged over all partitions (read from ClickHouse for the partitions
     another worker owns), and their updates on ioc.indicators;
  4. the caller acknowledges the records (Faust commits the offsets).
The INSERTs of steps 1-3 run in that order in a child process (ioccore.clickhouse.OrderedInserts) while
the flush goes on computing; nothing after a failed one is written, and step 4 waits for all of them.
On restart a partition is restored from its checkpoint, records below it are skipped, and the values of
the series of the last checkpointed flush are recomputed (step 3 may not have happened).
"""

from __future__ import annotations

import datetime as dt
import functools
import gc
import math
import time
import zlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain
from typing import Any

import msgspec
import numpy as np

from ioccore.archive import Batch, RecordRef, add_archived_many, add_dead_letter, write_batch
from ioccore.clickhouse import ClickHouse, OrderedInserts
from ioccore.contracts import CloudEvent, Contracts, Rejection
from ioccore.logging import get_logger
from ioccore.topics import EVENTS
from services.indicators import store
from services.indicators.columns import (
    CADENCE_SHIFT,
    IND_SHIFT,
    MAX_UNITS,
    OBJECT,
    RATIO,
    REST_MASK,
    UNIT_SHIFT,
    Summaries,
    Table,
    no_codes,
    split_codes,
    summary_values,
    unique_codes,
)
from services.indicators.engine import (
    Engine,
    PartitionState,
    SeriesKey,
    series_value,
)
from services.indicators.model import (
    CADENCES,
    EPOCH,
    Model,
    Ratio,
    Spec,
    local_day,
    period_last_day,
)
from services.indicators.state import State, merged

log = get_logger("services.indicators")
_enc = msgspec.json.Encoder()


@dataclass
class Flush:
    records: int = 0
    events: int = 0
    archived: int = 0
    dead_lettered: int = 0
    late: int = 0
    duplicates: int = 0
    series: int = 0
    values: int = 0
    dead_records: list[tuple[bytes | None, bytes, str]] = field(default_factory=list)
    updates: dict[str, list[bytes]] = field(default_factory=dict)  # unit -> records of updates (JSON arrays)
    # seconds spent per phase (decode, engine, archive_rows, state_rows, values, evict, wait_clickhouse)
    phases: dict[str, float] = field(default_factory=dict)
    written: Any = None  # OrderedInserts mark of the flush's last write (set by commit)
    through: dict[str, int] = field(default_factory=dict)  # partition -> next offset, once all is written

    def timed(self, phase: str, since: float) -> float:
        """Add the time since `since` to `phase`; returns now (for the next phase)."""
        now = time.perf_counter()
        self.phases[phase] = self.phases.get(phase, 0.0) + now - since
        return now


ValueKey = tuple[str, int, str, str]
Changed = tuple[set[SeriesKey], Any]  # series kept as objects, codes of the summarised ones (sorted)


def without_cycle_collector(fn: Any) -> Any:
    """Run a flush step with the cycle collector paused. A flush allocates millions of small objects while a
    worker holds millions of live ones (its series states): each collection of the oldest generation walks
    them all, which cost a third of a large flush. Nothing a flush creates is cyclic garbage; the worker
    collects between flushes (see worker.py)."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        if not gc.isenabled():
            return fn(*args, **kwargs)
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            gc.enable()

    return run


# Indicator updates on ioc.indicators: CloudEvents (contracts/events/indicators/values.updated.schema.json).
UPDATE_TYPE = "vn.binhduong.indicators.values.updated"
UPDATE_SOURCE = "urn:ioc:indicators"
PROVINCE_TZ = dt.timezone(dt.timedelta(hours=7))


class Processor:
    def __init__(
        self,
        ch: ClickHouse,
        contracts: Contracts,
        engine: Engine,
        version_set: str,
        partitions: int,
        topic: str,
    ):
        self.ch = ch
        self.contracts = contracts
        self.engine = engine
        self.model = engine.model
        self.version_set = version_set
        self.partitions = partitions
        self.topic = topic
        self.parts: dict[int, PartitionState] = {}
        self.written: dict[int, dict[SeriesKey, int]] = {}
        self.counters: dict[int, dict[str, list[int]]] = {}
        # Partitions other workers own, as read back from ClickHouse: series kept as objects (with the offset
        # they were written at), and the summarised ones.
        self.foreign: dict[int, tuple[dict[SeriesKey, tuple[int, State]], Summaries]] = {}
        self.foreign_at: dict[int, int] = {}
        self.foreign_watermark: dict[int, float] = {}
        self.evictable = evictable_indicators(self.model)
        self.evicted_before = 0  # local day: series of raw-event periods ending before it are out of memory
        # A lower bound of the last day of every evictable series in memory: below it, evict has nothing to do.
        self.lowest_last_day = math.inf
        self.emitted = Table(version=np.int64, value=np.float64)  # last value written, by series code
        self.pending_values = no_codes()  # restored: recompute their values at the next flush
        self.levels = engine.bounds.levels
        # The flush's INSERTs, in order, by a child process: the driver and the server work while this computes.
        self.inserts = OrderedInserts(ch)
        self._fragments_cache: _Fragments | None = None

    # -- partitions ---------------------------------------------------------------------------------------
    def own(self, partition: int) -> PartitionState:
        part = self.parts.get(partition)
        if part is None:
            part, written, counters = store.load_partition(self.ch, self.version_set, partition, self.engine)
            part.seen = store.seen_events(
                self.ch, EVENTS, partition, part.next_offset, part.watermark - self.engine.lateness.events_s
            )
            self.parts[partition] = part
            if part.series or len(part.summaries):
                self.lowest_last_day = -math.inf  # restored states: any period
            self.written[partition] = written
            self.counters[partition] = {k: v + [0] * (4 - len(v)) for k, v in counters.items()}
            self.foreign.pop(partition, None)
            self.foreign_at.pop(partition, None)
            self.foreign_watermark.pop(partition, None)
            last = [k for k, at in written.items() if at == part.next_offset]
            t = part.summaries
            self.pending_values = unique_codes(
                self.pending_values, self.engine.codes_of(last), t.codes[t.cols["at"] == part.next_offset]
            )
            log.info(
                "indicators.partition_restored",
                partition=partition,
                next_offset=part.next_offset,
                series=len(part.series) + len(part.summaries),
            )
        return part

    def release(self, partitions: Iterable[int]) -> None:
        """Forget partitions this worker no longer owns (their next owner restores them from ClickHouse)."""
        for p in partitions:
            if self.parts.pop(p, None) is not None:
                self.written.pop(p, None)
                self.counters.pop(p, None)
                log.info("indicators.partition_released", partition=p)

    # -- one flush ----------------------------------------------------------------------------------------
    @without_cycle_collector
    def ingest(
        self, records: list[RecordRef], now: dt.datetime | None = None, *, consume: bool = False
    ) -> tuple[Flush, dict[int, Changed]]:
        """Steps 1a: decode, apply to partition states, build archive and dead-letter rows, write them. With
        consume=True each record's value is dropped once decoded (the caller gives the records up): a flush's
        bytes are freed as it goes, not at its end."""
        now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
        flush = Flush(records=len(records))
        t = time.perf_counter()
        batch = Batch()
        by_partition: dict[int, list[RecordRef]] = defaultdict(list)
        for rec in records:
            part = self.own(rec.partition)
            if rec.offset < part.next_offset:
                continue  # already in the checkpointed state (and archived before it)
            by_partition[rec.partition].append(rec)
        changed: dict[int, Changed] = {}
        accepted = rejected = 0
        dead_records: list[tuple[bytes | None, bytes, str]] = []
        # Partition by partition, decoded just before it is applied: one partition's events in memory at a time.
        for p, part_records in by_partition.items():
            recs: list[tuple[RecordRef, Iterable[tuple[int, CloudEvent]]]] = []
            for rec in part_records:
                value = rec.value
                if consume:
                    rec.value = b""
                events = self.contracts.valid_events(value)
                if events is not None:  # the usual case: the engine's (position, event) pairs made in C
                    recs.append((rec, enumerate(events)))
                    continue
                good: list[tuple[int, CloudEvent]] = []
                for position, item in enumerate(self.contracts.decode(value)):
                    if isinstance(item, CloudEvent):
                        good.append((position, item))
                    else:
                        add_dead_letter(batch, rec, item, now)
                        c = self._counter(rec.partition, item.source)
                        c[1] += 1
                recs.append((rec, good))
            t = flush.timed("decode", t)
            part = self.parts[p]
            refs = {rec.offset: rec for rec, _ in recs}
            applied = self.engine.apply(part, [(rec.offset, good) for rec, good in recs])
            t = flush.timed("engine", t)
            rows = Batch()
            add_archived_many(
                rows,
                part_records[0].topic,
                p,
                applied.accepted_offsets,
                applied.accepted,
                now,
                applied.accepted_times,
            )
            for rej in applied.rejected:
                ev = rej.event
                add_dead_letter(
                    rows,
                    refs[rej.offset],
                    Rejection(rej.position, rej.reason, _enc.encode(ev), ev.source, ev.type),
                    now,
                )
            # Written per partition: the inserts start on these rows while the next partition is computed.
            write_batch(self.inserts, rows)
            accepted += rows.accepted
            rejected += rows.rejected
            dead_records += rows.dead_records
            for source, n in applied.processed.items():
                self._counter(p, source)[0] += n
            for source, n in applied.dead_lettered.items():
                self._counter(p, source)[1] += n
            for source, n in applied.late.items():
                self._counter(p, source)[2] += n
            for source, n in applied.duplicates.items():
                self._counter(p, source)[3] += n
            self.lowest_last_day = min(self.lowest_last_day, applied.first_day)
            flush.late += sum(applied.late.values())
            flush.duplicates += sum(applied.duplicates.values())
            changed[p] = (applied.changed, applied.changed_codes)
            del recs, applied, rows  # this partition's events, before the next one's are decoded
            t = flush.timed("archive_rows", t)
        write_batch(self.inserts, batch)  # what did not decode into events at all
        flush.events = accepted + rejected + batch.rejected + flush.duplicates
        flush.archived = accepted
        flush.dead_lettered = rejected + batch.rejected
        flush.dead_records = batch.dead_records + dead_records
        if flush.dead_records:
            self.inserts.wait()  # the dead-letter table before the topic
        flush.timed("archive_rows", t)
        return flush, changed

    @without_cycle_collector
    def commit(self, flush: Flush, changed: dict[int, Changed], *, settle: bool = True) -> Flush:
        """Steps 2 and 3: checkpoint the partitions, then write the values of what changed. The values are
        computed while the archive and checkpoint rows are being written; the writes land in order. With
        settle=False the caller must call `settle()` before it acknowledges the records."""
        t = time.perf_counter()
        all_changed = [self.pending_values]
        for p, (keys, codes) in changed.items():
            part = self.parts[p]
            store.write_partition(
                self.inserts, self.version_set, part, keys, codes, self.counters.get(p, {}), self.engine
            )
            self.written[p].update(dict.fromkeys(keys, part.next_offset))
            t_ = part.summaries
            t_.cols["at"][np.searchsorted(t_.codes, codes)] = part.next_offset
            all_changed += [codes, self.engine.codes_of(keys)]
            flush.series += len(keys) + len(codes)
        self.pending_values = no_codes()
        targets = unique_codes(*all_changed)
        t = flush.timed("state_rows", t)
        if len(targets):
            if len(self.parts) < self.partitions:
                # Others own partitions: this worker's states must be in ClickHouse before it reads theirs, so
                # that of two workers flushing at once at least one sees the other's (the values converge).
                self.inserts.wait()
            self._refresh_foreign()
            columns, updates = self.values(targets)
            store.write_values(self.inserts, columns)
            flush.values = len(columns["value"])
            flush.updates = updates
        t = flush.timed("values", t)
        self.evict()
        flush.timed("evict", t)
        flush.written = self.inserts.mark()
        if settle:
            self.settle(flush)
        return flush

    def close(self) -> None:
        """Stop the background writer (after the last flush settled)."""
        self.inserts.close()

    def settle(self, flush: Flush | None = None) -> None:
        """Wait until every write of the flush (of every flush, without one) is in ClickHouse (raises if one
        failed for good). Safe while another thread ingests the next flush."""
        t = time.perf_counter()
        self.inserts.wait(None if flush is None else flush.written)
        if flush is not None:
            flush.timed("wait_clickhouse", t)

    def evict(self) -> int:
        """Drop from memory the series no partition can change any more: raw-event periods that ended before
        the lateness window of the partition furthest behind (its events for them are too late, and so are
        everyone's). Their values stay in ClickHouse. Keeps memory bounded on a worker that runs for months.
        Returns the number of series dropped."""
        marks = [part.watermark for part in self.parts.values()]
        marks += [w for p, w in self.foreign_watermark.items() if p not in self.parts]
        if len(marks) < self.partitions or min(marks) <= 0:
            return 0  # a partition without events yet would still take any
        before = local_day(min(marks) - self.engine.lateness.events_s) - 1
        if before <= self.evicted_before:
            return 0
        self.evicted_before = before
        if before <= self.lowest_last_day:
            return 0  # every period in memory ends on or after `before`
        self.lowest_last_day = before  # what stays ends on or after it
        evictable = self.evictable
        last_day = period_last_day  # cached per label

        def frozen(keys: Iterable[SeriesKey | ValueKey]) -> list[Any]:
            return [k for k in keys if k[0] in evictable and last_day(k[3]) < before]

        evictable_ind = np.zeros(len(self.engine.indicator_ids) + 1, bool)
        for i in evictable:
            evictable_ind[self.engine.indicator_index[i]] = True
        period_last = self.engine.period_arrays()[2]

        def keep(table: Table) -> int:
            ind, _unit, _cadence, period = split_codes(table.codes)
            return table.keep(~(evictable_ind[ind] & (period_last[period] < before)))

        dropped = 0
        for p, part in self.parts.items():
            gone = frozen(part.series)
            written = self.written[p]
            for k in gone:
                del part.series[k]
                written.pop(k, None)
            dropped += len(gone) + keep(part.summaries)
        for cache, summaries in self.foreign.values():
            for k in frozen(cache):
                del cache[k]
            keep(summaries)
        keep(self.emitted)
        if dropped:
            log.info(
                "indicators.evicted", series=dropped, periods_before=str(EPOCH + dt.timedelta(days=before))
            )
        return dropped

    @without_cycle_collector
    def apply_archived(
        self, partition: int, records: list[tuple[int, list[tuple[int, CloudEvent]]]]
    ) -> Changed:
        """Apply events read back from the archive (already valid and archived): replay and catch-up."""
        part = self.own(partition)
        applied = self.engine.apply(part, records)
        self.lowest_last_day = min(self.lowest_last_day, applied.first_day)
        for source, n in applied.processed.items():
            self._counter(partition, source)[0] += n
        for source, n in applied.late.items():
            self._counter(partition, source)[2] += n
        for source, n in applied.duplicates.items():
            self._counter(partition, source)[3] += n
        return applied.changed, applied.changed_codes

    def process(self, records: list[RecordRef]) -> Flush:
        """Both steps, for callers that do not publish to Kafka in between (tests, replay)."""
        flush, changed = self.ingest(records)
        return self.commit(flush, changed)

    def _counter(self, partition: int, source: str) -> list[int]:
        c = self.counters.setdefault(partition, {})
        got = c.get(source)
        if got is None:
            got = c[source] = [0, 0, 0, 0]  # processed, dead-lettered, late, duplicates
        return got

    # -- values -------------------------------------------------------------------------------------------
    def _refresh_foreign(self) -> None:
        for p in range(self.partitions):
            if p in self.parts:
                continue
            since = self.foreign_at.get(p, 0)
            objects, summaries, checkpoint, watermark = store.read_partition_since(
                self.ch, self.version_set, p, since, self.engine
            )
            cache, known = self.foreign.setdefault(p, ({}, Summaries()))
            for key, at, st in objects:
                cache[key] = (at, st)
            c = summaries.cols
            known.put(summaries.codes, **c)
            if objects or len(summaries):
                self.lowest_last_day = -math.inf
            self.foreign_at[p] = checkpoint
            if watermark is not None:
                self.foreign_watermark[p] = watermark

    def values(self, changed: Any) -> tuple[dict[str, list[Any]], dict[str, list[bytes]]]:
        """Value columns (store.VALUE_COLUMNS) and update records per unit of the changed series (codes, sorted:
        merged over the partitions) and of the ratios on top. Columnar: the summarised series are merged and
        valued as arrays; only the series kept as objects are visited one by one."""
        engine = self.engine
        codes = self._with_ratios(changed)
        value, n, version = self._evaluate(codes)
        ok = np.isfinite(value)
        codes, value, n, version = codes[ok], value[ok], n[ok], version[ok]
        # What was written already: skip a value that did not change or is older than the one written.
        em = self.emitted
        idx, hit = em.find(codes)
        at = np.minimum(idx, max(len(em) - 1, 0))
        prev_version = np.where(hit, em.cols["version"][at] if len(em) else 0, -1)
        prev_value = np.where(hit, em.cols["value"][at] if len(em) else 0.0, np.nan)
        keep = ~(hit & ((prev_version > version) | ((prev_version == version) & (prev_value == value))))
        codes, value, n, version = codes[keep], value[keep], n[keep], version[keep]
        send = ~hit[keep] | (prev_value[keep] != value)
        em.put(codes, version=version, value=value)
        now = int(time.time())
        ind, unit, cadence, period = split_codes(codes)
        labels, starts, _ = engine.period_arrays()
        units, levels = engine.unit_arrays()
        rows = len(codes)
        columns: dict[str, list[Any]] = {
            "version_set": [self.version_set] * rows,
            "indicator": engine.indicator_names[ind].tolist(),
            "field": engine.indicator_fields[ind].tolist(),
            "cadence": _CADENCES[cadence].tolist(),
            "level": levels[unit].tolist(),
            "unit": units[unit].tolist(),
            "period": labels[period].tolist(),
            "period_start": starts[period].tolist(),
            "value": value.tolist(),
            "n": n.tolist(),
            "version": version.tolist(),
            "updated_at": [now] * rows,
        }
        return columns, self._updates(
            now, ind[send], unit[send], cadence[send], period[send], value[send], n[send], version[send]
        )

    def _with_ratios(self, codes: Any) -> Any:
        """The changed series and the ratios computed from them (sorted codes)."""
        out = codes
        frontier = codes
        ratios_of = self.engine.ratios_of
        levels = self.engine.unit_arrays()[1]
        while len(frontier):
            found: list[Any] = []
            inds = unique_codes(frontier >> IND_SHIFT)
            bounds = np.searchsorted(frontier, np.stack([inds << IND_SHIFT, (inds + 1) << IND_SHIFT]))
            for i, lo, hi in zip(inds.tolist(), bounds[0].tolist(), bounds[1].tolist(), strict=True):
                ratios = ratios_of.get(i)
                if not ratios:
                    continue
                sel = frontier[lo:hi]
                cadence = (sel >> CADENCE_SHIFT) & 7
                unit = (sel >> UNIT_SHIFT) & (MAX_UNITS - 1)
                for r_ind, cadences, scopes in ratios:
                    ok = cadences[cadence] & np.isin(levels, list(scopes))[unit]
                    if ok.any():
                        found.append((sel[ok] & REST_MASK) | (r_ind << IND_SHIFT))
            if not found:
                break
            frontier = np.setdiff1d(unique_codes(*found), out, assume_unique=True)
            out = unique_codes(out, frontier)
        return out

    def _evaluate(self, codes: Any) -> tuple[Any, Any, Any]:
        """(value, n, version) of series by code (any order), merged over the partitions; NaN where a series
        has no value."""
        engine = self.engine
        ind = codes >> IND_SHIFT
        kind = engine.indicator_kind[ind]
        value = np.full(len(codes), np.nan)
        n = np.zeros(len(codes), np.int64)
        version = np.zeros(len(codes), np.int64)
        summarised = np.nonzero((kind > OBJECT) & (kind < RATIO))[0]
        if len(summarised):
            sel = codes[summarised]
            tables = [part.summaries for part in self.parts.values()]
            tables += [summaries for _, summaries in self.foreign.values()]
            sn = np.zeros(len(sel), np.int64)
            total = np.zeros(len(sel))
            low = np.full(len(sel), np.inf)
            high = np.full(len(sel), -np.inf)
            ver = np.zeros(len(sel), np.int64)
            for table in tables:
                idx, hit = table.find(sel)
                if not hit.any():
                    continue
                at = idx[hit]
                c = table.cols
                sn[hit] += c["n"][at]
                total[hit] += c["total"][at]
                low[hit] = np.minimum(low[hit], c["low"][at])
                high[hit] = np.maximum(high[hit], c["high"][at])
                ver[hit] += c["at"][at]
            si = ind[summarised]
            value[summarised] = summary_values(
                kind[summarised], sn, total, low, high, engine.indicator_scale[si]
            )
            n[summarised] = sn
            version[summarised] = ver
        objects = np.nonzero(kind == OBJECT)[0]
        if len(objects):
            for i, key in zip(objects.tolist(), engine.keys_of(codes[objects]), strict=True):
                v, n[i], version[i] = self._object_leaf(key)
                if v is not None:
                    value[i] = v
        ratios = np.nonzero(kind == RATIO)[0]
        if len(ratios):
            r = ind[ratios]
            rest = codes[ratios] & REST_MASK
            num, den, scale = engine.ratio_numerator[r], engine.ratio_denominator[r], engine.ratio_scale[r]
            known = (num >= 0) & (den >= 0)
            nv, nn, nver = self._evaluate((np.maximum(num, 0) << IND_SHIFT) | rest)
            dv, _dn, dver = self._evaluate((np.maximum(den, 0) << IND_SHIFT) | rest)
            with np.errstate(divide="ignore", invalid="ignore"):
                rv = np.where(known & (dv != 0), nv / dv * scale, np.nan)
            value[ratios] = rv
            n[ratios] = np.where(known, nn, 0)
            version[ratios] = np.where(known, nver + dver, 0)
        return value, n, version

    def _object_leaf(self, key: SeriesKey) -> tuple[float | None, int, int]:
        """(value, n, version) of a series kept as objects, merged over the partitions."""
        states: list[State] = []
        version = 0
        for p, part in self.parts.items():
            st = part.series.get(key)
            if st is not None:
                states.append(st)
                version += self.written[p].get(key, part.next_offset)
        for cache, _ in self.foreign.values():
            got = cache.get(key)
            if got is not None:
                version += got[0]
                states.append(got[1])
        if not states:
            return None, 0, 0
        st = states[0] if len(states) == 1 else merged(states)
        return series_value(self.engine.spec_of_index[key[0]], st), st.count(), version

    def _updates(
        self, now: int, ind: Any, unit: Any, cadence: Any, period: Any, value: Any, n: Any, version: Any
    ) -> dict[str, list[bytes]]:
        """The updates of ioc.indicators (CloudEvents, contracts/events/indicators/values.updated.schema.json):
        per unit, one record a CloudEvent of at most UPDATES_PER_RECORD compact rows. Formatted from the columns
        with fragments built once per indicator, unit and period (their strings JSON-escaped), one %-format per
        record (C-level). The id is derived from the content: a redelivered flush sends the same ids."""
        if not len(ind):
            return {}
        f = self._fragments()
        stamp = dt.datetime.fromtimestamp(now, PROVINCE_TZ).isoformat()
        row = '{"indicator":"%s","cadence":"%s",%s"value":%r,"n":%d,"version":%d}'
        full = ",".join([row] * UPDATES_PER_RECORD)
        head = (
            '{"specversion":"1.0","id":"%s|%d|%d|%08x","source":"'
            + UPDATE_SOURCE
            + '","type":"'
            + UPDATE_TYPE
            + '","time":"'
            + stamp
            + '","subject":"%s","datacontenttype":"application/json","data":{'
            + f.version_set.replace("%", "%%")
            + ',%s"values":['
        )
        order = np.argsort(unit, kind="stable")
        unit = unit[order]
        bounds = np.flatnonzero(np.diff(unit)) + 1
        top = version[order]
        # The %-arguments of every row, flat, built column by column (no Python step per row).
        flat = list(
            chain.from_iterable(
                zip(
                    f.names[ind[order]].tolist(),
                    _CADENCES[cadence[order]].tolist(),
                    f.period_data[period[order]].tolist(),
                    value[order].tolist(),
                    n[order].tolist(),
                    top.tolist(),
                    strict=True,
                )
            )
        )
        width = 6  # arguments a row
        engine_units = self.engine.units
        out: dict[str, list[bytes]] = {}
        for a, b, u in zip(
            [0, *bounds.tolist()],
            [*bounds.tolist(), len(unit)],
            unit[np.concatenate([[0], bounds])].tolist(),
            strict=True,
        ):
            records = out[engine_units[u]] = []
            for start in range(a, b, UPDATES_PER_RECORD):
                m = min(UPDATES_PER_RECORD, b - start)
                template = full if m == UPDATES_PER_RECORD else ",".join([row] * m)
                body = (template % tuple(flat[start * width : (start + m) * width])).encode()
                envelope = head % (
                    f.id_prefix[u],
                    int(top[start : start + m].max()),
                    m,
                    zlib.crc32(body),
                    f.units[u],
                    f.unit_data[u],
                )
                records.append(envelope.encode() + body + b"]}}")
        return out

    def _fragments(self) -> _Fragments:
        """JSON fragments of the updates, rebuilt when the engine numbered new units or periods."""
        engine = self.engine
        f = self._fragments_cache
        if (
            f is not None
            and len(f.units) == len(engine.units)
            and len(f.period_data) == len(engine.period_labels)
        ):
            return f
        esc = _json_text
        levels = engine.unit_arrays()[1].tolist()
        units = [esc(x) for x in engine.units]
        starts = engine.period_arrays()[1].tolist()
        version_set = esc(self.version_set)
        f = self._fragments_cache = _Fragments(
            names=_objects([esc(x) for x in engine.indicator_ids]),
            units=units,
            unit_data=[f'"level":"{esc(lv)}","unit":"{u}",' for u, lv in zip(units, levels, strict=True)],
            id_prefix=[f"{version_set}|{u}" for u in units],
            period_data=_objects(
                [
                    f'"period":"{esc(label)}","period_start":"{day.isoformat()}",'
                    for label, day in zip(engine.period_labels, starts, strict=True)
                ]
            ),
            version_set=f'"version_set":"{version_set}"',
        )
        return f


@dataclass(frozen=True)
class _Fragments:
    names: Any  # numpy object arrays, indexed by number
    period_data: Any
    units: list[str]
    unit_data: list[str]
    id_prefix: list[str]
    version_set: str


_CADENCES = np.array(CADENCES, object)


def _objects(items: list[str]) -> Any:
    out = np.empty(len(items), object)
    out[:] = items
    return out


@lru_cache(maxsize=65536)
def _json_text(s: str) -> str:
    """A string's JSON escaping, without the quotes."""
    return _enc.encode(s).decode()[1:-1]


UPDATES_PER_RECORD = 1000  # ~0.12 MB a record: well under the producer's 1 MB request limit


def evictable_indicators(model: Model) -> frozenset[str]:
    """Indicators (and ratios) computed from raw events only. Reported figures may be restated for a long time
    (figure lateness), so they, and the ratios that use one, stay in memory."""

    def leaves(indicator: str, depth: int = 0) -> set[str]:
        got = model.by_id.get(indicator)
        if isinstance(got, Ratio) and depth < 10:
            return leaves(got.numerator, depth + 1) | leaves(got.denominator, depth + 1)
        return {indicator}

    def raw_only(indicator: str) -> bool:
        return all(
            isinstance(model.by_id.get(x), Spec) and not model.by_id[x].reported for x in leaves(indicator)
        )

    mixed: set[str] = set()
    for r in model.ratios:
        if not raw_only(r.id):
            mixed |= leaves(r.id)
    ids = {s.id for s in model.specs} | {r.id for r in model.ratios}
    return frozenset(i for i in ids if raw_only(i) and i not in mixed)
