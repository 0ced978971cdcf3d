"""Garbage on every input topic of every worker, on the real broker and ClickHouse 18.16: each nasty record
(tombstone, empty, not UTF-8, encoded surrogates, 10k-deep nesting, JSON that is no event, an unknown type, a
valid event of another topic's kind, SQL metacharacters, hostile keys) ends as a dead letter with a reason, and
the worker goes on: a valid record sent after the garbage is processed."""

from __future__ import annotations

import asyncio
import copy
import json
import time
import uuid
from pathlib import Path

import pytest

from ioccore.contracts import load_contracts
from ioccore.kafka import producer
from ioccore.testing import fresh_clickhouse, spawn_ioc, stop_processes
from ioccore.topics import (
    ALERT_COMMAND_RESULTS,
    ALERT_COMMANDS,
    DEADLETTER,
    EVENTS,
    HOTLINE_CALLS,
    INDICATORS,
)
from tests.hotline.test_worker_e2e import _read

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

CONTRACTS = load_contracts()
EXAMPLES = {
    e["type"]: e for _, doc in CONTRACTS.examples() for e in (doc if isinstance(doc, list) else [doc])
}
SQL = "'; DROP TABLE dead_letters; --"


def _unknown_type() -> bytes:
    e = copy.deepcopy(EXAMPLES["vn.binhduong.land.land_dispute.received"])
    e["type"] = "vn.binhduong.land.nothing_like_this"
    e["id"] = SQL
    return json.dumps(e).encode()


