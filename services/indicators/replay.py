"""`ioc replay`: rebuild the indicator values from the raw archive into a new version set (after a catalog
change, or under another boundary set such as units@2025) while live processing goes on, then switch reads.

1. The new version set is registered as `building`.
2. Each partition's archived events, in offset order, up to the live version's checkpoint, go through the same
   engine and processor as live records, under the new boundaries and catalog; states, checkpoints and values
   land under the new version set. Because partitions and offsets are the live ones, the new checkpoints
   line up with Kafka.
3. The version becomes `active` (reads switch to it; the previous one is `retired`). A live worker notices
   within seconds, restores the new version's checkpoints and catches up the few records between them and
   its own position from the archive, then goes on live under the new version.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec

from ioccore.catalog import Catalog
from ioccore.clickhouse import ClickHouse
from ioccore.contracts import CloudEvent
from ioccore.topics import EVENTS
from services.indicators import store
from services.indicators.engine import Engine, Lateness
from services.indicators.model import Model, boundaries, compile_model
from services.indicators.processor import Flush, Processor

_dec = msgspec.json.Decoder()
CHUNK_RECORDS = 400


@dataclass
class ReplayResult:
    version_set: str
    boundary_set: str
    events: int
    values: int
    seconds: float

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def archived_records(
    ch: ClickHouse, partition: int, start: int, stop: int | None, chunk: int = 20_000
) -> Iterator[tuple[int, list[tuple[int, CloudEvent]]]]:
    """Archived events of a partition of ioc.events from offset `start` (to `stop`, exclusive), grouped back
    into their records, in offset order (inside a record: by time, then id)."""
    lo = start
    while True:
        hi = lo + chunk
        if stop is not None:
            hi = min(hi, stop)
            if lo >= hi:
                return
        rows = ch.execute(
            "SELECT offset, source, id, type, subject, time, time_ms, data FROM events_archive FINAL "
            "WHERE topic = %(topic)s AND partition = %(p)s AND offset >= %(lo)s AND offset < %(hi)s "
            "ORDER BY offset, time, time_ms, id",
            {"topic": EVENTS, "p": partition, "lo": lo, "hi": hi},
        )
        if not rows and stop is None:
            more = ch.execute(
                "SELECT count() FROM events_archive WHERE topic = %(topic)s AND partition = %(p)s "
                "AND offset >= %(hi)s",
                {"topic": EVENTS, "p": partition, "hi": hi},
            )
            if not more[0][0]:
                return
        current: int | None = None
        items: list[tuple[int, CloudEvent]] = []
        for offset, source, id_, type_, subject, t, ms, data in rows:
            if offset != current:
                if current is not None:
                    yield current, items
                current, items = offset, []
            when = (t if t.tzinfo else t.replace(tzinfo=dt.UTC)) + dt.timedelta(milliseconds=ms)
            items.append(
                (
                    len(items),
                    CloudEvent(
                        id=id_, source=source, type=type_, time=when, subject=subject, data=_dec.decode(data)
                    ),
                )
            )
        if current is not None:
            yield current, items
        lo = hi


def catch_up(
    proc: Processor, partition: int, stop: int | None = None, progress: Callable[[int], None] | None = None
) -> int:
    """Bring a partition of `proc` forward from its checkpoint with archived events. Returns events applied."""
    part = proc.own(partition)
    batch: list[tuple[int, list[tuple[int, CloudEvent]]]] = []
    events = 0

    def flush() -> None:
        nonlocal batch
        if batch:
            changed = proc.apply_archived(partition, batch)
            proc.commit(Flush(), {partition: changed})
            batch = []

    for rec in archived_records(proc.ch, partition, part.next_offset, stop):
        batch.append(rec)
        events += len(rec[1])
        if progress:
            progress(len(rec[1]))
        if len(batch) >= CHUNK_RECORDS:
            flush()
    flush()
    return events


def next_version_name(ch: ClickHouse, boundary_set: str) -> str:
    n = len(store.versions(ch)) + 1
    return f"v{n}-{boundary_set}"


def replay(
    ch: ClickHouse,
    catalog: Catalog,
    boundary_set: str,
    *,
    name: str | None = None,
    switch: bool = True,
    lateness: Lateness | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayResult:
    from ioccore.topics import load_topics

    t0 = time.monotonic()
    model: Model = compile_model(catalog)
    bounds = boundaries(catalog, boundary_set)  # raises ValueError for an unknown set
    active = store.active_version(ch)
    cutoffs = store.checkpoints(ch, active["version_set"]) if active else {}
    version_set = name or next_version_name(ch, boundary_set)
    if any(v["version_set"] == version_set for v in store.versions(ch)):
        raise ValueError(f"version set {version_set!r} exists already: choose another --name")
    store.set_version(ch, version_set, boundary_set, model.catalog_hash, "building", f"replay of {cutoffs}")
    partitions = load_topics()[EVENTS].partitions
    proc = Processor(ch, catalog.contracts, Engine(model, bounds, lateness), version_set, partitions, EVENTS)
    total = _archived_count(ch, cutoffs) if cutoffs else _archived_count(ch, None)
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, total)

    events = 0
    try:
        for p in range(partitions):
            events += catch_up(proc, p, cutoffs.get(p, 0) if cutoffs else None, step)
    finally:
        proc.close()
    values = int(
        ch.execute("SELECT count() FROM indicator_values WHERE version_set = %(v)s", {"v": version_set})[0][0]
    )
    if switch:
        activate(ch, version_set)
    else:
        store.set_version(ch, version_set, boundary_set, model.catalog_hash, "ready", "built, not switched")
    return ReplayResult(version_set, boundary_set, events, values, time.monotonic() - t0)


def activate(ch: ClickHouse, version_set: str) -> None:
    """Switch reads (and live workers) to a built version set; the previously active one is retired."""
    known = {v["version_set"]: v for v in store.versions(ch)}
    if version_set not in known:
        raise ValueError(f"no version set {version_set!r}: known {sorted(known)}")
    for v in known.values():
        if v["status"] == "active" and v["version_set"] != version_set:
            store.set_version(
                ch,
                v["version_set"],
                v["boundary_set"],
                v["catalog_hash"],
                "retired",
                f"replaced by {version_set}",
            )
    v = known[version_set]
    store.set_version(ch, version_set, v["boundary_set"], v["catalog_hash"], "active", "switched")


def _archived_count(ch: ClickHouse, cutoffs: dict[int, int] | None) -> int:
    if not cutoffs:
        return int(ch.execute("SELECT count() FROM events_archive WHERE topic = %(t)s", {"t": EVENTS})[0][0])
    total = 0
    for p, stop in cutoffs.items():
        total += int(
            ch.execute(
                "SELECT count() FROM events_archive WHERE topic = %(t)s AND partition = %(p)s AND offset < %(s)s",
                {"t": EVENTS, "p": p, "s": stop},
            )[0][0]
        )
    return total


def describe(result: ReplayResult) -> dict[str, Any]:
    return {
        "version_set": result.version_set,
        "boundary_set": result.boundary_set,
        "events": result.events,
        "values": result.values,
        "seconds": round(result.seconds, 2),
        "events_per_s": round(result.events_per_s),
    }
