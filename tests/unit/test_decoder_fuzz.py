"""Hostile input to the event decoder (property-based): whatever bytes arrive, `Contracts.decode` never raises;
each event comes back as a CloudEvent or a Rejection with a reason, and the typed fast path never decides
differently from the schema path."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ioccore.contracts import CloudEvent, Rejection, load_contracts

CONTRACTS = load_contracts()
EXAMPLES = [e for _, doc in CONTRACTS.examples() for e in (doc if isinstance(doc, list) else [doc])]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=30,
)


def _check(raw: bytes) -> None:
    decoded = list(CONTRACTS.decode(raw))
    if raw.strip() != b"[]":  # an empty batch holds no event to keep
        assert decoded, "a record yields at least one event or one rejection"
    for item in decoded:
        assert isinstance(item, CloudEvent | Rejection)
        if isinstance(item, Rejection):
            assert item.reason.strip()
    fast = CONTRACTS._fast(raw)
    if fast is not None:
        assert fast == list(CONTRACTS._checked(raw))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_any_bytes(raw):
    _check(raw)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json(value):
    _check(json.dumps(value).encode())


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(EXAMPLES),
    st.lists(
        st.tuples(st.sampled_from(sorted({k for e in EXAMPLES for k in e} | {"x"})), json_values), max_size=3
    ),
    st.lists(st.tuples(st.text(max_size=20), json_values), max_size=2),
    st.booleans(),
)
def test_mutated_examples_in_and_out_of_batches(example, envelope_changes, data_changes, as_batch):
    event = json.loads(json.dumps(example))
    for key, value in envelope_changes:
        event[key] = value
    if isinstance(event.get("data"), dict):
        for key, value in data_changes:
            event["data"][key] = value
    raw = json.dumps([example, event] if as_batch else event).encode()
    _check(raw)
    # "SQL metacharacters" and odd text survive as data, never as syntax: decoding is pure
    text = json.dumps(event).replace('"', "'")
    _check(text.encode("utf-8", "surrogatepass"))
