"""The exact quantile state (services.indicators.state.Quantile) against the definition `ioc reconcile` checks
it by (ClickHouse's quantileExact: the element at index floor(q·n) of the sorted values): pure logic."""

from __future__ import annotations

import random

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.indicators.state import Quantile, load_state, merged

NUMBERS = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)
BATCHES = st.lists(st.lists(NUMBERS | st.integers(-(10**9), 10**9), max_size=40), max_size=8)


def _exact(values: list[float], q: float) -> float | None:
    s = sorted(float(v) for v in values)
    return s[min(int(q * len(s)), len(s) - 1)] if s else None


@settings(max_examples=200, deadline=None)
@given(batches=BATCHES, q=st.sampled_from([0.0, 0.1, 0.5, 0.9, 0.95, 1.0]))
def test_batches_added_give_the_exact_quantile_and_survive_a_store(batches, q):
    state = Quantile()
    state.q = q
    for batch in batches:
        state.add(batch)
    every = [v for b in batches for v in b]
    assert state.value() == _exact(every, q)
    assert state.count() == len(every)
    stored = msgspec.json.decode(msgspec.json.encode(state.dump()))  # as the checkpoint row holds it
    back = load_state("quantile", stored)
    back.q = q
    assert back.value() == state.value() and back.count() == state.count()
    assert back.values.tolist() == sorted(float(v) for v in every)


@settings(max_examples=100, deadline=None)
@given(parts=st.lists(BATCHES, min_size=1, max_size=4))
def test_partitions_merge_into_the_quantile_of_all_their_values(parts):
    states = []
    for batches in parts:
        s = Quantile()
        s.q = 0.9
        for batch in batches:
            s.add(batch)
        states.append(s)
    before = [s.values.tolist() for s in states]
    every = [v for batches in parts for b in batches for v in b]
    assert merged(states).value() == _exact(every, 0.9)
    assert [s.values.tolist() for s in states] == before, "merging changes none of the inputs"


def test_a_state_stored_by_the_older_worker_as_a_json_list_loads():
    values = [random.Random(3).uniform(0, 100) for _ in range(1001)]
    old = msgspec.json.decode(msgspec.json.encode(sorted(values)))
    state = load_state("quantile", old)
    assert state.value() == _exact(values, 0.5)
    assert msgspec.json.decode(msgspec.json.encode(state.dump())) != old  # stored anew as the array


def test_an_empty_state_has_no_value_and_a_damaged_one_is_refused():
    assert Quantile().value() is None
    assert load_state("quantile", Quantile().dump()).count() == 0
    with pytest.raises(ValueError):
        load_state("quantile", "not base64 of float64!")


def _store(state: Quantile, rows: dict[int, str], offset: int) -> dict:
    """One flush's write of a series, as write_partition does it: the segment row (kept as ReplacingMergeTree
    keeps it, by offset) and the manifest."""
    points, manifest = state.persist(offset)
    if points is not None:
        rows[offset] = points
    return msgspec.json.decode(msgspec.json.encode(manifest))  # as the partition's row holds it


def _restored(manifest: dict, rows: dict[int, str], q: float) -> Quantile:
    back = Quantile()
    back.q = q
    back.load_segments(manifest, [rows[o] for o, _ in manifest["segments"]])
    return back


@settings(max_examples=150, deadline=None)
@given(
    flushes=st.lists(st.lists(NUMBERS, max_size=30), min_size=1, max_size=60),
    restart_at=st.integers(0, 60),
)
def test_a_state_stored_in_segments_restores_exactly_at_every_flush(flushes, restart_at):
    rows: dict[int, str] = {}
    state = Quantile()
    state.q = 0.9
    every: list[float] = []
    for i, batch in enumerate(flushes):
        state.add(batch)
        every += batch
        manifest = _store(state, rows, offset=10 * (i + 1))
        back = _restored(manifest, rows, 0.9)
        assert back.values.tolist() == sorted(every)
        assert back.value() == _exact(every, 0.9)
        if i == restart_at:  # a restarted worker goes on from what it read back
            state = back
    n = max(len(every), 1)
    assert len(state.segments) <= n.bit_length() + 1


def test_a_growing_series_writes_what_it_added_not_its_whole_state():
    """A year's series: ~1 value a flush for 20,000 flushes. Stored whole each flush that is ~200 M values
    written; in segments each value is written a few times (log2 merges, and the base when outgrown)."""
    rows: dict[int, str] = {}
    state = Quantile()
    written = 0
    rng = random.Random(7)
    for i in range(20_000):
        state.add([rng.uniform(0, 100)])
        points, manifest = state.persist(i + 1)
        written += len(points) // 4 * 3 // 8 if points else 0  # values: base64 of 8 bytes a value
        if points:
            rows[i + 1] = points
    assert written < 20 * 20_000, written  # whole each flush: 200,010,000
    assert len(manifest["segments"]) <= 16
    assert _restored(manifest, rows, 0.5).value() == state.value()


def test_a_second_write_at_one_offset_supersedes_the_first():
    rows: dict[int, str] = {}
    state = Quantile()
    state.add([1.0, 2.0, 3.0])
    _store(state, rows, 5)
    state.add([4.0])
    _store(state, rows, 9)
    state.add([0.5])
    manifest = _store(state, rows, 9)  # the same offset again (written whole: it replaces the row at 9)
    assert _restored(manifest, rows, 0.0).values.tolist() == [0.5, 1.0, 2.0, 3.0, 4.0]


def test_segments_that_do_not_match_their_manifest_are_refused():
    rows: dict[int, str] = {}
    state = Quantile()
    state.add([1.0, 2.0])
    manifest = _store(state, rows, 3)
    manifest["n"] = 3
    with pytest.raises(ValueError, match="manifest"):
        _restored(manifest, rows, 0.5)


def test_a_state_stored_whole_by_the_older_worker_goes_on_in_segments():
    """A partition checkpointed before segments holds the whole array in its row: restored from it, the next
    flush writes the whole array as the base, and the series reads back from segments alone."""
    older = Quantile()
    older.add([5.0, 1.0, 3.0])
    state = load_state("quantile", msgspec.json.decode(msgspec.json.encode(older.dump())))
    state.add([2.0])
    rows: dict[int, str] = {}
    manifest = _store(state, rows, 40)
    assert manifest == {"segments": [[40, 4]], "n": 4}
    assert _restored(manifest, rows, 0.5).values.tolist() == [1.0, 2.0, 3.0, 5.0]
