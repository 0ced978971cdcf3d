"""The indicators service's ClickHouse tables (contracts/clickhouse/0003_indicators.sql): partition states
with their checkpoints, values, and versions. Every query is parameterised and runs on 18.16 and on chdb."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from typing import Any

import msgspec
import numpy as np

from ioccore.clickhouse import ClickHouse, Inserter
from services.indicators.columns import KIND_NAMES, Summaries, dump_summaries, load_summary, split_codes
from services.indicators.engine import Engine, PartitionState, SeriesKey
from services.indicators.model import CADENCE_RANK, CADENCES, local_day
from services.indicators.state import Quantile, State

PARTIALS = "indicator_partials"
SEGMENTS = "indicator_segments"
VALUES = "indicator_values"
VERSIONS = "indicator_versions"
DEFAULT_VERSION_SET = "v1"
_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)


# ---------------------------------------------------------------------------------------------------------
# Versions
# ---------------------------------------------------------------------------------------------------------
def set_version(
    ch: ClickHouse, version_set: str, boundary_set: str, catalog_hash: str, status: str, note: str = ""
) -> None:
    ch.insert(
        VERSIONS,
        {
            "version_set": [version_set],
            "boundary_set": [boundary_set],
            "catalog_hash": [catalog_hash],
            "status": [status],
            "note": [note],
            "updated_at": [_now()],
            "revision": [time.time_ns()],
        },
    )


def versions(ch: ClickHouse) -> list[dict[str, Any]]:
    rows = ch.execute(
        "SELECT version_set, argMax(boundary_set, revision), argMax(catalog_hash, revision), "
        "argMax(status, revision), argMax(note, revision), max(revision) "
        "FROM indicator_versions GROUP BY version_set ORDER BY max(revision)"
    )
    keys = ("version_set", "boundary_set", "catalog_hash", "status", "note", "revision")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def active_version(ch: ClickHouse) -> dict[str, Any] | None:
    """The version set reads use: the one switched to `active` last."""
    active = [v for v in versions(ch) if v["status"] == "active"]
    return max(active, key=lambda v: v["revision"]) if active else None


def ensure_active_version(ch: ClickHouse, boundary_set: str, catalog_hash: str) -> dict[str, Any]:
    current = active_version(ch)
    if current is None:
        set_version(ch, DEFAULT_VERSION_SET, boundary_set, catalog_hash, "active", "first live version")
        current = active_version(ch)
        assert current is not None
    return current


# ---------------------------------------------------------------------------------------------------------
# Partition states
# ---------------------------------------------------------------------------------------------------------
def _rows(ch: ClickHouse, version_set: str, partition: int, min_offset: int = 0) -> list[tuple[Any, ...]]:
    return ch.execute(
        "SELECT indicator, cadence, unit, period, argMax(kind, next_offset), argMax(state, next_offset), "
        "max(next_offset) FROM indicator_partials "
        "WHERE version_set = %(v)s AND partition = %(p)s AND next_offset >= %(min)s "
        "GROUP BY indicator, cadence, unit, period",
        {"v": version_set, "p": partition, "min": min_offset},
    )


def _segments(
    ch: ClickHouse, version_set: str, partition: int, min_offset: int
) -> dict[tuple[str, str, str, str, int], str]:
    """The segment rows of a partition's exact quantiles written at `min_offset` or later: (indicator,
    cadence, unit, period, next_offset) -> values; of two rows at one offset, the one holding more values
    (Quantile.persist: it supersedes the other)."""
    rows = ch.execute(
        "SELECT indicator, cadence, unit, period, next_offset, argMax(points, through) FROM indicator_segments "
        "WHERE version_set = %(v)s AND partition = %(p)s AND next_offset >= %(min)s "
        "GROUP BY indicator, cadence, unit, period, next_offset",
        {"v": version_set, "p": partition, "min": min_offset},
    )
    return {(r[0], r[1], r[2], r[3], int(r[4])): r[5] for r in rows}


def _states(
    ch: ClickHouse, version_set: str, partition: int, engine: Engine, min_offset: int = 0
) -> tuple[list[tuple[SeriesKey, int, State]], Summaries, list[tuple[int, str]]]:
    """A partition's rows written at `min_offset` or later -> (series kept as objects with the offset they were
    written at, the summarised series, checkpoint rows (next_offset, meta)). Exact quantiles are read back from
    the segment rows their manifests name."""
    objects: list[tuple[SeriesKey, int, State]] = []
    checkpoints: list[tuple[int, str]] = []
    codes: list[int] = []
    summaries: list[tuple[int, float, float, float]] = []
    at: list[int] = []
    manifests: list[tuple[SeriesKey, int, State, dict[str, Any]]] = []
    for indicator, cadence, unit, period, kind, state, next_offset in _rows(
        ch, version_set, partition, min_offset
    ):
        if indicator == "":
            checkpoints.append((int(next_offset), state))
            continue
        key = (indicator, CADENCE_RANK[cadence], unit, period)
        if engine.is_summarised(indicator):
            want = KIND_NAMES[int(engine.indicator_kind[engine.indicator_index[indicator]])]
            if kind != want:
                raise ValueError(f"{indicator}: stored state kind {kind!r}, catalog wants {want!r}")
            codes.append(engine.code_of(key))
            summaries.append(load_summary(kind, _dec.decode(state)))
            at.append(int(next_offset))
            continue
        dumped = _dec.decode(state)
        if isinstance(dumped, dict) and "segments" in dumped:  # an exact quantile stored in segments
            st = engine.restore(indicator, kind, [])
            manifests.append((key, int(next_offset), st, dumped))
            objects.append((key, int(next_offset), st))
        else:
            objects.append((key, int(next_offset), engine.restore(indicator, kind, dumped)))
    if manifests:
        first = min(o for _, _, _, m in manifests for o, _ in m["segments"])
        got = _segments(ch, version_set, partition, first)
        for key, _, st, m in manifests:
            name = (key[0], CADENCES[key[1]], key[2], key[3])
            missing = [o for o, _ in m["segments"] if (*name, o) not in got]
            if missing:
                raise ValueError(f"{name}: segment rows at offsets {missing} are not in {SEGMENTS}")
            st.load_segments(m, [got[(*name, o)] for o, _ in m["segments"]])  # type: ignore[attr-defined]
    table = Summaries()
    if codes:
        order = np.argsort(np.array(codes, np.int64))
        cols = np.array(summaries, np.float64).reshape(-1, 4)[order]
        table.put(
            np.array(codes, np.int64)[order],
            n=cols[:, 0].astype(np.int64),
            total=cols[:, 1],
            low=cols[:, 2],
            high=cols[:, 3],
            at=np.array(at, np.int64)[order],
        )
    return objects, table, checkpoints


def load_partition(
    ch: ClickHouse, version_set: str, partition: int, engine: Engine
) -> tuple[PartitionState, dict, dict]:
    """The partition's state as of its last checkpoint. Returns (state, written_at per key of the series
    kept as objects, counters); the summarised series carry theirs (Summaries.at)."""
    part = PartitionState(partition)
    counters: dict[str, list[int]] = {}
    objects, part.summaries, marks = _states(ch, version_set, partition, engine)
    for next_offset, state in marks:
        meta = _dec.decode(state)
        part.next_offset = next_offset
        part.watermark = float(meta.get("watermark", 0.0))
        counters = {k: list(v) for k, v in meta.get("counters", {}).items()}
    written: dict[SeriesKey, int] = {}
    for key, at, st in objects:
        part.series[key] = st
        written[key] = at
    # A row newer than the checkpoint cannot exist: a flush is one INSERT with its checkpoint row.
    return part, written, counters


def write_partition(
    ch: Inserter,
    version_set: str,
    part: PartitionState,
    keys: Iterable[SeriesKey],
    codes: Any,
    counters: dict[str, list[int]],
    engine: Engine,
) -> None:
    """One INSERT: the changed series (`keys` kept as objects, `codes` summarised) and the checkpoint row, all
    at the partition's next_offset."""
    series = part.series
    keys = list(keys)
    states = [series[k] for k in keys]
    encode = _enc.encode
    dumped = [_persist(st, part.next_offset) for st in states]
    segs = [(k, d[1]) for k, d in zip(keys, dumped, strict=True) if d[1] is not None]
    if segs:  # before the partition's row that names them (a crash between the two leaves unnamed rows)
        n = len(segs)
        ch.insert(
            SEGMENTS,
            {
                "version_set": [version_set] * n,
                "partition": [part.partition] * n,
                "indicator": [k[0] for k, _ in segs],
                "cadence": [CADENCES[k[1]] for k, _ in segs],
                "unit": [k[2] for k, _ in segs],
                "period": [k[3] for k, _ in segs],
                "next_offset": [part.next_offset] * n,
                "through": [series[k].count() for k, _ in segs],
                "points": [p for _, p in segs],
                "written_at": [int(time.time())] * n,
            },
        )
    t = part.summaries
    idx = np.searchsorted(t.codes, codes)
    ind, unit, cadence, period = split_codes(codes)
    ids = np.array(engine.indicator_ids, object)
    kind = engine.indicator_kind[ind]
    c = t.cols
    cols: dict[str, list[Any]] = {
        "indicator": [k[0] for k in keys] + ids[ind].tolist() + [""],
        "cadence": [CADENCES[k[1]] for k in keys] + _CADENCES[cadence].tolist() + [""],
        "unit": [k[2] for k in keys] + engine.unit_arrays()[0][unit].tolist() + [""],
        "period": [k[3] for k in keys] + engine.period_arrays()[0][period].tolist() + [""],
        "kind": [st.kind for st in states] + _KINDS[kind].tolist() + ["checkpoint"],
        "state": [encode(d[0]) for d in dumped]  # UTF-8 bytes, written as they are
        + dump_summaries(kind, c["n"][idx], c["total"][idx], c["low"][idx], c["high"][idx])
        + [encode({"watermark": part.watermark, "counters": counters})],
    }
    n = len(cols["state"])
    cols["version_set"] = [version_set] * n
    cols["partition"] = [part.partition] * n
    cols["next_offset"] = [part.next_offset] * n
    cols["written_at"] = [int(time.time())] * n
    ch.insert(PARTIALS, cols)


