"""The typed fast path of Contracts.decode gives exactly what the JSON-Schema path gives, or steps aside.

The fast path (msgspec decoding into structs built from the envelope and data schemas) is what the indicators worker
runs on nearly every record; it must accept no event the schemas reject and must decode what it accepts
identically. Whenever a record holds anything invalid it returns None and the schema path names the reasons.
The data of each type is checked by msgspec structs derived from its schema (ioccore.contracts.data_type);
the tests below hold them to fastjsonschema's reading of the same schema, value by value.
"""

from __future__ import annotations

import copy
import itertools
import json
import random
import re

import fastjsonschema
import msgspec
import pytest
from fastjsonschema.draft07 import CodeGeneratorDraft07
from hypothesis import given, settings
from hypothesis import strategies as st

from ioccore.contracts import MAX_RECORD_BYTES, CloudEvent, Unmapped, data_type, load_contracts

CONTRACTS = load_contracts()
EXAMPLES = [e for _, doc in CONTRACTS.examples() for e in (doc if isinstance(doc, list) else [doc])]


def _mutations(event: dict) -> list[dict]:
    """Valid and invalid variants of an event, near the edges of the envelope schema."""
    out = []

    def variant(**changes):
        e = copy.deepcopy(event)
        for k, v in changes.items():
            if v is KeyError:
                e.pop(k, None)
            else:
                e[k] = v
        out.append(e)

    variant()
    variant(subject="7")
    variant(subject="79")
    variant(subject="1234")
    variant(subject=74)
    variant(time="2026-01-05 08:15:00+07:00")  # space: msgspec alone would take it, the schema does not
    variant(time="2026-01-05t08:15:00z")
    variant(time="2026-01-05T08:15:00")  # no offset
    variant(time="2026-02-30T08:15:00+07:00")
    variant(time="2026-01-05T08:15:00.123456789+07:00")
    variant(time="2026-01-05T08:15:00.1234567+07:00")
    variant(time="2026-01-05T08:15:00+0700")
    variant(time="2026-01-05T08:15:60+07:00")  # a leap second: the schema's regex takes it
    variant(time="2026-01-05T24:00:00+07:00")
    variant(time="2026-01-05T08:15:00+24:00")
    variant(time="2026-01-05T08:15:00-00:00")
    variant(time="2026-01-05T08:15+07:00")
    variant(time="2024-02-29T08:15:00Z")
    variant(time="2026-02-29T08:15:00Z")
    variant(time="2026-01-05T08:15:00+07:00\n")
    variant(time="\u0662\u0660\u0662\u0666-01-05T08:15:00+07:00")  # Arabic-Indic digits are \\d to re
    variant(
        subject="74\n"
    )  # Python's `$` takes a trailing newline; the schema (fastjsonschema: \\Z) does not
    variant(source=event["source"] + "\n")
    variant(id="\U0001f600" * 128)  # maxLength counts code points
    variant(id="\U0001f600" * 129)
    variant(id="")
    variant(id="x" * 129)
    variant(source="has space")
    variant(type="vn.binhduong.nothing.here")
    variant(type="VN.binhduong.land.x")
    variant(specversion="0.3")
    variant(datacontenttype=None)
    variant(datacontenttype="text/plain")
    variant(datacontenttype=KeyError)
    variant(dataschema="https://example.org/s.json")
    variant(dataschema=None)
    variant(data=None)
    variant(data=[])
    variant(subject=KeyError)
    variant(time=KeyError)
    variant(ext1="scalar extension")  # valid, but only the schema path knows extensions
    variant(ext1={"not": "scalar"})
    variant(**{"Bad-Name": 1})
    e = copy.deepcopy(event)
    if e.get("data"):
        key = sorted(e["data"])[0]
        e["data"][key] = {"unexpected": ["structure"]}
        out.append(e)
        e = copy.deepcopy(event)
        e["data"]["zz_unknown_property"] = 1
        out.append(e)
    return out


