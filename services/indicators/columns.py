"""Columnar series: the states of the summarised measures (count, sum, avg, min, max, on_time_rate; ~95% of
the series) as numpy columns sorted by a series code, instead of one Python object per series.

A series code packs (indicator, unit, cadence, period) into an int64: indicator << 43 | unit << 27 | cadence
<< 24 | period, where indicator, unit and period are the engine's numbers for them (services.indicators.engine
numbers them in order of first sight; a code means nothing outside the process). Codes sort by indicator
first, so the series of one indicator are one slice.

A summary is (n, total, low, high): what the states of these measures need to add batches and to merge
partitions, so a batch's aggregates add in with a few numpy operations and a flush's values are computed,
merged and written as arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

IND_SHIFT = 43
UNIT_SHIFT = 27
CADENCE_SHIFT = 24
MAX_UNITS = 1 << 16
MAX_PERIODS = 1 << 24
REST_MASK = (1 << IND_SHIFT) - 1  # unit, cadence and period of a code

# Measures kept as summaries, by number (0: kept as a Python state object; RATIO: computed from two others).
OBJECT = 0
SUMMARISED = {"count": 1, "sum": 2, "avg": 3, "on_time_rate": 4, "min": 5, "max": 6}
RATIO = 7
KIND_NAMES = {v: k for k, v in SUMMARISED.items()}


def series_codes(ind: Any, unit: Any, cadence: Any, period: Any) -> Any:
    return (
        (np.asarray(ind, np.int64) << IND_SHIFT)
        | (np.asarray(unit, np.int64) << UNIT_SHIFT)
        | (np.asarray(cadence, np.int64) << CADENCE_SHIFT)
        | np.asarray(period, np.int64)
    )


def split_codes(codes: Any) -> tuple[Any, Any, Any, Any]:
    """codes -> (indicator, unit, cadence, period) numbers."""
    return (
        codes >> IND_SHIFT,
        (codes >> UNIT_SHIFT) & (MAX_UNITS - 1),
        (codes >> CADENCE_SHIFT) & 7,
        codes & (MAX_PERIODS - 1),
    )


def no_codes() -> Any:
    return np.empty(0, np.int64)


def unique_codes(*arrays: Any) -> Any:
    """The sorted distinct codes of the arrays (by sorting: np.unique without an inverse hashes, several
    times slower on these sizes)."""
    a = np.sort(np.concatenate(arrays)) if arrays else no_codes()
    if len(a) < 2:
        return a
    keep = np.empty(len(a), bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


class Table:
    """Rows sorted by series code, with named numpy columns."""

    __slots__ = ("codes", "cols")

    def __init__(self, **dtypes: Any):
        self.codes = no_codes()
        self.cols: dict[str, Any] = {k: np.empty(0, d) for k, d in dtypes.items()}

    def __len__(self) -> int:
        return len(self.codes)

    def find(self, codes: Any) -> tuple[Any, Any]:
        """(insertion index, present) of each code."""
        idx = np.searchsorted(self.codes, codes)
        if not len(self.codes):
            return idx, np.zeros(len(codes), bool)
        return idx, self.codes[np.minimum(idx, len(self.codes) - 1)] == codes

    def insert(self, idx: Any, codes: Any, **values: Any) -> None:
        """Insert new codes (sorted, absent) at their insertion indexes; columns not given get 0."""
        if not len(codes):
            return
        self.codes = np.insert(self.codes, idx, codes)
        for k, col in self.cols.items():
            got = values.get(k)
            self.cols[k] = np.insert(col, idx, 0 if got is None else got)

    def put(self, codes: Any, **values: Any) -> None:
        """Set the given columns of codes (sorted, unique), inserting the absent ones."""
        idx, hit = self.find(codes)
        if hit.any():
            at = idx[hit]
            for k, v in values.items():
                self.cols[k][at] = v[hit]
        new = ~hit
        if new.any():
            self.insert(idx[new], codes[new], **{k: v[new] for k, v in values.items()})

    def keep(self, mask: Any) -> int:
        """Keep the rows where mask is true; returns how many were dropped."""
        dropped = len(mask) - int(np.count_nonzero(mask))
        if dropped:
            self.codes = self.codes[mask]
            for k in self.cols:
                self.cols[k] = self.cols[k][mask]
        return dropped


class Summaries(Table):
    """Summaries of a partition's series (or of another worker's partition, read back): n, total, low, high,
    and the partition offset they were last written at (`at`, the series' version)."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(n=np.int64, total=np.float64, low=np.float64, high=np.float64, at=np.int64)

    def add(self, codes: Any, n: Any, total: Any, low: Any, high: Any) -> None:
        """Add a batch's aggregates (codes sorted, unique): counts and sums add, extremes take the extreme."""
        idx, hit = self.find(codes)
        c = self.cols
        if hit.any():
            at = idx[hit]
            c["n"][at] += n[hit]
            c["total"][at] += total[hit]
            c["low"][at] = np.minimum(c["low"][at], low[hit])
            c["high"][at] = np.maximum(c["high"][at], high[hit])
        new = ~hit
        if new.any():
            self.insert(idx[new], codes[new], n=n[new], total=total[new], low=low[new], high=high[new])


def summary_values(kind: Any, n: Any, total: Any, low: Any, high: Any, scale: Any) -> Any:
    """The value of each summary given its measure number; NaN where there is none (no observation)."""
    value = np.full(len(kind), np.nan)
    has = n > 0
    count = (kind == SUMMARISED["count"]) & has
    value[count] = n[count]
    summed = kind == SUMMARISED["sum"]
    value[summed & has] = total[summed & has]
    for name in ("avg", "on_time_rate"):
        m = (kind == SUMMARISED[name]) & has
        value[m] = total[m] / n[m] * scale[m]
    m = (kind == SUMMARISED["min"]) & has
    value[m] = low[m]
    m = (kind == SUMMARISED["max"]) & has
    value[m] = high[m]
    return value


def dump_summaries(kind: Any, n: Any, total: Any, low: Any, high: Any) -> list[str]:
    """The stored JSON of each summary, as the state objects of services.indicators.state dump themselves:
    count [n]; sum, avg, on_time_rate [n, total]; min [n, low]; max [n, high]."""
    out = np.empty(len(kind), object)
    for name, number in SUMMARISED.items():
        rows = np.flatnonzero(kind == number)
        if not len(rows):
            continue
        ns = n[rows].tolist()
        if name == "count":
            texts = list(map("[{}]".format, ns))
        else:
            second = (high if name == "max" else low if name == "min" else total)[rows]
            if np.isfinite(second).all():
                texts = list(map("[{},{!r}]".format, ns, second.tolist()))
            else:  # an extreme without a value (not stored by the engine, but JSON has no infinity)
                texts = [f"[{k},{_json_float(v)}]" for k, v in zip(ns, second.tolist(), strict=True)]
        column = np.empty(len(texts), object)
        column[:] = texts
        out[rows] = column
    return out.tolist()


def _json_float(v: float) -> str:
    return repr(v) if v - v == 0 else "null"  # inf and nan are not JSON


def load_summary(kind: str, dumped: list[Any]) -> tuple[int, float, float, float]:
    """A stored state of a summarised measure -> (n, total, low, high)."""
    n = int(dumped[0])
    if kind == "count":
        return n, 0.0, np.inf, -np.inf
    second = dumped[1]
    if kind in ("min", "max"):
        v = float(second) if second is not None else None
        low = v if kind == "min" and v is not None else np.inf
        high = v if kind == "max" and v is not None else -np.inf
        return n, 0.0, low, high
    return n, float(second), np.inf, -np.inf