def _persist(st: State, offset: int) -> tuple[Any, str | None]:
    """What a changed series stores at `offset`: its row's state, and the values of its segment row (None: no
    segment row; exact quantiles only, see Quantile.persist)."""
    if isinstance(st, Quantile):
        points, manifest = st.persist(offset)
        return manifest, points
    return st.dump(), None


_CADENCES = np.array(CADENCES, object)
_KINDS = np.array([KIND_NAMES.get(i, "") for i in range(8)], object)


def read_partition_since(
    ch: ClickHouse, version_set: str, partition: int, since: int, engine: Engine
) -> tuple[list[tuple[SeriesKey, int, State]], Summaries, int, float | None]:
    """Series of a partition this worker does not own, written after checkpoint `since` (kept as objects, and
    summarised); the partition's newest checkpoint (`since` when there is nothing newer) and its watermark
    (None when not newer)."""
    objects, table, marks = _states(ch, version_set, partition, engine, since + 1)
    checkpoint = since
    watermark = None
    for next_offset, state in marks:
        if next_offset >= checkpoint:
            checkpoint = next_offset
            watermark = float(_dec.decode(state).get("watermark", 0.0))
    return objects, table, checkpoint, watermark


def checkpoints(ch: ClickHouse, version_set: str) -> dict[int, int]:
    """Partition -> next offset of its last checkpoint."""
    rows = ch.execute(
        "SELECT partition, max(next_offset) FROM indicator_partials "
        "WHERE version_set = %(v)s AND indicator = '' GROUP BY partition",
        {"v": version_set},
    )
    return {int(p): int(o) for p, o in rows}