def _typed(value):
    """The value with each scalar's type kept beside it: 1, 1.0 and True are == in Python, not here."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return (type(value).__name__, value)


def _same(fast: list[CloudEvent], checked: list) -> None:
    assert all(isinstance(c, CloudEvent) for c in checked), [
        c for c in checked if not isinstance(c, CloudEvent)
    ]
    assert fast == checked
    assert [_typed(f.data) for f in fast] == [_typed(c.data) for c in checked]
    assert [(f.time, f.time.utcoffset()) for f in fast] == [(c.time, c.time.utcoffset()) for c in checked]


@pytest.mark.parametrize("event", EXAMPLES, ids=[e["type"] for e in EXAMPLES])
def test_fast_path_agrees_with_the_schema_path_on_every_variant(event):
    taken = 0
    for variant in _mutations(event):
        for raw in (json.dumps(variant).encode(), json.dumps([event, variant]).encode()):
            fast = CONTRACTS._fast(raw)
            checked = list(CONTRACTS._checked(raw))
            if fast is None:
                continue  # the schema path decides (and is what decode() returns)
            _same(fast, checked)
            assert list(CONTRACTS.decode(raw)) == fast
            taken += 1
    assert taken >= 2, "the unchanged example (alone and in a batch) takes the fast path"


def test_fast_path_takes_the_common_case_and_steps_aside_for_bad_records():
    rng = random.Random(7)
    batch = rng.sample(EXAMPLES, 20)
    raw = json.dumps(batch).encode()
    fast = CONTRACTS.valid_events(raw)
    assert fast is not None and len(fast) == 20
    _same(fast, list(CONTRACTS._checked(raw)))
    assert list(CONTRACTS.decode(raw)) == fast
    bad = copy.deepcopy(batch)
    bad[7]["subject"] = "Thu Dau Mot"
    raw = json.dumps(bad).encode()
    assert CONTRACTS.valid_events(raw) is None
    # what decode() refuses whole is not taken either: a tombstone, a record over the size limit
    assert CONTRACTS.valid_events(None) is None
    huge = json.dumps([batch[0]] * (MAX_RECORD_BYTES // len(json.dumps(batch[0])) + 1)).encode()
    assert CONTRACTS.valid_events(huge) is None
    assert [type(d).__name__ for d in CONTRACTS.decode(huge)] == ["Rejection"]
    decoded = list(CONTRACTS.decode(raw))
    assert [type(d).__name__ for d in decoded].count("Rejection") == 1
    assert "subject" in decoded[7].reason


def test_duplicate_keys_are_read_as_the_schema_path_reads_them():
    """JSON with a key twice: the plain decoder keeps the last value; the typed checker must not validate one
    value and hand on another (a different `type` twice, or a bad value hidden behind a good one)."""
    example = next(e for e in EXAMPLES if e["type"] == "vn.binhduong.environment.wastewater.monitored")
    other = next(e for e in EXAMPLES if e["type"] == "vn.binhduong.admin_procedures.dossier.received")
    body = json.dumps(example)[1:-1]
    data = json.dumps(example["data"])[1:-1]
    records = [
        "{" + body + f', "type": "{other["type"]}"}}',
        f'{{"type": "{other["type"]}", ' + body + "}",
        "{" + body + ', "data": ' + json.dumps(other["data"]) + "}",
        "{" + body + ', "subject": "Thu Dau Mot"}',
        '{"subject": "Thu Dau Mot", ' + body + "}",
        "{" + body.replace('"data": {', '"data": {"flow_m3": -1, ') + "}",
        "{" + body.replace('"data": {', '"data": {"flow_m3": "x", ') + "}",
        "{" + body.replace(data, data + ', "flow_m3": -1') + "}",
        "{" + body.replace(data, data + ', "station_id": "s2"') + "}",
    ]
    for text in records:
        raw = text.encode()
        fast = CONTRACTS._fast(raw)
        checked = list(CONTRACTS._checked(raw))
        if fast is not None:
            _same(fast, checked)
    # a key twice with valid values is no reason to step aside: the last one counts, as in the schema path
    assert CONTRACTS._fast(records[-1].encode())[0].data["station_id"] == "s2"


# -- the data of every type, value by value ---------------------------------------------------------------------
# For each type, the first example's data with one property (at any depth) removed or set to values near every
# edge its schema draws: wrong JSON types, bounds, lengths, enum values and near misses, pattern breakers. The fast
# path must take what the schema takes and refuse what it refuses. The one knowing exception: a float with an
# integral value (5.0) where the schema says "integer", which JSON Schema accepts and msgspec's int does not; the
# fast path refuses it and the schema path takes it (slower, same result).

BY_TYPE = {e["type"]: e for e in reversed(EXAMPLES)}
WRONG_KINDS = [None, True, False, 0, 1, -1, 5.0, 0.5, -0.0, 2**63, 2**64, -(2**63) - 1, 2**200, 1e308, -1e308]
WRONG_KINDS += [5e-324, "", "x", [], {}, ["x"], {"x": 1}]


def _near(schema: dict, example) -> list:
    """Values at and just past the edges of one property's schema."""
    out: list = []
    kinds = schema.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else kinds
    out += [float(v) for v in schema.get("enum", []) if type(v) is int]
    for v in schema.get("enum", []):
        out += [v, f"{v}\n", f" {v}", str(v).upper(), f"{v}x"] if isinstance(v, str) else [v, str(v)]
    out.append("zz_off_enum")
    lo, hi = schema.get("minLength"), schema.get("maxLength")
    for n in {x for x in (lo, hi) if x is not None} | {0, 1}:
        for fill in ("x", "\U0001f600", "é"):
            out += [fill * max(n - 1, 0), fill * n, fill * (n + 1)]
    if isinstance(example, str):
        out += [
            example,
            example + "\n",
            "\n" + example,
            example + "x",
            "x" + example,
            example[:-1],
            example.upper(),
        ]
        out += [example.lower(), example[:hi] if hi else example, (example * 50)[: (hi or 10) + 1]]
    if "format" in schema:
        out += [
            "2026-01-05T08:15:00+07:00",
            "2026-01-05t08:15:00z",
            "2026-01-05T08:15:00",
            "2026-02-29T00:00:00Z",
        ]
        out += [
            "2024-02-29",
            "2026-02-29",
            "2026-01-05",
            "2026-01-05\n",
            "2026-13-01",
            "2026-01-05T08:15:00+07:00\n",
        ]
    for bound in (schema.get("minimum"), schema.get("maximum")):
        if bound is not None:
            out += [
                bound,
                bound - 1,
                bound + 1,
                bound - 0.5,
                bound + 0.5,
                float(bound),
                bound - 1e-9,
                bound + 1e-9,
            ]
    if "integer" in kinds or "number" in kinds:
        out += [7, 7.0, 7.25, 10**30, float(10**30)]
    if "array" in kinds:
        items = schema.get("items", {})
        enum = items.get("enum", ["x"])
        out += [[], list(enum), [enum[0], "bad"], [1], [None], enum[0], [[enum[0]]]]
    return out + WRONG_KINDS


