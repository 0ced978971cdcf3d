"""`ioc hotline worker` end to end on the real broker and ClickHouse 18.16: two simulated days of both
switchboards (malformed records, duplicates, closed-before-answered, unknown call ids, missing locations) sent
to ioc.hotline.calls; the worker's calls, KPI figures, live feed and dead letters checked against the input
and an independent SQL recount (`ioc hotline reconcile --json`), and searched for clear caller numbers."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from ioccore.contracts import load_contracts
from ioccore.kafka import consumer, end_offsets, producer
from ioccore.logging import json_records
from ioccore.settings import REPO_ROOT
from ioccore.testing import fresh_clickhouse, spawn_ioc, stop_processes
from ioccore.topics import DEADLETTER, EVENTS, HOTLINE_CALLS, HOTLINE_LIVE
from tests.hotline.conftest import caller_numbers

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


async def _send(records) -> None:
    async with producer() as p:
        futures = [await p.send(HOTLINE_CALLS, value=v, key=k) for k, v in records]
        await asyncio.gather(*futures)


async def _read(topic: str) -> list:
    ends = await end_offsets(topic)
    out = []
    async with consumer(topic, group_id=f"read-{uuid.uuid4().hex[:8]}") as c:
        seen = 0
        while seen < sum(ends.values()):
            for msgs in (await c.getmany(timeout_ms=1000)).values():
                seen += len(msgs)
                out.extend(msgs)
    return out


def _written_through(log: str) -> dict[int, int]:
    out: dict[int, int] = {}
    for doc in json_records(log, "written_through"):
        for p, off in doc["written_through"].items():
            out[int(p)] = max(out.get(int(p), 0), int(off))
    return out


@pytest.fixture
def database(stack_env, tmp_path):
    with fresh_clickhouse("server", tmp_path) as ch:
        yield ch.url, ch


def test_two_simulated_days_end_to_end(clean_topics, database, two_days, tmp_path) -> None:
    url, ch = database
    asyncio.run(_send(two_days.records))
    log_path = tmp_path / "hotline.log"
    env = {**os.environ, "IOC_CLICKHOUSE_URL": url, "IOC_HOTLINE_LOG_FLUSHES": "true",
           "IOC_HOTLINE_APP_ID": f"hl-{uuid.uuid4().hex[:8]}"}  # fmt: skip
    proc = spawn_ioc(["hotline", "worker"], log_path, **env)
    try:
        # until the worker has written everything on the topic, including the events it derived itself
        deadline = time.monotonic() + 240
        stable = 0
        last: dict[int, int] = {}
        while stable < 3:
            assert time.monotonic() < deadline, f"worker behind: {log_path.read_text()[-2000:]}"
            assert proc.poll() is None, log_path.read_text()[-3000:]
            ends = {p: o for p, o in asyncio.run(end_offsets(HOTLINE_CALLS)).items() if o}
            done = _written_through(log_path.read_text(errors="replace"))
            caught_up = all(done.get(p, 0) >= o for p, o in ends.items())
            stable = stable + 1 if caught_up and ends == last else 0
            last = ends
            time.sleep(1.0)
    finally:
        stop_processes([proc], timeout_s=30)

    # KPIs equal the independent SQL recount (the command the integrator hooks into `ioc reconcile`)
    res = subprocess.run([sys.executable, "-m", "ioccore.cli", "hotline", "reconcile", "--json"], cwd=REPO_ROOT,
                         env={**os.environ, "IOC_CLICKHOUSE_URL": url}, capture_output=True, text=True)  # fmt: skip
    report = json.loads(res.stdout)
    assert res.returncode == 0 and report["mismatches"] == 0, report
    assert report["checked"] > 1000

    # every call, known; every 115 call forwarded to the nearest available facility
    received = {e["data"]["call_id"] for e in two_days.events if e["type"].endswith("call.received")}
    known = {r[0] for r in ch.execute("SELECT call_id FROM calls FINAL WHERE known = 1")}
    assert known == received
    rows = ch.execute("SELECT hospital, suggested_hospital FROM calls FINAL WHERE line = '115'")
    assert len(rows) >= 15 and all(h and h == s for h, s in rows)
    status = subprocess.run([sys.executable, "-m", "ioccore.cli", "hotline", "status", "--json"], cwd=REPO_ROOT,
                            env={**os.environ, "IOC_CLICKHOUSE_URL": url}, capture_output=True, text=True)  # fmt: skip
    doc = json.loads(status.stdout)
    assert doc["anomalies"]["duplicate"] > 0 and doc["anomalies"]["out_of_order"] > 0
    assert doc["anomalies"]["unknown_call"] == two_days.faults["unknown_call"]
    assert doc["dead_letters"] == two_days.faults["malformed"]

    contracts = load_contracts()
    numbers = caller_numbers(two_days)
    # the live feed: a valid summary for every call, never a clear number
    live = asyncio.run(_read(HOTLINE_LIVE))
    summaries = [json.loads(m.value) for m in live]
    assert {s["data"]["call_id"] for s in summaries} >= received
    assert all(contracts.check(s) is None for s in summaries)
    # figures on ioc.events: valid, and the latest of each is what hotline_figures holds
    figures = {}
    figure_records = asyncio.run(_read(EVENTS))
    for m in figure_records:
        for e in json.loads(m.value):
            assert contracts.check(e) is None, e
            d = e["data"]
            figures[(d["indicator_id"], e["subject"], d["period"])] = d["value"]
    stored = {(i, u, p): v for i, u, p, v in ch.execute(
        "SELECT indicator, unit, period, argMax(value, revision) FROM hotline_figures GROUP BY indicator, unit, period")}  # fmt: skip
    assert figures == stored and len(figures) > 1000
    # no clear number downstream: live feed, figures, dead letters (topic and table), the worker's log
    downstream = b"".join(m.value for m in live) + b"".join(
        m.value + b"".join(v for _, v in (m.headers or ())) for m in asyncio.run(_read(DEADLETTER))
    )
    downstream += log_path.read_bytes()
    downstream += b"".join(m.value for m in figure_records)
    leaked = [n for n in numbers if n.encode() in downstream]
    assert not leaked, leaked[:3]
    for table, col in (("call_events", "data"), ("calls", "caller_masked"), ("dead_letters", "raw")):
        text = "\n".join(str(r[0]) for r in ch.execute(f"SELECT {col} FROM {table}"))  # noqa: S608
        assert not [n for n in numbers if n in text], table

    # the indicators service turns the figures into catalog indicators, rolled up to the province and the week
    _indicators_over(url, env, tmp_path)
    values = {(i, c, u, p): v for i, c, u, p, v in ch.execute(
        "SELECT indicator, cadence, unit, period, argMax(value, version) FROM indicator_values "
        "GROUP BY indicator, cadence, unit, period")}  # fmt: skip
    for day in ("2026-03-02", "2026-03-03"):
        calls = [
            e for e in two_days.events if e["type"].endswith("call.received") and e["time"].startswith(day)
        ]
        by_line = {ln: sum(1 for e in calls if e["data"]["line"] == ln) for ln in ("1022", "115")}
        assert values[("hotline_1022.calls_received", "day", "74", day)] == by_line["1022"]
        assert values[("emergency_115.requests_received", "day", "74", day)] == by_line["115"]
        surveyed = values[("hotline_1022.surveyed", "day", "74", day)]
        satisfied = values[("hotline_1022.satisfied", "day", "74", day)]
        rate = values[("hotline_1022.satisfaction_rate", "day", "74", day)]
        assert rate == pytest.approx(satisfied / surveyed * 100) and rate > 70
    week = sum(
        1 for e in two_days.events if e["type"].endswith("call.received") and e["data"]["line"] == "1022"
    )
    assert values[("hotline_1022.calls_received", "week", "74", "2026-W10")] == week
    # `ioc reconcile` runs the hotline recount with the indicators' own
    res = subprocess.run([sys.executable, "-m", "ioccore.cli", "reconcile", "--json", "--no-progress"],
                         cwd=REPO_ROOT, env={**os.environ, "IOC_CLICKHOUSE_URL": url}, capture_output=True,
                         text=True)  # fmt: skip
    assert res.stdout, res.stderr[-2000:]
    whole = json.loads(res.stdout)
    assert whole["parts"]["hotline"] == report
    assert res.returncode == 0 and whole["mismatches"] == 0, whole["examples"]


def _indicators_over(url: str, env: dict, tmp_path) -> None:
    """Run `ioc indicators worker` over ioc.events (the hotline's figures) into the same database."""
    from services.indicators.worker import values_through

    ends = {p: o for p, o in asyncio.run(end_offsets(EVENTS)).items() if o}
    log_path = tmp_path / "indicators.log"
    env = {
        **env,
        "IOC_INDICATORS_APP_ID": f"ind-{uuid.uuid4().hex[:8]}",
        "IOC_INDICATORS_LOG_FLUSHES": "true",
    }
    proc = spawn_ioc(["indicators", "worker"], log_path, **env)
    try:
        deadline = time.monotonic() + 180
        while True:
            done = values_through(log_path.read_text(errors="replace"))
            if all(done.get(p, 0) >= o for p, o in ends.items()):
                return
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.5)
    finally:
        stop_processes([proc], timeout_s=30)
