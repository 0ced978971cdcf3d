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