def _integral_float_for_integer(schema: dict, value) -> bool:
    kinds = schema.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else kinds
    ints = "integer" in kinds or any(type(v) is int for v in schema.get("enum", []))
    return isinstance(value, float) and value.is_integer() and ints


def _data_variants(schema: dict, data) -> list[tuple[str, object, bool]]:
    """(where, data variant, whether the fast path may refuse it although the schema takes it)."""
    out: list[tuple[str, object, bool]] = [("as is", data, False), ("{}", {}, False)]
    if not isinstance(data, dict):
        return out
    out.append(("extra", {**data, "zz_unknown_property": 1}, False))
    props = schema.get("properties", {})
    for name in sorted(set(props) | set(schema.get("required", []))):
        sub = props.get(name, {})
        removed = {k: v for k, v in data.items() if k != name}
        out.append((f"{name} removed", removed, False))
        for value in _near(sub, data.get(name)):
            out.append(
                (f"{name}={value!r:.40}", {**data, name: value}, _integral_float_for_integer(sub, value))
            )
        if sub.get("type") == "object":
            nested = data.get(name) if isinstance(data.get(name), dict) else {}
            for where, variant, lenient in _data_variants(sub, nested):
                out.append((f"{name}.{where}", {**data, name: variant}, lenient))
    return out


@pytest.mark.parametrize("etype", sorted(BY_TYPE))
def test_fast_path_takes_exactly_what_each_data_schema_takes(etype):
    example = BY_TYPE[etype]
    schema = CONTRACTS.types[etype].schema
    taken = refused = 0
    for where, data, may_refuse in _data_variants(schema, example["data"]):
        event = {**example, "data": data}
        raw = json.dumps(event, ensure_ascii=False).encode()
        fast = CONTRACTS._fast(raw)
        [checked] = CONTRACTS._checked(raw)
        if fast is None:
            refused += 1
            assert not isinstance(checked, CloudEvent) or may_refuse, (
                f"{where}: valid, yet refused by the fast path"
            )
        else:
            taken += 1
            assert isinstance(checked, CloudEvent), (
                f"{where}: the fast path took what the schema refuses: {checked}"
            )
            _same(fast, [checked])
            assert _typed(fast[0].data) == _typed(data)  # nothing coerced: an int stays an int
    assert taken >= 1 and refused >= 1


def test_data_of_nearly_every_type_is_checked_by_msgspec():
    """Only the types whose schema uses what msgspec types cannot state keep fastjsonschema in the fast path."""
    by_schema = set(CONTRACTS._typed.by_schema.values())
    assert by_schema == {
        "vn.binhduong.hotline.call.forwarded",
        "vn.binhduong.alerts.command",
    }  # oneOf, minProperties
    assert len(CONTRACTS.types) - len(by_schema) == 150


