"""Every example against its schema; bad events rejected with reasons a person can act on."""

import copy
import json
from pathlib import Path

import pytest

from ioccore.contracts import CloudEvent, Contracts, Rejection, type_name_for
from ioccore.errors import ContractError
from ioccore.settings import get_settings

CONTRACTS = Contracts(get_settings().contracts_dir)
EXAMPLES = list(CONTRACTS.examples())


def test_there_are_examples_and_types():
    assert CONTRACTS.types
    assert EXAMPLES


@pytest.mark.parametrize(
    ("path", "event"), EXAMPLES, ids=[str(p.relative_to(CONTRACTS.events_dir)) for p, _ in EXAMPLES]
)
def test_every_example_validates_and_decodes(path: Path, event):
    items = event if isinstance(event, list) else [event]
    for item in items:
        assert CONTRACTS.check(item) is None, f"{path}: {CONTRACTS.check(item)}"
        assert item["type"].split(".")[2] == path.parent.parent.name, (
            f"{path}: example of another field's type"
        )
    decoded = list(CONTRACTS.decode(json.dumps(event).encode()))
    assert all(isinstance(d, CloudEvent) for d in decoded)


def test_every_type_has_an_example():
    covered = set()
    for _, event in EXAMPLES:
        for item in event if isinstance(event, list) else [event]:
            covered.add(item["type"])
    assert set(CONTRACTS.types) - covered == set()


def _example() -> dict:
    return copy.deepcopy(next(e for p, e in EXAMPLES if p.name == "dossier.received.json"))


def _reason(event) -> str:
    [item] = CONTRACTS.decode(json.dumps(event).encode())
    assert isinstance(item, Rejection)
    return item.reason


def test_missing_data_field_is_named():
    e = _example()
    del e["data"]["due_at"]
    assert _reason(e) == "data of vn.binhduong.admin_procedures.dossier.received: data lacks required due_at"


def test_enum_violation_is_named():
    e = _example()
    e["data"]["channel"] = "fax"
    assert "data.channel" in _reason(e)


def test_unknown_type_is_named():
    e = _example()
    e["type"] = "vn.binhduong.land.unicorn.sighted"
    assert (
        _reason(e)
        == "unknown event type 'vn.binhduong.land.unicorn.sighted': no schema under contracts/events/"
    )


def test_time_without_offset_is_refused():
    e = _example()
    e["time"] = "2026-01-05T08:15:00"
    assert "event.time" in _reason(e)


def test_subject_must_be_an_administrative_unit_code():
    e = _example()
    e["subject"] = "Thu Dau Mot"
    assert "event.subject" in _reason(e)


def test_not_json_is_rejected_with_the_bytes_kept():
    [item] = CONTRACTS.decode(b"\xff\xfe not json")
    assert isinstance(item, Rejection)
    assert item.raw == b"\xff\xfe not json"
    assert "not valid UTF-8 JSON" in item.reason


def test_batch_record_keeps_good_events_and_rejects_bad_ones_by_position():
    good = _example()
    bad = _example()
    bad["id"] = ""
    out = list(CONTRACTS.decode(json.dumps([good, bad, 7]).encode()))
    assert isinstance(out[0], CloudEvent)
    assert isinstance(out[1], Rejection) and out[1].position == 1 and "event.id" in out[1].reason
    assert isinstance(out[2], Rejection) and out[2].position == 2
    assert json.loads(out[1].raw)["id"] == ""


def test_time_is_timezone_aware_and_kept():
    [ev] = CONTRACTS.decode(json.dumps(_example()).encode())
    assert ev.time.utcoffset().total_seconds() == 7 * 3600


def test_type_name_follows_the_path():
    d = CONTRACTS.events_dir
    assert type_name_for(d / "land" / "permit.issued.schema.json", d) == "vn.binhduong.land.permit.issued"
    with pytest.raises(ContractError):
        type_name_for(d / "land" / "x" / "permit.issued.schema.json", d)
