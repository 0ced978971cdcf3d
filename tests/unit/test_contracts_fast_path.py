"""The typed fast path of Contracts.decode gives exactly what the JSON-Schema path gives, or steps aside.

The fast path (msgspec decoding into a struct built from the envelope schema) is what the indicators worker
runs on nearly every record; it must accept no event the schemas reject and must decode what it accepts
identically. Whenever a record holds anything invalid it returns None and the schema path names the reasons.
"""

from __future__ import annotations

import copy
import json
import random

import pytest

from ioccore.contracts import CloudEvent, load_contracts

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


def _same(fast: list[CloudEvent], checked: list) -> None:
    assert all(isinstance(c, CloudEvent) for c in checked), [
        c for c in checked if not isinstance(c, CloudEvent)
    ]
    assert fast == checked


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
    fast = CONTRACTS._fast(raw)
    assert fast is not None and len(fast) == 20
    _same(fast, list(CONTRACTS._checked(raw)))
    bad = copy.deepcopy(batch)
    bad[7]["subject"] = "Thu Dau Mot"
    raw = json.dumps(bad).encode()
    assert CONTRACTS._fast(raw) is None
    decoded = list(CONTRACTS.decode(raw))
    assert [type(d).__name__ for d in decoded].count("Rejection") == 1
    assert "subject" in decoded[7].reason