# -- data_type on schema forms the contracts use rarely or not yet --------------------------------------------

DRAFT7 = "http://json-schema.org/draft-07/schema#"
SCHEMAS = [
    {"type": "object", "properties": {"n": {"enum": [1, 2, None, "a"]}}, "additionalProperties": False},
    {"type": "object", "properties": {"n": {"type": "string", "enum": ["a", "bb", 3], "maxLength": 1}}},
    {"type": "object", "properties": {"n": {"type": "number", "minimum": 0.5, "maximum": 2.5}}},
    {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": -1.5, "maximum": 9007199254740993}},
    },
    {"type": "object", "properties": {"n": {"type": ["integer", "null"], "maximum": 3}}, "required": ["n"]},
    {
        "type": "object",
        "properties": {"n": {"type": ["string", "number", "boolean", "null", "array", "object"]}},
        "additionalProperties": False,
    },
    {"type": "object", "properties": {"n": {"type": "string", "pattern": "^a\\$?$|^b"}}},
    {"type": "object", "properties": {"n": {"type": "string", "pattern": "x\\$"}}},
    {"type": "object", "properties": {"n": {"type": "string", "format": "date"}}},
    {"type": "object", "properties": {"n": {"type": "string", "format": "email"}}},
    {"type": "object", "properties": {"n": {"type": "string", "format": "no-such-format"}}},
    {"type": "object", "properties": {"n": {"type": "array", "items": {"type": "integer", "minimum": 0}}}},
    {"type": "object", "properties": {"n": {"type": "array"}}, "required": ["n", "m"]},
    {
        "type": "object",
        "properties": {"n": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 2}},
    },
    {
        "type": "object",
        "properties": {"n": {"type": "object", "properties": {"x": {"type": "boolean"}}, "required": ["x"]}},
        "additionalProperties": False,
    },
    {"type": "object", "properties": {"n": {"description": "anything"}}, "additionalProperties": False},
]
UNMAPPED = [
    {"type": "object", "properties": {"n": {"type": "string", "pattern": "^a", "format": "date"}}},
    {"type": "object", "properties": {"n": {"type": "number", "maximum": 9007199254740993}}},
    {"type": "object", "properties": {"n": {"type": ["integer", "number"]}}},
    {"type": "object", "properties": {"n": {"type": "array", "items": [{"type": "string"}]}}},
    {"type": "object", "properties": {"n": {"type": "object", "minProperties": 1}}},
    {"type": "object", "properties": {"n": {"type": "array", "minItems": 1.5}}},
    {"type": "object", "properties": {"n": {"enum": [1.5]}}},
    {"type": "object", "properties": {"n": {"minLength": 1}}},
    {"type": "object", "properties": {"n": {"type": "string", "format": "regex"}}},
    {"type": "object", "required": ["n"], "additionalProperties": False},
    {"type": "object", "additionalProperties": {"type": "string"}},
    {"type": "object", "oneOf": [{"required": ["a"]}, {"required": ["b"]}]},
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([0.5, 1.0, 2.5, 2.0, 3.0, -1.5, -1.0, 9007199254740992.0, 2**53 + 1, 2**53 + 2])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(
        ["", "a", "a\n", "b", "bb", "a$", "ax$", "x$", "x\\$", "2024-02-29", "2026-02-29", "2026-01-05\n"]
    )
    | st.sampled_from(["a@b.c", "a@b", "a..b@c.d", "2026-01-05T08:15:00Z"])
    | st.text(max_size=4)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["x", "m", "n", "y"]), inner, max_size=3)
    ),
    max_leaves=8,
)


CANDIDATES = [None, True, False, -3, -2, -1, 0, 1, 2, 3, 4, -1.5, -1.0, 0.4, 0.5, 1.0, 2.0, 2.5, 2.6, 3.0]
CANDIDATES += [
    2**53,
    2**53 + 1,
    2**53 + 2,
    float(2**53),
    2**64,
    "",
    "a",
    "a\n",
    "b",
    "bb",
    "a$",
    "ax$",
    "x$",
    "x\\$",
]
CANDIDATES += ["2024-02-29", "2026-02-29", "2026-01-05\n", "a@b.c", "a@b", [], [0], [-1], [1.0], ["a"]]
CANDIDATES += [[0, 1], [0, 1, 2], [0, "a"]]
CANDIDATES += [{}, {"x": True}, {"x": 1}, {"x": True, "y": 1}, {"y": 1}]


