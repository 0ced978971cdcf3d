"""The indicators worker end to end, on the real broker and ClickHouse 18.16, with simulator traffic.

One simulated stretch of department traffic (with malformed records mixed in) is sent to ioc.events once;
each scenario runs `ioc indicators worker` processes over it into its own database:
- undisturbed: every value equals its SQL recount from the archive (`ioc reconcile`), bad records are
  dead-lettered with a reason, the per-source counters add up;
- kill -9 twice mid-stream, restarted each time: the same values as undisturbed;
- two workers sharing the partitions: the same values as undisturbed.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid

import msgspec
import pytest

from ioccore.clickhouse import ClickHouse
from ioccore.kafka import end_offsets
from ioccore.settings import REPO_ROOT
from ioccore.testing import fresh_clickhouse, spawn_ioc, stop_processes
from ioccore.topics import EVENTS, INDICATORS
from services.indicators import store
from services.indicators.reconcile import close
from services.indicators.worker import values_through

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

DAYS = 2
BAD_RATE = 0.002


@pytest.fixture(scope="module")
def traffic(stack_env, tmp_path_factory):
    """Simulated traffic on a fresh ioc.events; returns the simulator's figures and the end offsets."""
    from ioccore.testing import recreate_topics

    recreate_topics()
    stats = tmp_path_factory.mktemp("sim") / "stats.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ioccore.cli",
            "simulate",
            "--start",
            "2026-03-02",
            "--days",
            str(DAYS),
            "--bad-rate",
            str(BAD_RATE),
            "--out",
            "kafka",
            "--no-progress",
            "--stats",
            str(stats),
        ],
        check=True,
        cwd=REPO_ROOT,
        env=os.environ.copy(),
        capture_output=True,
    )
    return json.loads(stats.read_text()), asyncio.run(end_offsets(EVENTS))


async def _events_on_topic() -> int:
    """Events in ioc.events: a JSON array record counts its elements, anything else counts one."""
    from ioccore.kafka import consumer

    ends = await end_offsets(EVENTS)
    total, seen = 0, 0
    async with consumer(EVENTS, group_id=f"count-{uuid.uuid4().hex[:8]}") as c:
        while seen < sum(ends.values()):
            for msgs in (await c.getmany(timeout_ms=1000)).values():
                for m in msgs:
                    seen += 1
                    try:
                        doc = json.loads(m.value)
                    except ValueError:
                        doc = None
                    total += len(doc) if isinstance(doc, list) else 1
    return total


@pytest.fixture
def database(tmp_path):
    with fresh_clickhouse("server", tmp_path) as ch:
        yield ch


def _worker(db: ClickHouse, app_id: str, log_path, max_records: int = 20) -> subprocess.Popen:
    return spawn_ioc(
        ["indicators", "worker"],
        log_path,
        IOC_CLICKHOUSE_URL=db.url,
        IOC_INDICATORS_APP_ID=app_id,
        IOC_INDICATORS_MAX_RECORDS=str(max_records),
        IOC_INDICATORS_FLUSH_S="0.5",
        IOC_INDICATORS_LOG_FLUSHES="true",
    )


def _checkpoints(db: ClickHouse) -> dict[int, int]:
    active = store.active_version(db)
    return store.checkpoints(db, active["version_set"]) if active else {}


def _wait_done(
    db: ClickHouse, ends: dict[int, int], procs: list[subprocess.Popen], logs: list, timeout: float = 240
) -> None:
    """Until every partition's values are written up to its end offset (the workers log it per flush)."""
    deadline = time.monotonic() + timeout
    want = {p: o for p, o in ends.items() if o > 0}
    while time.monotonic() < deadline:
        done = values_through("".join(log.read_text(errors="replace") for log in logs if log.exists()))
        if all(done.get(p, 0) >= o for p, o in want.items()):
            return
        assert all(p.poll() is None for p in procs), "a worker died: " + "".join(
            log.read_text()[-3000:] for log in logs
        )
        time.sleep(0.5)
    raise AssertionError(f"workers did not finish: checkpoints {_checkpoints(db)} vs end offsets {want}")


def _values(db: ClickHouse) -> dict:
    active = store.active_version(db)
    assert active is not None
    return store.read_values(db, active["version_set"])


def _assert_same(got: dict, want: dict) -> None:
    missing = sorted(set(want) - set(got))[:5]
    extra = sorted(set(got) - set(want))[:5]
    assert not missing and not extra, f"missing {missing}, extra {extra}"
    differ = [(k, got[k], want[k]) for k in want if not close(got[k], want[k])][:5]
    assert not differ, differ


@pytest.fixture(scope="module")
def undisturbed(traffic, tmp_path_factory):
    """One worker, never disturbed: the reference values, and its database for further checks."""
    stats, ends = traffic
    tmp = tmp_path_factory.mktemp("w")
    with fresh_clickhouse("server", tmp) as db:
        proc = _worker(db, f"ind-{uuid.uuid4().hex[:8]}", tmp / "undisturbed.log", max_records=50)
        try:
            _wait_done(db, ends, [proc], [tmp / "undisturbed.log"])
        finally:
            stop_processes([proc])
        yield db, _values(db)


