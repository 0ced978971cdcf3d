"""Hostile input to the event decoder (property-based): whatever bytes arrive, `Contracts.decode` never raises;
each event comes back as a CloudEvent or a Rejection with a reason, and the typed fast path never decides
differently from the schema path (it may only refuse more: a float with an integral value where a data schema says
integer, which then takes the schema path)."""

from __future__ import annotations

import json

import msgspec
import pytest
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
        checked = list(CONTRACTS._checked(raw))
        assert fast == checked
        assert msgspec.json.encode(fast) == msgspec.json.encode(
            checked
        )  # same JSON types: 1, 1.0, true are ==


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


# -- every contract, one by one ------------------------------------------------------------------------------
# The tests above draw examples at random, so a given run may never touch some of the 152 types. Here each
# type's `data` schema is fuzzed on its own: every property (required or not) set to hostile values or removed.

BY_TYPE = {e["type"]: e for e in reversed(EXAMPLES)}  # the first example of each type
HOSTILE_TEXT = [
    "'; DROP TABLE indicator_values; --",
    "\\'",
    "%(x)s",
    "{x}",
    "\u2018\u2019\u201c\u201d\u02bc",
    "\x00",
    "\ud800",
    "x" * 5000,
    "",
]
hostile_values = (
    st.sampled_from(HOSTILE_TEXT)
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.sampled_from([2**63, -(2**63) - 1, 2**64, 1e308, -0.0, 5e-324])
    | json_values
)


def _data_properties(etype: str) -> list[str]:
    schema = CONTRACTS.types[etype].schema
    return sorted(set(schema.get("properties", {})) | set(schema.get("required", [])))


def test_every_event_type_is_fuzzed_below():
    assert set(BY_TYPE) == set(CONTRACTS.types), "each contract has an example to start from"
    assert {"vn.binhduong.indicators.values.updated", "vn.binhduong.alerts.command"} <= set(BY_TYPE)
    assert sum(t.startswith("vn.binhduong.hotline.") for t in BY_TYPE) >= 10


@pytest.mark.parametrize("etype", sorted(BY_TYPE))
def test_every_contract_under_hostile_data(etype):
    example = BY_TYPE[etype]
    props = _data_properties(etype)
    required = set(CONTRACTS.types[etype].schema.get("required", []))
    assert CONTRACTS.check(example) is None and props

    @settings(max_examples=25, deadline=None, database=None)
    @given(st.lists(st.tuples(st.sampled_from(props or ["x"]), hostile_values | st.just(DELETE)), max_size=4))
    def run(changes):
        event = json.loads(json.dumps(example))
        for key, value in changes:
            if value is DELETE:
                event["data"].pop(key, None)
            else:
                event["data"][key] = value
        raw = json.dumps(event, ensure_ascii=False).encode("utf-8", "surrogatepass")
        _check(raw)
        [item] = CONTRACTS.decode(raw)
        if isinstance(item, CloudEvent):
            # taken as it came: nothing coerced, nothing dropped; and the contract really allows it
            assert item.data == event["data"] and CONTRACTS.check(event) is None
            assert msgspec.json.encode(item.data) == msgspec.json.encode(event["data"])
            assert required <= set(event["data"])
            # the typed fast path takes it too, unless it holds an integral float (5.0: JSON Schema's integer)
            if CONTRACTS._fast(raw) is None:
                assert _holds_integral_float(event["data"]), event["data"]

    run()


def _holds_integral_float(value) -> bool:
    if isinstance(value, dict):
        return any(map(_holds_integral_float, value.values()))
    if isinstance(value, list):
        return any(map(_holds_integral_float, value))
    return isinstance(value, float) and value.is_integer()


def test_each_required_data_property_removed_is_named():
    for etype, example in BY_TYPE.items():
        for prop in CONTRACTS.types[etype].schema.get("required", []):
            event = json.loads(json.dumps(example))
            del event["data"][prop]
            [item] = CONTRACTS.decode(json.dumps(event).encode())
            assert isinstance(item, Rejection), (etype, prop)
            assert prop in item.reason and etype in item.reason, item.reason


def test_numbers_json_does_not_know_are_rejected_not_crashed():
    example = BY_TYPE["vn.binhduong.indicators.values.updated"]
    for literal in ("NaN", "Infinity", "-Infinity", "1e999", "9" * 5000):
        event = json.loads(json.dumps(example))
        event["data"]["values"][0]["value"] = "__N__"
        raw = json.dumps(event).replace('"__N__"', literal).encode()
        items = list(CONTRACTS.decode(raw))
        assert len(items) == 1
        if literal in ("NaN", "Infinity", "-Infinity"):  # not JSON: the whole record is refused with a reason
            assert isinstance(items[0], Rejection) and "JSON" in items[0].reason


def test_bytes_msgspec_does_not_call_a_decode_error_are_rejections():
    """UTF-8-encoded surrogates (msgspec raises UnicodeDecodeError) and nesting past the recursion limit
    (RecursionError) once escaped `decode` and would have stopped a worker."""
    example = json.dumps(BY_TYPE["vn.binhduong.indicators.values.updated"]).encode()
    for raw in (
        example.replace(b'"day"', b'"d\xed\xa0\x80y"'),
        b'{"id": "\xed\xbf\xbf"}',
        b"[" * 10_000 + b"]" * 10_000,
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        example[:-1] + b', "x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
    ):
        [item] = CONTRACTS.decode(raw)
        assert isinstance(item, Rejection) and item.raw == raw
        assert "UTF-8" in item.reason or "nested too deeply" in item.reason, item.reason
    [item] = CONTRACTS.decode(None)  # a tombstone
    assert isinstance(item, Rejection) and "tombstone" in item.reason and item.raw == b""


DELETE = object()