def partition_counters(ch: ClickHouse, version_set: str) -> dict[str, dict[str, int]]:
    """processed / dead_lettered / late per source, summed over the partitions' checkpoints."""
    rows = ch.execute(
        "SELECT partition, argMax(state, next_offset) FROM indicator_partials "
        "WHERE version_set = %(v)s AND indicator = '' GROUP BY partition",
        {"v": version_set},
    )
    out: dict[str, dict[str, int]] = {}
    names = ("processed", "dead_lettered", "late", "duplicates")
    for _, state in rows:
        for source, counts in _dec.decode(state).get("counters", {}).items():
            c = out.setdefault(source, dict.fromkeys(names, 0))
            for name, n in zip(names, counts, strict=False):  # checkpoints before duplicates had three
                c[name] += n
    return out


def seen_events(
    ch: ClickHouse, topic: str, partition: int, below_offset: int, since_s: float
) -> dict[int, dict[str, set[str]]]:
    """The ids per local day and source of the raw events archived from a partition below its checkpoint,
    within the lateness window: what the partition state had seen (the archive holds exactly the events
    counted)."""
    seen: dict[int, dict[str, set[str]]] = {}
    if below_offset == 0:
        return seen
    rows = ch.execute(
        "SELECT source, id, toUInt32(time) FROM events_archive "
        "WHERE topic = %(topic)s AND partition = %(p)s AND offset < %(o)s AND time >= toDateTime(%(since)s) "
        "AND type NOT LIKE %(figures)s",
        {
            "topic": topic,
            "p": partition,
            "o": below_offset,
            "since": max(0, int(since_s) - 86400),
            "figures": "%.figure.reported",
        },
    )
    for source, event_id, t in rows:
        seen.setdefault(local_day(t), {}).setdefault(source, set()).add(event_id)
    return seen


# ---------------------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------------------
VALUE_COLUMNS = (
    "version_set",
    "indicator",
    "field",
    "cadence",
    "level",
    "unit",
    "period",
    "period_start",
    "value",
    "n",
    "version",
    "updated_at",
)


def write_values(ch: Inserter, columns: dict[str, list[Any]]) -> None:
    """One INSERT of value columns (VALUE_COLUMNS), when there are rows."""
    if columns["value"]:
        ch.insert(VALUES, {k: columns[k] for k in VALUE_COLUMNS})


def read_values(ch: ClickHouse, version_set: str) -> dict[tuple[str, str, str, str], float]:
    """Every value of a version set: (indicator, cadence, unit, period) -> value."""
    rows = ch.execute(
        "SELECT indicator, cadence, unit, period, argMax(value, version) FROM indicator_values "
        "WHERE version_set = %(v)s GROUP BY indicator, cadence, unit, period",
        {"v": version_set},
    )
    return {(r[0], r[1], r[2], r[3]): float(r[4]) for r in rows}