def test_values_equal_the_sql_recount_and_bad_input_is_dead_lettered(traffic, undisturbed):
    from ioccore.catalog import load_catalog
    from services.indicators.model import boundaries, compile_model
    from services.indicators.reconcile import reconcile

    stats, _ = traffic
    db, values = undisturbed
    catalog = load_catalog()
    report = reconcile(db, compile_model(catalog), boundaries(catalog, "2024"), "v1")
    assert report.checked > 10_000, report.as_dict()
    assert report.mismatches == 0, report.examples
    assert len(values) == report.checked

    # every malformed record is a dead letter with a reason; every valid department event is archived once
    # (malformed hotline events go to ioc.hotline.calls, not to this worker)
    bad = sum(stats["malformed_events"].values())
    reasons = db.execute("SELECT reason FROM dead_letters FINAL")
    assert 0 < len(reasons) <= bad
    assert all(r[0] for r in reasons)
    hotline = sum(n for t, n in stats["by_type"].items() if t.startswith("vn.binhduong.hotline."))
    archived = db.execute("SELECT count() FROM events_archive FINAL")[0][0]
    assert archived == stats["valid_events"] - hotline
    # nothing lost: every event on the topic is archived or dead-lettered
    assert archived + len(reasons) == asyncio.run(_events_on_topic())
    counters = store.partition_counters(db, "v1")
    assert sum(c["processed"] for c in counters.values()) == archived
    assert sum(c["dead_lettered"] for c in counters.values()) == len(reasons)


async def _updates_on_topic() -> list:
    """Every event in ioc.indicators, decoded and validated against the contracts."""
    from ioccore.contracts import load_contracts
    from ioccore.kafka import consumer

    contracts = load_contracts()
    ends = await end_offsets(INDICATORS)
    decoded, seen = [], 0
    async with consumer(INDICATORS, group_id=f"updates-{uuid.uuid4().hex[:8]}") as c:
        while seen < sum(ends.values()):
            for msgs in (await c.getmany(timeout_ms=1000)).values():
                for m in msgs:
                    seen += 1
                    decoded.extend((m.key, d) for d in contracts.decode(m.value))
    return decoded


def test_updates_on_ioc_indicators_are_contract_events_ending_at_the_stored_values(undisturbed):
    from ioccore.contracts import CloudEvent

    _, values = undisturbed
    decoded = asyncio.run(_updates_on_topic())
    bad = [d for _, d in decoded if not isinstance(d, CloudEvent)][:3]
    assert not bad, bad
    latest: dict = {}
    ids: dict[str, bytes] = {}
    for key, event in decoded:
        data = event.data
        assert event.type == "vn.binhduong.indicators.values.updated"
        assert key.decode() == event.subject == data["unit"]
        # an id names one content: a redelivered flush may send an event again, never another under its id
        body = msgspec.json.encode(data)
        assert ids.setdefault(event.id, body) == body, event.id
        for row in data["values"]:
            k = (row["indicator"], row["cadence"], data["unit"], row["period"])
            if k not in latest or latest[k]["version"] < row["version"]:
                latest[k] = row
    # every stored value was announced, and the last announcement of each series is the stored value
    _assert_same({k: d["value"] for k, d in latest.items()}, values)


def test_kill_9_mid_stream_changes_no_value(traffic, undisturbed, database, tmp_path):
    _, ends = traffic
    _, want = undisturbed
    app_id = f"ind-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker.log"
    total = sum(ends.values())
    for kill_at in (0.2, 0.6):  # share of the records checkpointed when the worker is killed
        proc = _worker(database, app_id, log, max_records=5)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and sum(_checkpoints(database).values()) < kill_at * total:
            assert proc.poll() is None, log.read_text()[-2000:]
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert 0 < sum(_checkpoints(database).values()) < total, "the kill did not land mid-stream"
    proc = _worker(database, app_id, log, max_records=50)
    try:
        _wait_done(database, ends, [proc], [log])
    finally:
        stop_processes([proc])
    _assert_same(_values(database), want)


def test_two_workers_share_the_partitions_and_agree_with_one(traffic, undisturbed, database, tmp_path):
    _, ends = traffic
    _, want = undisturbed
    app_id = f"ind-{uuid.uuid4().hex[:8]}"
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    procs = [
        _worker(database, app_id, logs[0], max_records=3),
        _worker(database, app_id, logs[1], max_records=3),
    ]
    try:
        _wait_done(database, ends, procs, logs)
    finally:
        stop_processes(procs)
    _assert_same(_values(database), want)
    owners = []
    for log in logs:
        text = log.read_text()
        owners.append(
            set(
                re.findall(
                    r'"partition": (\d+), "next_offset": \d+, "series": \d+, "event": "indicators.partition_restored"',
                    text,
                )
            )
        )
    assert all(owners), f"each worker should have owned partitions: {owners}"
