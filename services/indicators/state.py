"""Aggregation states of one series (indicator × cadence × unit × period), one kind per measure.

A state is cumulative and deterministic: the state of a series in a Kafka partition after offset o is a
function of that partition's events up to o, whatever the batching, the restarts and the worker. States of
the same series from different partitions merge into the series' value. They are stored as compact JSON.

The value of each measure is defined so that `ioc reconcile` can recompute it with SQL (services.indicators
.reconcile): count of events; sum/avg/min/max of a numeric value field (events without a number there are
not counted); distinct_count of the field's JSON value; quantile as ClickHouse's quantileExact (the element
at index floor(q·n) of the sorted values); on_time_rate: share (× scale) of events whose done time is not
after their due time. Reported figures keep the latest figure per (subject, period); `last` shows it, the
other measures aggregate the latest figures.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np


class State:
    __slots__ = ()
    kind = ""

    def add(self, values: list[Any]) -> None:
        raise NotImplementedError

    def merge(self, other: State) -> None:
        raise NotImplementedError

    def add_summary(self, n: int, total: float, low: float, high: float) -> None:
        """Add n values given by their sum, minimum and maximum (the engine's columnar path; n > 0)."""
        raise NotImplementedError

    def value(self) -> float | None:
        raise NotImplementedError

    def count(self) -> int:
        raise NotImplementedError

    def dump(self) -> Any:
        """What the state is stored as: JSON-encodable, read back by `load`."""
        raise NotImplementedError

    def copy(self) -> State:
        s = new_state(self.kind)
        s.merge(self)
        return s


def merged(states: list[State]) -> State:
    """One state for a series from its partitions' states (the inputs are not changed)."""
    if len(states) == 1:
        return states[0]
    first = states[0]
    if isinstance(first, Count):
        out = Count()
        out.n = sum(s.n for s in states)  # type: ignore[attr-defined]
        return out
    if isinstance(first, Sum):
        out2 = type(first)()
        out2.n = sum(s.n for s in states)  # type: ignore[attr-defined]
        out2.total = sum(s.total for s in states)  # type: ignore[attr-defined]
        return out2
    out3 = first.copy()
    if hasattr(first, "q"):
        out3.q = first.q  # type: ignore[attr-defined]
    if hasattr(first, "measure"):
        out3.measure = first.measure  # type: ignore[attr-defined]
    for st in states[1:]:
        out3.merge(st)
    return out3


class Count(State):
    __slots__ = ("n",)
    kind = "count"

    def __init__(self) -> None:
        self.n = 0

    def add(self, values: list[Any]) -> None:
        self.n += len(values)

    def add_summary(self, n: int, total: float, low: float, high: float) -> None:
        self.n += n

    def merge(self, other: State) -> None:
        assert isinstance(other, Count)
        self.n += other.n

    def value(self) -> float | None:
        return float(self.n)

    def count(self) -> int:
        return self.n

    def dump(self) -> list[Any]:
        return [self.n]

    def load(self, d: list[Any]) -> None:
        self.n = d[0]


class Sum(State):
    __slots__ = ("n", "total")
    kind = "sum"

    def __init__(self) -> None:
        self.n = 0
        self.total = 0.0

    def add(self, values: list[Any]) -> None:
        self.n += len(values)
        self.total += sum(values)

    def add_summary(self, n: int, total: float, low: float, high: float) -> None:
        self.n += n
        self.total += total

    def merge(self, other: State) -> None:
        assert isinstance(other, Sum)
        self.n += other.n
        self.total += other.total

    def value(self) -> float | None:
        return self.total

    def count(self) -> int:
        return self.n

    def dump(self) -> list[Any]:
        return [self.n, self.total]

    def load(self, d: list[Any]) -> None:
        self.n, self.total = d[0], float(d[1])


class Avg(Sum):
    __slots__ = ()
    kind = "avg"

    def value(self) -> float | None:
        return self.total / self.n if self.n else None


class OnTimeRate(Sum):
    """total = events on time; value = share × scale (the scale is applied by the caller)."""

    __slots__ = ()
    kind = "on_time_rate"

    def value(self) -> float | None:
        return self.total / self.n if self.n else None


class Min(State):
    __slots__ = ("n", "low")
    kind = "min"

    def __init__(self) -> None:
        self.n = 0
        self.low: float | None = None

    def add(self, values: list[Any]) -> None:
        m = min(values)
        self.low = m if self.low is None or m < self.low else self.low
        self.n += len(values)

    def add_summary(self, n: int, total: float, low: float, high: float) -> None:
        self.low = low if self.low is None or low < self.low else self.low
        self.n += n

    def merge(self, other: State) -> None:
        assert isinstance(other, Min)
        if other.n:
            self.add([other.low])
            self.n += other.n - 1  # add() counted the merged value once

    def value(self) -> float | None:
        return self.low

    def count(self) -> int:
        return self.n

    def dump(self) -> list[Any]:
        return [self.n, self.low]

    def load(self, d: list[Any]) -> None:
        self.n, self.low = d[0], d[1]


class Max(Min):
    __slots__ = ()
    kind = "max"

    def add(self, values: list[Any]) -> None:
        m = max(values)
        self.low = m if self.low is None or m > self.low else self.low
        self.n += len(values)

    def add_summary(self, n: int, total: float, low: float, high: float) -> None:
        self.low = high if self.low is None or high > self.low else self.low
        self.n += n


class DistinctCount(State):
    __slots__ = ("n", "items")
    kind = "distinct_count"

    def __init__(self) -> None:
        self.n = 0
        self.items: set[str] = set()

    def add(self, values: list[Any]) -> None:
        self.n += len(values)
        self.items.update(values)

    def merge(self, other: State) -> None:
        assert isinstance(other, DistinctCount)
        self.n += other.n
        self.items |= other.items

    def value(self) -> float | None:
        return float(len(self.items))

    def count(self) -> int:
        return self.n

    def dump(self) -> list[Any]:
        return [self.n, sorted(self.items)]

    def load(self, d: list[Any]) -> None:
        self.n, self.items = d[0], set(d[1])


class Quantile(State):
    """Exact: keeps the values as one sorted float64 array. A year's series holds a year of values (~1 M for a
    feed every 30 s), so the representation matters: 8 bytes a value instead of a Python float and a list slot;
    the values added during a flush wait in a list and go in once, when the flush reads the state (one copy of
    the array, ~1 ms for 1 M values, where re-sorting a list took ~18 ms per add); the value is one index.

    Stored in segments (`persist`), not whole on every flush: a flush writes the values added since the last
    one, merged with the newest segments while they are not bigger than it (a binary counter: at most
    ~log2(n) segments after the base, each value rewritten ~log2(n) times), and the whole array again once the
    segments after the base hold as many values as it. A flush of a year's series thus writes what it added,
    not ~1 M values (11 MB). `dump`/`load` give the whole array (base64 of little-endian float64); `load` takes
    the older JSON list of numbers too."""

    __slots__ = ("_sorted", "_pending", "q", "segments", "_tail", "_unsaved")
    kind = "quantile"

    def __init__(self) -> None:
        self._sorted: Any = _NO_VALUES
        self._pending: list[float] = []
        self.q = 0.5
        # What is stored: [next_offset, values] of each segment row, the base first; the values after the base
        # in the order they were stored (the segments' concatenation), and those added since the last persist.
        self.segments: list[list[int]] = []
        self._tail: Any = _NO_VALUES
        self._unsaved: list[float] = []

    @property
    def values(self) -> Any:
        """Every value added, sorted (a float64 array the caller must not change)."""
        if self._pending:
            self._insert(self._pending)
            self._pending = []
        return self._sorted

    def _insert(self, new: Any) -> None:
        """Add values (a list or an array, not kept): one new array, sorted by merging the two runs (~1 µs
        for a small series, ~1 ms for 1 M values)."""
        out = np.concatenate((self._sorted, new)).astype(np.float64, copy=False)
        out.sort(kind="stable")  # timsort: the sorted array and the batch's run merge in linear time
        self._sorted = out

    def add(self, values: list[Any]) -> None:
        self._pending.extend(values)
        self._unsaved.extend(values)

    def merge(self, other: State) -> None:
        assert isinstance(other, Quantile)
        self._insert(other.values)

    def value(self) -> float | None:
        s = self.values
        n = len(s)
        if not n:
            return None
        return float(s[min(int(self.q * n), n - 1)])

    def count(self) -> int:
        return len(self._sorted) + len(self._pending)

    def dump(self) -> str:
        return _b64(self.values)

    def load(self, d: str | list[Any]) -> None:
        self._pending = []
        self._unsaved = []
        self.segments = []
        self._tail = _NO_VALUES
        if isinstance(d, str):
            self._sorted = _unb64(d)
        else:  # the JSON list of a worker before the array
            self._sorted = np.sort(np.asarray(d, np.float64))

    def persist(self, offset: int) -> tuple[str | None, dict[str, Any]]:
        """What a flush at `offset` stores: the values of the segment row it writes at that offset (base64;
        None when nothing was added since the last persist) and the manifest for the series' row in
        indicator_partials (`load_segments` reads both back). The state counts as stored from then on: a
        failed write must end the worker (it does: the flush's INSERTs are all or nothing for the process)."""
        new = np.asarray(self._unsaved, np.float64)
        self._unsaved = []
        segs = self.segments
        if len(new) == 0 and segs:
            return None, self.manifest()
        if segs and segs[-1][0] == offset:  # written at this offset already: rewrite it whole, superseding it
            segs = []
        tail = np.concatenate((self._tail, new)) if len(new) else self._tail
        base = segs[0][1] if segs else 0
        if not segs or len(tail) >= base:  # the segments would outgrow the base: the base is all values
            self.segments, self._tail = [[offset, self.count()]], _NO_VALUES
            return _b64(self.values), self.manifest()
        segs = [*segs, [offset, len(new)]]
        while len(segs) > 2 and segs[-2][1] <= segs[-1][1]:  # merge the newest while not bigger than the last
            last = segs.pop()
            segs[-1] = [offset, segs[-1][1] + last[1]]
        self.segments, self._tail = segs, tail
        return _b64(tail[len(tail) - segs[-1][1] :]), self.manifest()

    def manifest(self) -> dict[str, Any]:
        return {"segments": [list(s) for s in self.segments], "n": self.count()}

    def load_segments(self, manifest: dict[str, Any], points: list[str]) -> None:
        """Back from a manifest and the values of its segment rows, in the manifest's order."""
        parts = [_unb64(p) for p in points]
        segs = [[int(o), int(n)] for o, n in manifest["segments"]]
        if [len(p) for p in parts] != [n for _, n in segs] or sum(n for _, n in segs) != manifest["n"]:
            raise ValueError(f"quantile segments do not match their manifest {manifest}")
        self._pending = []
        self._unsaved = []
        self.segments = segs
        self._tail = np.concatenate(parts[1:]) if len(parts) > 1 else _NO_VALUES
        out = np.concatenate(parts) if parts else _NO_VALUES
        out.sort(kind="stable")
        self._sorted = out


def _b64(values: Any) -> str:
    return base64.b64encode(np.asarray(values, "<f8").tobytes()).decode("ascii")


def _unb64(text: str) -> Any:
    return np.frombuffer(base64.b64decode(text, validate=True), "<f8").astype(np.float64)


_NO_VALUES = np.empty(0, np.float64)


class Figures(State):
    """Reported figures: the latest (by report time, then event id) per (subject, period)."""

    __slots__ = ("latest", "measure")
    kind = "figures"

    def __init__(self) -> None:
        self.latest: dict[str, tuple[int, str, float]] = {}
        self.measure = "last"

    def add(self, values: list[Any]) -> None:
        for key, stamp, event_id, value in values:
            cur = self.latest.get(key)
            if cur is None or (stamp, event_id) > (cur[0], cur[1]):
                self.latest[key] = (stamp, event_id, value)

    def merge(self, other: State) -> None:
        assert isinstance(other, Figures)
        self.add([(k, *v) for k, v in other.latest.items()])

    def value(self) -> float | None:
        vals = [v[2] for v in self.latest.values()]
        if not vals:
            return None
        m = self.measure
        if m == "last":
            return max(self.latest.values())[2]
        if m == "sum":
            return float(sum(vals))
        if m == "min":
            return float(min(vals))
        if m == "max":
            return float(max(vals))
        if m == "count":
            return float(len(vals))
        if m == "avg":
            return sum(vals) / len(vals)
        if m == "distinct_count":
            return float(len(set(vals)))
        if m == "quantile":
            s = sorted(vals)
            return s[min(int(0.5 * len(s)), len(s) - 1)]
        raise ValueError(m)

    def count(self) -> int:
        return len(self.latest)

    def dump(self) -> list[Any]:
        return [[k, *v] for k, v in sorted(self.latest.items())]

    def load(self, d: list[Any]) -> None:
        self.latest = {k: (s, i, v) for k, s, i, v in d}


KINDS: dict[str, type] = {
    "count": Count,
    "sum": Sum,
    "avg": Avg,
    "on_time_rate": OnTimeRate,
    "min": Min,
    "max": Max,
    "distinct_count": DistinctCount,
    "quantile": Quantile,
    "figures": Figures,
}


def new_state(kind: str) -> Any:
    return KINDS[kind]()


def load_state(kind: str, dumped: list[Any]) -> Any:
    s = new_state(kind)
    s.load(dumped)
    return s
