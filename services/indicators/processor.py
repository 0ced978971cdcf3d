"""One flush of the indicators worker: Kafka records of ioc.events -> archive, dead letters, partition states,
values and updates. Independent of Faust so that the worker, the benchmark and the tests drive the same code.

Order of writes in a flush (a crash between any two steps loses nothing and doubles nothing):
  1. events_archive and dead_letters (keyed rows: a rewrite changes nothing), then the dead-letter topic;
  2. per partition, one INSERT of the changed series' states plus the checkpoint (atomic);
  3. the values of the changed series, merged over all partitions (read from ClickHouse for the partitions
     another worker owns), and their updates on ioc.indicators;
  4. the caller acknowledges the records (Faust commits the offsets).
The INSERTs of steps 1-3 run in that order on a second connection (ioccore.clickhouse.OrderedInserts) while
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
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import msgspec

from ioccore.archive import Batch, RecordRef, add_archived_many, add_dead_letter, write_batch
from ioccore.clickhouse import ClickHouse, OrderedInserts
from ioccore.contracts import CloudEvent, Contracts, Rejection
from ioccore.logging import get_logger
from ioccore.topics import EVENTS
from services.indicators import store
from services.indicators.engine import (
    Engine,
    PartitionState,
    SeriesKey,
    ratio_value,
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
    period_start,
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
    updates: dict[str, list[Update]] = field(default_factory=dict)  # unit -> updates
    # seconds spent per phase (decode, engine, archive_rows, state_rows, values, evict, wait_clickhouse)
    phases: dict[str, float] = field(default_factory=dict)

    def timed(self, phase: str, since: float) -> float:
        """Add the time since `since` to `phase`; returns now (for the next phase)."""
        now = time.perf_counter()
        self.phases[phase] = self.phases.get(phase, 0.0) + now - since
        return now


ValueKey = tuple[str, int, str, str]


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


# Indicator updates on ioc.indicators: CloudEvents (contracts/events/indicators/value.updated.schema.json).
UPDATE_TYPE = "vn.binhduong.indicators.value.updated"
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
        self.foreign: dict[int, dict[SeriesKey, tuple[int, State]]] = {}
        self.foreign_at: dict[int, int] = {}
        self.foreign_watermark: dict[int, float] = {}
        self.evictable = evictable_indicators(self.model)
        self.evicted_before = 0  # local day: series of raw-event periods ending before it are out of memory
        # A lower bound of the last day of every evictable series in memory: below it, evict has nothing to do.
        self.lowest_last_day = math.inf
        self.emitted: dict[ValueKey, tuple[int, float]] = {}
        self.pending_values: set[SeriesKey] = set()  # restored: recompute their values at the next flush
        self.levels = engine.bounds.levels
        # The flush's INSERTs, in order, on a second connection: the server ingests while this computes.
        self.inserts = OrderedInserts(ch)

    # -- partitions ---------------------------------------------------------------------------------------
    def own(self, partition: int) -> PartitionState:
        part = self.parts.get(partition)
        if part is None:
            part, written, counters = store.load_partition(
                self.ch, self.version_set, partition, self.engine.restore
            )
            part.seen = store.seen_events(
                self.ch, EVENTS, partition, part.next_offset, part.watermark - self.engine.lateness.events_s
            )
            self.parts[partition] = part
            if part.series:
                self.lowest_last_day = -math.inf  # restored states: any period
            self.written[partition] = written
            self.counters[partition] = {k: v + [0] * (4 - len(v)) for k, v in counters.items()}
            self.foreign.pop(partition, None)
            self.foreign_at.pop(partition, None)
            self.foreign_watermark.pop(partition, None)
            last = {k for k, at in written.items() if at == part.next_offset}
            self.pending_values |= last
            log.info(
                "indicators.partition_restored",
                partition=partition,
                next_offset=part.next_offset,
                series=len(part.series),
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
    def ingest(self, records: list[RecordRef], now: dt.datetime | None = None) -> tuple[Flush, dict]:
        """Steps 1a: decode, apply to partition states, build archive and dead-letter rows, write them."""
        now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
        flush = Flush(records=len(records))
        t = time.perf_counter()
        batch = Batch()
        by_partition: dict[int, list[tuple[RecordRef, list[tuple[int, CloudEvent]]]]] = defaultdict(list)
        for rec in records:
            part = self.own(rec.partition)
            if rec.offset < part.next_offset:
                continue  # already in the checkpointed state (and archived before it)
            good: list[tuple[int, CloudEvent]] = []
            for position, item in enumerate(self.contracts.decode(rec.value)):
                if isinstance(item, CloudEvent):
                    good.append((position, item))
                else:
                    add_dead_letter(batch, rec, item, now)
                    c = self._counter(rec.partition, item.source)
                    c[1] += 1
            by_partition[rec.partition].append((rec, good))
        t = flush.timed("decode", t)
        changed: dict[int, set[SeriesKey]] = {}
        for p, recs in by_partition.items():
            part = self.parts[p]
            refs = {rec.offset: rec for rec, _ in recs}
            applied = self.engine.apply(part, [(rec.offset, good) for rec, good in recs])
            t = flush.timed("engine", t)
            add_archived_many(batch, [(refs[offset], ev) for offset, _position, ev in applied.accepted], now)
            for rej in applied.rejected:
                ev = rej.event
                add_dead_letter(
                    batch,
                    refs[rej.offset],
                    Rejection(rej.position, rej.reason, _enc.encode(ev), ev.source, ev.type),
                    now,
                )
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
            changed[p] = applied.changed
            t = flush.timed("archive_rows", t)
        flush.events = batch.accepted + batch.rejected + flush.duplicates
        flush.archived = batch.accepted
        flush.dead_lettered = batch.rejected
        flush.dead_records = batch.dead_records
        write_batch(self.inserts, batch)
        if batch.dead_records:
            self.inserts.wait()  # the dead-letter table before the topic
        flush.timed("archive_rows", t)
        return flush, changed

    @without_cycle_collector
    def commit(self, flush: Flush, changed: dict[int, set[SeriesKey]], *, settle: bool = True) -> Flush:
        """Steps 2 and 3: checkpoint the partitions, then write the values of what changed. The values are
        computed while the archive and checkpoint rows are being written; the writes land in order. With
        settle=False the caller must call `settle()` before it acknowledges the records."""
        t = time.perf_counter()
        all_changed: set[SeriesKey] = set(self.pending_values)
        for p, keys in changed.items():
            part = self.parts[p]
            store.write_partition(self.inserts, self.version_set, part, keys, self.counters.get(p, {}))
            self.written[p].update(dict.fromkeys(keys, part.next_offset))
            all_changed |= keys
            flush.series += len(keys)
        self.pending_values.clear()
        t = flush.timed("state_rows", t)
        if all_changed:
            if len(self.parts) < self.partitions:
                # Others own partitions: this worker's states must be in ClickHouse before it reads theirs, so
                # that of two workers flushing at once at least one sees the other's (the values converge).
                self.inserts.wait()
            self._refresh_foreign()
            rows, updates = self.values(all_changed)
            store.write_values(self.inserts, rows)
            flush.values = len(rows)
            flush.updates = updates
        t = flush.timed("values", t)
        self.evict()
        flush.timed("evict", t)
        if settle:
            self.settle(flush)
        return flush

    def close(self) -> None:
        """Stop the background writer (after the last flush settled)."""
        self.inserts.close()

    def settle(self, flush: Flush | None = None) -> None:
        """Wait until every write of the flush is in ClickHouse (raises if one failed for good)."""
        t = time.perf_counter()
        self.inserts.wait()
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

        dropped = 0
        for p, part in self.parts.items():
            gone = frozen(part.series)
            written = self.written[p]
            for k in gone:
                del part.series[k]
                written.pop(k, None)
            dropped += len(gone)
        for cache in self.foreign.values():
            for k in frozen(cache):
                del cache[k]
        for k in frozen(self.emitted):
            del self.emitted[k]
        if dropped:
            log.info(
                "indicators.evicted", series=dropped, periods_before=str(EPOCH + dt.timedelta(days=before))
            )
        return dropped

    @without_cycle_collector
    def apply_archived(self, partition: int, records: list[tuple[int, list[tuple[int, CloudEvent]]]]) -> set:
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
        return applied.changed

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
            rows, checkpoint, watermark = store.read_partition_since(
                self.ch, self.version_set, p, since, self.engine.restore
            )
            cache = self.foreign.setdefault(p, {})
            for key, at, st in rows:
                cache[key] = (at, st)
            if rows:
                self.lowest_last_day = -math.inf
            self.foreign_at[p] = checkpoint
            if watermark is not None:
                self.foreign_watermark[p] = watermark

    def values(self, changed: set[SeriesKey]) -> tuple[list[tuple[Any, ...]], dict[str, list[Update]]]:
        """Value rows and updates of the changed series (merged over the partitions) and of the ratios on top."""
        memo: dict[ValueKey, tuple[float | None, int, int]] = {}
        by_id = self.model.by_id
        stores = [(part.series, self.written[p], part.next_offset) for p, part in self.parts.items()]
        foreign = [cache for cache in self.foreign.values() if cache]
        none = (None, 0, 0)

        def leaf(key: ValueKey, spec: Spec) -> tuple[float | None, int, int]:
            states: list[State] = []
            version = 0
            for series, written, next_offset in stores:
                st = series.get(key)
                if st is not None:
                    states.append(st)
                    version += written.get(key, next_offset)
            for cache in foreign:
                got = cache.get(key)
                if got is not None:
                    version += got[0]
                    states.append(got[1])
            if not states:
                return none
            st = states[0] if len(states) == 1 else merged(states)
            return series_value(spec, st), st.count(), version

        def value_of(key: ValueKey) -> tuple[float | None, int, int]:
            got = memo.get(key)
            if got is not None:
                return got
            ind = by_id.get(key[0])
            if isinstance(ind, Spec):
                out = leaf(key, ind)
            elif isinstance(ind, Ratio):
                nv, nn, nver = value_of((ind.numerator, *key[1:]))
                dv, _dn, dver = value_of((ind.denominator, *key[1:]))
                out = (ratio_value(ind, nv, dv), nn, nver + dver)
            else:
                out = none
            memo[key] = out
            return out

        targets: set[ValueKey] = set(changed)
        frontier = set(changed)
        ratios_of = self.model.ratios_of
        levels = self.levels
        while frontier:
            nxt: set[ValueKey] = set()
            for key in frontier:
                for r in ratios_of.get(key[0], ()):
                    if key[1] in r.cadences and levels.get(key[2]) in r.scopes:
                        rk = (r.id, key[1], key[2], key[3])
                        if rk not in targets:
                            targets.add(rk)
                            nxt.add(rk)
            frontier = nxt
        rows: list[tuple[Any, ...]] = []
        updates: dict[str, list[Update]] = {}
        now = int(time.time())
        stamp = dt.datetime.fromtimestamp(now, PROVINCE_TZ).isoformat()
        fields = self.model.fields
        emitted = self.emitted
        version_set = self.version_set
        spec_of = self.engine.spec_of_index
        for key in targets:
            spec = spec_of.get(key[0])
            value, n, version = value_of(key) if spec is None else leaf(key, spec)
            if value is None:
                continue
            prev = emitted.get(key)
            if prev is not None and (prev[0] > version or (prev[0] == version and prev[1] == value)):
                continue
            emitted[key] = (version, value)
            indicator, c, unit, period = key
            level = levels.get(unit, "")
            cadence = CADENCES[c]
            field_ = fields.get(indicator, "")
            start = period_start(period)
            rows.append(
                (version_set, indicator, field_, cadence, level, unit, period, start, value, n, version, now)
            )
            if prev is None or prev[1] != value:
                got = updates.get(unit)
                if got is None:
                    got = updates[unit] = []
                got.append(
                    Update(
                        "1.0",
                        f"{indicator}|{cadence}|{unit}|{period}|{version}",
                        UPDATE_SOURCE,
                        UPDATE_TYPE,
                        stamp,
                        unit,
                        "application/json",
                        UpdateData(
                            indicator,
                            field_,
                            cadence,
                            level,
                            unit,
                            period,
                            _iso_date(start),
                            value,
                            n,
                            version,
                            version_set,
                        ),
                    )
                )
        # value_of refers to itself (recursion): a cycle, with the memo in it, that only a full collection frees,
        # and the worker freezes what a flush leaves (worker.py). Free the memo now; the cycle left is small.
        memo.clear()
        return rows, updates


@lru_cache(maxsize=65536)
def _iso_date(day: dt.date) -> str:
    return day.isoformat()


class UpdateData(msgspec.Struct, gc=False):  # gc=False: no cycles possible, half the cost to create
    indicator: str
    field: str
    cadence: str
    level: str
    unit: str
    period: str
    period_start: str
    value: float
    n: int
    version: int
    version_set: str


class Update(msgspec.Struct, gc=False):
    """An indicator update on ioc.indicators (contracts/events/indicators/value.updated.schema.json)."""

    specversion: str
    id: str
    source: str
    type: str
    time: str
    subject: str
    datacontenttype: str
    data: UpdateData


UPDATES_PER_RECORD = 1000  # ~0.4 MB: under the producer's 1 MB request limit


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


def flush_chunks(records: list[RecordRef], max_bytes: int) -> Iterable[list[RecordRef]]:
    """Consecutive runs of records of at most `max_bytes` of values together (a record bigger than that
    alone): one flush each, so that a backlog of large batch records does not hold millions of events in
    memory at once."""
    chunk: list[RecordRef] = []
    size = 0
    for rec in records:
        n = len(rec.value or b"")
        if chunk and size + n > max_bytes:
            yield chunk
            chunk, size = [], 0
        chunk.append(rec)
        size += n
    if chunk:
        yield chunk


def encode_updates(updates: list[Update]) -> list[bytes]:
    """The records of a unit's updates: CloudEvents batches (JSON arrays) of at most UPDATES_PER_RECORD."""
    return [
        _enc.encode(updates[i : i + UPDATES_PER_RECORD]) for i in range(0, len(updates), UPDATES_PER_RECORD)
    ]
