"""The columnar series states (services.indicators.columns) against the state objects they replace: pure
logic, no I/O."""

from __future__ import annotations

import random

import msgspec
import numpy as np

from services.indicators.columns import (
    SUMMARISED,
    Summaries,
    dump_summaries,
    load_summary,
    series_codes,
    split_codes,
    summary_values,
    unique_codes,
)
from services.indicators.state import KINDS


def test_codes_round_trip_and_sort_by_indicator_first():
    ind, unit, cadence, period = [3, 3, 0, 999_999], [7, 65_535, 1, 0], [4, 0, 2, 1], [16_777_215, 0, 5, 2]
    codes = series_codes(ind, unit, cadence, period)
    assert [a.tolist() for a in split_codes(codes)] == [ind, unit, cadence, period]
    assert np.argsort(codes).tolist() == [2, 0, 1, 3]  # indicator, then unit


def test_unique_codes_equals_numpy_unique():
    rng = np.random.default_rng(7)
    parts = [rng.integers(0, 1 << 50, n) for n in (0, 1, 500, 3000)]
    parts.append(parts[3][:700])
    assert np.array_equal(unique_codes(*parts), np.unique(np.concatenate(parts)))
    assert len(unique_codes()) == 0


def test_batches_added_to_summaries_equal_the_state_objects():
    """Random batches of (code, n, total, low, high) added to a table and to one state object per series and
    measure: the same values and dumps, and what is dumped loads back to the same summary."""
    rng = random.Random(3)
    table = Summaries()
    objects: dict[tuple[int, str], object] = {}
    kinds = list(SUMMARISED)
    kind_of = {c: kinds[c % len(kinds)] for c in range(0, 4000, 7)}
    for _ in range(30):
        codes = sorted(rng.sample(sorted(kind_of), rng.randint(1, 200)))
        n = np.array([rng.randint(1, 5) for _ in codes], np.int64)
        total = np.array([round(rng.uniform(-50, 50), 2) for _ in codes])
        low = np.array([rng.uniform(-50, 0) for _ in codes])
        high = np.array([rng.uniform(0, 50) for _ in codes])
        table.add(np.array(codes, np.int64), n, total, low, high)
        for i, c in enumerate(codes):
            st = objects.get(c)
            if st is None:
                st = objects[c] = KINDS[kind_of[c]]()
            st.add_summary(int(n[i]), float(total[i]), float(low[i]), float(high[i]))  # type: ignore[attr-defined]
    assert table.codes.tolist() == sorted(objects)
    kind = np.array([SUMMARISED[kind_of[c]] for c in table.codes.tolist()])
    c = table.cols
    values = summary_values(kind, c["n"], c["total"], c["low"], c["high"], np.ones(len(kind)))
    dumps = dump_summaries(kind, c["n"], c["total"], c["low"], c["high"])
    for i, code in enumerate(table.codes.tolist()):
        st = objects[code]
        assert values[i] == st.value()  # type: ignore[attr-defined]
        assert msgspec.json.decode(dumps[i]) == st.dump()  # type: ignore[attr-defined]
        n_, total_, low_, high_ = load_summary(kind_of[code], msgspec.json.decode(dumps[i]))
        assert n_ == c["n"][i]
        if kind_of[code] == "min":
            assert low_ == c["low"][i]
        elif kind_of[code] == "max":
            assert high_ == c["high"][i]
        elif kind_of[code] != "count":
            assert total_ == c["total"][i]


def test_a_series_without_observations_has_no_value():
    kind = np.array([SUMMARISED[k] for k in ("count", "sum", "avg", "min", "max", "on_time_rate")])
    zeros = np.zeros(len(kind))
    value = summary_values(
        kind,
        zeros.astype(np.int64),
        zeros,
        np.full(len(kind), np.inf),
        np.full(len(kind), -np.inf),
        zeros + 1,
    )
    assert np.isnan(value).all()


def test_keep_drops_rows_and_put_replaces_values():
    t = Summaries()
    t.put(np.array([1, 5, 9], np.int64), n=np.array([1, 2, 3]), at=np.array([10, 10, 10]))
    t.put(np.array([5, 7], np.int64), n=np.array([20, 30]), at=np.array([11, 11]))
    assert t.codes.tolist() == [1, 5, 7, 9] and t.cols["n"].tolist() == [1, 20, 30, 3]
    assert (
        t.keep(t.codes != 7) == 1 and t.codes.tolist() == [1, 5, 9] and t.cols["at"].tolist() == [10, 11, 10]
    )
