"""The indicators service's ClickHouse tables (contracts/clickhouse/0003_indicators.sql): partition states
with their checkpoints, values, and versions. Every query is parameterised and runs on 18.16 and on chdb."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from ioccore.clickhouse import ClickHouse, Inserter
from services.indicators.engine import PartitionState, SeriesKey
from services.indicators.model import CADENCE_RANK, CADENCES, local_day
from services.indicators.state import State

PARTIALS = "indicator_partials"
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


Restore = Callable[[str, str, Any], State]  # (indicator, kind, dumped state) -> State


def load_partition(
    ch: ClickHouse, version_set: str, partition: int, restore: Restore
) -> tuple[PartitionState, dict, dict]:
    """The partition's state as of its last checkpoint. Returns (state, written_at per key, counters)."""
    part = PartitionState(partition)
    written: dict[SeriesKey, int] = {}
    counters: dict[str, list[int]] = {}
    for indicator, cadence, unit, period, kind, state, next_offset in _rows(ch, version_set, partition):
        if indicator == "":
            meta = _dec.decode(state)
            part.next_offset = int(next_offset)
            part.watermark = float(meta.get("watermark", 0.0))
            counters = {k: list(v) for k, v in meta.get("counters", {}).items()}
            continue
        key = (indicator, CADENCE_RANK[cadence], unit, period)
        part.series[key] = restore(indicator, kind, _dec.decode(state))
        written[key] = int(next_offset)
    # A row newer than the checkpoint cannot exist: a flush is one INSERT with its checkpoint row.
    return part, written, counters


def write_partition(
    ch: Inserter,
    version_set: str,
    part: PartitionState,
    keys: Iterable[SeriesKey],
    counters: dict[str, list[int]],
) -> None:
    """One INSERT: the changed series and the checkpoint row, all at the partition's next_offset."""
    series = part.series
    keys = list(keys)
    states = [series[k] for k in keys]
    encode = _enc.encode
    cols: dict[str, list[Any]] = {
        "indicator": [k[0] for k in keys] + [""],
        "cadence": [CADENCES[k[1]] for k in keys] + [""],
        "unit": [k[2] for k in keys] + [""],
        "period": [k[3] for k in keys] + [""],
        "kind": [st.kind for st in states] + ["checkpoint"],
        "state": [encode(st.dump()) for st in states]  # UTF-8 bytes, written as they are
        + [encode({"watermark": part.watermark, "counters": counters})],
    }
    n = len(keys) + 1
    cols["version_set"] = [version_set] * n
    cols["partition"] = [part.partition] * n
    cols["next_offset"] = [part.next_offset] * n
    cols["written_at"] = [int(time.time())] * n
    ch.insert(PARTIALS, cols)


def read_partition_since(
    ch: ClickHouse, version_set: str, partition: int, since: int, restore: Restore
) -> tuple[list[tuple[SeriesKey, int, State]], int, float | None]:
    """Series of a partition this worker does not own, written after checkpoint `since`; the partition's
    newest checkpoint (`since` when there is nothing newer) and its watermark (None when not newer)."""
    out: list[tuple[SeriesKey, int, State]] = []
    checkpoint = since
    watermark = None
    for indicator, cadence, unit, period, kind, state, next_offset in _rows(
        ch, version_set, partition, since + 1
    ):
        if indicator == "":
            checkpoint = max(checkpoint, int(next_offset))
            watermark = float(_dec.decode(state).get("watermark", 0.0))
            continue
        key = (indicator, CADENCE_RANK[cadence], unit, period)
        out.append((key, int(next_offset), restore(indicator, kind, _dec.decode(state))))
    return out, checkpoint, watermark


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
) -> dict[int, set[tuple[str, str]]]:
    """(source, id) per local day of the raw events archived from a partition below its checkpoint, within the
    lateness window: what the partition state had seen (the archive holds exactly the events counted)."""
    seen: dict[int, set[tuple[str, str]]] = {}
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
        seen.setdefault(local_day(t), set()).add((source, event_id))
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


def write_values(ch: Inserter, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        ch.insert(VALUES, dict(zip(VALUE_COLUMNS, zip(*rows, strict=True), strict=True)))


def read_values(ch: ClickHouse, version_set: str) -> dict[tuple[str, str, str, str], float]:
    """Every value of a version set: (indicator, cadence, unit, period) -> value."""
    rows = ch.execute(
        "SELECT indicator, cadence, unit, period, argMax(value, version) FROM indicator_values "
        "WHERE version_set = %(v)s GROUP BY indicator, cadence, unit, period",
        {"v": version_set},
    )
    return {(r[0], r[1], r[2], r[3]): float(r[4]) for r in rows}