def _agree(schema: dict, validate, decoder, data) -> bool:
    """Whether the schema takes `data`, after asserting the typed decoder agrees (or is only stricter, by an
    integral float where the schema says integer)."""
    raw = json.dumps(data).encode()
    value = msgspec.json.decode(raw)
    try:
        validate(value)
        valid = True
    except fastjsonschema.JsonSchemaValueException:
        valid = False
    try:
        decoder.decode(raw)
        typed = True
    except msgspec.ValidationError:
        typed = False
    assert typed <= valid, f"typed path took what the schema refuses: {data!r}"
    if valid and not typed:
        assert any(isinstance(v, float) and v.is_integer() for v in _leaves(value)), f"refused valid {data!r}"
    return valid


@pytest.mark.parametrize("schema", SCHEMAS, ids=[json.dumps(s)[:60] for s in SCHEMAS])
def test_data_type_accepts_exactly_what_fastjsonschema_accepts(schema):
    schema = {"$schema": DRAFT7, **schema}
    validate = fastjsonschema.compile(schema)
    decoder = msgspec.json.Decoder(data_type(schema, "Synthetic"))
    seen = {True: 0, False: 0}
    for value in CANDIDATES:
        for data in ({"n": value}, {"n": value, "m": value}, {"m": value}):
            seen[_agree(schema, validate, decoder, data)] += 1

    @settings(max_examples=300, deadline=None, database=None)
    @given(st.dictionaries(st.sampled_from(["n", "m", "x"]), json_values, max_size=3))
    def run(data):
        seen[_agree(schema, validate, decoder, data)] += 1

    run()
    assert seen[True] and seen[False], "the values drawn reach both sides of the schema"


def _leaves(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


@pytest.mark.parametrize("schema", UNMAPPED, ids=[json.dumps(s)[:60] for s in UNMAPPED])
def test_schema_forms_msgspec_cannot_state_keep_fastjsonschema(schema):
    with pytest.raises(Unmapped):
        data_type({"$schema": DRAFT7, **schema}, "Synthetic")


def test_time_is_taken_exactly_as_the_schema_takes_it():
    """The fast path leaves `time` to msgspec's RFC 3339 parser (and refuses a space) instead of the schema's
    date-time regex. Every combination of these parts, near each edge of either, must be decided the same way as
    on the schema path (regex, then msgspec's parse in to_event: year 0000, a leap second or Arabic-Indic digits
    pass the regex, not the parse, and are refused on both paths)."""
    example = BY_TYPE["vn.binhduong.environment.wastewater.monitored"]
    dates = ["2026-01-05", "2024-02-29", "2026-02-29", "1900-02-29", "2000-02-29", "0000-01-01", "2026-13-01"]
    dates += [
        "2026-00-10",
        "2026-04-31",
        "2026-04-30",
        "\u0662\u0660\u0662\u0666-01-05",
        "2026-1-05",
        "20260105",
    ]
    separators = ["T", "t", " ", "_", "", "TT", "\n"]
    clocks = [
        "08:15:00",
        "23:59:59",
        "24:00:00",
        "08:15:60",
        "08:15",
        "08:60:00",
        "8:15:00",
        "081500",
        "08:15:0x",
    ]
    fractions = ["", ".1", ".123456", ".1234567", ".9999999", ".", ".x", ",5", ".1.2"]
    offsets = [
        "",
        "Z",
        "z",
        "+07:00",
        "-07:00",
        "+0700",
        "+07",
        "+24:00",
        "+23:59",
        "+07:60",
        "+07:00Z",
        "+07:00 ",
    ]
    offsets += ["\n", "+07:00\n", "\x00+07:00", "+07:0", "+7:00", "-00:00", "ZZ", "UTC"]
    regex = re.compile(CodeGeneratorDraft07.FORMAT_REGEXS["date-time"])
    taken = 0
    numbers = ["1700000000", "1700000000.5", "-1", "0", "1e9", "2026", "20260105081500", " 1700000000", "NaN"]
    for time in [
        *numbers,
        *("".join(p) for p in itertools.product(dates, separators, clocks, fractions, offsets)),
    ]:
        raw = json.dumps({**example, "time": time}).encode()
        fast = CONTRACTS._fast(raw)
        checked = list(CONTRACTS._checked(raw))
        assert (fast is not None) == isinstance(checked[0], CloudEvent), (time, checked)
        if fast is not None:
            taken += 1
            assert regex.search(time), f"fast path took {time!r}, which the date-time format refuses"
            _same(fast, checked)
    assert taken > 500