def _sql_strings(v):
    if isinstance(v, dict):
        return {k: _sql_strings(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_sql_strings(x) for x in v]
    return SQL if isinstance(v, str) else v


def _with_sql(etype: str) -> bytes:
    """An event of `etype` whose every string in data (nested ones too, e.g. the rows of values.updated) is
    SQL metacharacters: invalid for its contract."""
    e = copy.deepcopy(EXAMPLES[etype])
    e["data"] = _sql_strings(e["data"])
    e["id"] = f"sql-{uuid.uuid4().hex[:8]}"
    return json.dumps(e).encode()


# (key, value, dead letters it must give)
GARBAGE: list[tuple[bytes | None, bytes | None, int]] = [
    (b"tomb", None, 1),  # a tombstone (the compacted topics invite them)
    (None, b"", 1),
    (b"\xff\xfe", b"\xff\xfe\x00 not json", 1),
    (b"k", b'{"id": "\xed\xa0\x80"}', 1),  # UTF-8-encoded surrogate
    (b"k", b"[" * 10_000 + b"]" * 10_000, 1),
    (b"k", b'{"a":' * 10_000 + b"1" + b"}" * 10_000, 1),
    (b"k", b"null", 1),
    (b"k", b'[1, null, "x"]', 3),  # a batch: each element its own dead letter
    (b"k", b"NaN", 1),
    (b"k", b'{"value": 1e999}', 1),
    (b"k", b"\x00" * 64, 1),
    (SQL.encode(), _unknown_type(), 1),
]


async def _send(topic: str, records: list[tuple[bytes | None, bytes | None]]) -> None:
    async with producer() as p:
        futures = [await p.send(topic, value=v, key=k) for k, v in records]
        await asyncio.gather(*futures)


def _dead_letter_reasons() -> list[str]:
    return [dict(m.headers).get("reason", b"").decode() for m in asyncio.run(_read(DEADLETTER))]


def _wait(what: str, done, proc, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert proc.poll() is None, f"the worker died: {log.read_text(errors='replace')[-3000:]}"
        assert time.monotonic() < deadline, f"{what}: {log.read_text(errors='replace')[-3000:]}"
        time.sleep(0.5)


def _run(tmp_path: Path, service: str, env: dict[str, str], garbage_done, send_valid, valid_done) -> None:
    """Start `ioc SERVICE worker` over the garbage already sent; once it has dead-lettered it, send a valid
    record and wait until that is processed too (the worker alive all along)."""
    log = tmp_path / f"{service}.log"
    proc = spawn_ioc([service, "worker"], log, **env)
    try:
        _wait("dead letters", garbage_done, proc, log)
        send_valid()
        _wait("the valid record after the garbage", valid_done, proc, log)
    finally:
        stop_processes([proc])


@pytest.fixture
def database(stack_env, clean_topics, tmp_path):
    with fresh_clickhouse("server", tmp_path) as ch:
        yield ch


def _garbage_and(extra: list[tuple[bytes | None, bytes, int]]) -> tuple[list, int]:
    records = GARBAGE + extra
    return [(k, v) for k, v, _ in records], sum(n for _, _, n in records)


def _assert_reasons(reasons: list[str], expected: int) -> None:
    assert len(reasons) == expected, reasons
    assert all(r.strip() for r in reasons), reasons
    text = "\n".join(reasons)
    for needle in ("UTF-8", "nested too deeply", "unknown event type", "an event must be a JSON object"):
        assert needle in text, (needle, reasons)


def _dead_letters_in_table(ch, expected: int):
    return lambda: ch.execute("SELECT count() FROM dead_letters")[0][0] >= expected


def test_the_indicators_worker_dead_letters_garbage_and_goes_on(database, tmp_path):
    ch = database
    records, expected = _garbage_and([(b"k", _with_sql("vn.binhduong.land.land_dispute.received"), 1)])
    valid = copy.deepcopy(EXAMPLES["vn.binhduong.land.land_dispute.received"])
    valid["id"] = f"after-garbage-{uuid.uuid4().hex[:8]}"
    asyncio.run(_send(EVENTS, records))
    archived = "SELECT count() FROM events_archive WHERE id = %(id)s"
    _run(
        tmp_path,
        "indicators",
        {"IOC_CLICKHOUSE_URL": ch.url, "IOC_INDICATORS_APP_ID": f"hostile-{uuid.uuid4().hex[:6]}",
         "IOC_INDICATORS_FLUSH_S": "0.5"},
        _dead_letters_in_table(ch, expected),
        lambda: asyncio.run(_send(EVENTS, [(valid["subject"].encode(), json.dumps(valid).encode())])),
        lambda: ch.execute(archived, {"id": valid["id"]})[0][0] == 1,
    )  # fmt: skip
    reasons = [r for (r,) in ch.execute("SELECT reason FROM dead_letters FINAL")]
    _assert_reasons(reasons, expected)
    _assert_reasons(_dead_letter_reasons(), expected)


def test_the_hotline_worker_dead_letters_garbage_and_goes_on(database, tmp_path):
    ch = database
    land = json.dumps(EXAMPLES["vn.binhduong.land.land_dispute.received"]).encode()
    records, expected = _garbage_and(
        [(b"k", land, 1), (b"k", _with_sql("vn.binhduong.hotline.call.received"), 1)]
    )
    call = copy.deepcopy(EXAMPLES["vn.binhduong.hotline.call.received"])
    call["id"] = f"after-garbage-{uuid.uuid4().hex[:8]}"
    call_id = call["data"]["call_id"] = f"1022-hostile-{uuid.uuid4().hex[:8]}"
    asyncio.run(_send(HOTLINE_CALLS, records))
    known = "SELECT count() FROM calls WHERE call_id = %(c)s"
    _run(
        tmp_path,
        "hotline",
        {"IOC_CLICKHOUSE_URL": ch.url, "IOC_HOTLINE_APP_ID": f"hostile-{uuid.uuid4().hex[:6]}"},
        _dead_letters_in_table(ch, expected),
        lambda: asyncio.run(_send(HOTLINE_CALLS, [(call_id.encode(), json.dumps(call).encode())])),
        lambda: ch.execute(known, {"c": call_id})[0][0] >= 1,
    )
    reasons = [r for (r,) in ch.execute("SELECT reason FROM dead_letters FINAL")]
    _assert_reasons(reasons, expected)
    assert any("not a switchboard call event" in r for r in reasons)


def test_the_alerts_worker_dead_letters_garbage_on_both_inputs_and_goes_on(database, tmp_path):
    ch = database
    land = json.dumps(EXAMPLES["vn.binhduong.land.land_dispute.received"]).encode()
    on_indicators, n_indicators = _garbage_and(
        [(b"k", land, 1), (b"k", _with_sql("vn.binhduong.indicators.values.updated"), 1)]
    )
    on_commands, n_commands = _garbage_and([(b"k", _with_sql("vn.binhduong.alerts.command"), 1)])
    expected = n_indicators + n_commands
    asyncio.run(_send(INDICATORS, on_indicators))
    asyncio.run(_send(ALERT_COMMANDS, on_commands))
    # a proper command after the garbage still gets its answer (rejected: no such alert)
    cid = str(uuid.uuid4())
    command = copy.deepcopy(EXAMPLES["vn.binhduong.alerts.command"])
    command["id"] = cid
    command["data"]["command_id"] = cid
    command["data"]["alert_id"] = "no.such_rule|718"
    command["subject"] = "718"

    def answered() -> bool:
        results = asyncio.run(_read(ALERT_COMMAND_RESULTS))
        return any(json.loads(m.value)["data"]["command_id"] == cid for m in results)

    _run(
        tmp_path,
        "alerts",
        {"IOC_CLICKHOUSE_URL": ch.url, "IOC_ALERTS_APP_ID": f"hostile-{uuid.uuid4().hex[:6]}"},
        # Counted by reading the topic: Tansu's end offset can lag what a consumer reads
        lambda: len(_dead_letter_reasons()) >= expected,
        lambda: asyncio.run(_send(ALERT_COMMANDS, [(b"no.such_rule|718", json.dumps(command).encode())])),
        answered,
    )
    reasons = _dead_letter_reasons()
    _assert_reasons(reasons, expected)
    assert any("unexpected event type" in r for r in reasons)
