"""The hotline processor on ClickHouse 18.16 and current ClickHouse (chdb), without Kafka: two simulated days
with malformed records, duplicates, closed-before-answered, unknown call ids and missing locations."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from ioccore.archive import RecordRef
from ioccore.catalog import load_catalog
from ioccore.settings import get_settings
from ioccore.topics import HOTLINE_CALLS
from services.hotline import store
from services.hotline.calendar import load_deadlines
from services.hotline.privacy import CallerPrivacy
from services.hotline.processor import Processor
from services.hotline.reconcile import reconcile
from services.hotline.routing import Router
from tests.hotline.conftest import caller_numbers

pytestmark = pytest.mark.clickhouse
KEY = b"test-key-" + b"x" * 32


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def make(ch, catalog) -> Processor:
    p = Processor(ch, catalog.contracts, catalog, Router(catalog), load_deadlines(get_settings().contracts_dir),
                  CallerPrivacy(KEY))  # fmt: skip
    p.restore()
    return p


def run(p: Processor, records, start: int = 0, step: int = 150) -> list:
    flushes = []
    refs = [RecordRef(HOTLINE_CALLS, 0, start + i, k, v) for i, (k, v) in enumerate(records)]
    for i in range(0, len(refs), step):
        f = p.ingest(refs[i : i + step])
        p.write(f)
        p.written(f)
        flushes.append(f)
    return flushes


def check(ch, catalog):
    router = Router(catalog)
    return reconcile(ch, router.district_of, [f.code for f in catalog.focal_points],
                     {i.id for i in catalog.indicators})  # fmt: skip


def test_a_flaky_day_loses_no_call_counts_every_anomaly_and_reconciles(clickhouse, catalog, two_days) -> None:
    p = make(clickhouse, catalog)
    flushes = run(p, two_days.records)
    # every call the switchboards received is there, known, with its state
    received = {e["data"]["call_id"] for e in two_days.events if e["type"].endswith("call.received")}
    known = {r[0] for r in clickhouse.execute("SELECT call_id FROM calls FINAL WHERE known = 1")}
    assert known == received
    # anomalies counted, none fatal
    a = p.anomaly_totals
    assert a.get("duplicate", 0) >= two_days.faults["duplicates"] > 0
    assert a.get("out_of_order", 0) >= two_days.faults["closed_before_answered"] > 0
    assert a.get("unknown_call", 0) == two_days.faults["unknown_call"] > 0
    no_location = sum(
        1 for e in two_days.events if e["type"].endswith("received") and "location" not in e["data"]
    )
    assert a.get("missing_location", 0) >= no_location > 0
    orphans = clickhouse.execute("SELECT count() FROM calls FINAL WHERE known = 0")[0][0]
    assert orphans == two_days.faults["unknown_call"]
    # malformed records: dead letters with a reason
    dead = clickhouse.execute("SELECT reason FROM dead_letters FINAL")
    assert len(dead) == two_days.faults["malformed"] > 0 and all(r[0] for r in dead)
    # KPIs equal the independent SQL recount
    rep = check(clickhouse, catalog)
    assert rep.checked > 1000 and rep.mismatches == 0, rep.examples
    # the day's headline figures as the switchboards' own events count them
    day1 = "2026-03-02"
    got = dict(clickhouse.execute(
        "SELECT indicator, sum(v) FROM (SELECT indicator, unit, argMax(value, revision) AS v FROM hotline_figures "
        "WHERE period = %(p)s GROUP BY indicator, unit) GROUP BY indicator", {"p": day1}))  # fmt: skip
    calls_1022 = [e for e in two_days.events if e["type"].endswith("call.received") and e["data"]["line"] == "1022"
                  and e["time"].startswith(day1)]  # fmt: skip
    assert got["hotline_1022.calls_received"] == len(calls_1022)
    assert 350 <= len(calls_1022) <= 450
    # calls per hour by line, field and district add up to the day's calls, each in its local hour
    hourly = store.hourly_counts(clickhouse, dt.date(2026, 3, 2))
    assert sum(r["calls"] for r in hourly if r["line"] == "1022") == len(calls_1022)
    per_hour = {}
    for e in calls_1022:
        per_hour[int(e["time"][11:13])] = per_hour.get(int(e["time"][11:13]), 0) + 1
    got_hours = {}
    for r in hourly:
        if r["line"] == "1022":
            got_hours[r["hour"]] = got_hours.get(r["hour"], 0) + r["calls"]
    assert got_hours == per_hour and len({r["district"] for r in hourly}) == 9
    # every 115 call forwarded to the nearest available facility, as the service suggests it
    rows = clickhouse.execute("SELECT hospital, suggested_hospital FROM calls FINAL WHERE line = '115'")
    assert rows and all(h == s and h for h, s in rows)
    # live summaries for every call touched, never a clear number
    live = [e for f in flushes for _, e in f.live]
    assert {e["data"]["call_id"] for e in live} >= received
    contracts = catalog.contracts
    assert all(contracts.check(e) is None for e in live[:500])
    assert all(contracts.check(e) is None for f in flushes for _, e, *_ in f.figures[:50])
    assert all(contracts.check(e) is None for f in flushes for _, e in f.derived)
    # deadlines set on forwarded 1022 requests; the ones the stream's time passed unresolved, flagged overdue
    deadlines, overdue = clickhouse.execute(
        "SELECT countIf(type = 'deadline_set'), countIf(type = 'overdue') FROM call_events FINAL"
    )[0]
    forwarded = clickhouse.execute(
        "SELECT count() FROM calls FINAL WHERE line = '1022' AND focal_point != ''"
    )[0][0]
    assert deadlines == forwarded > 0 and overdue > 0
    flagged = [e for f in flushes for _, e in f.live if e["data"].get("overdue")]
    assert flagged and all(e["data"]["line"] == "1022" and "deadline" in e["data"] for e in flagged)
    # a figure that drifted from its events is caught
    clickhouse.execute(
        "INSERT INTO hotline_figures (indicator, cadence, unit, period, value, revision, event_id, time, updated_at) "
        "SELECT indicator, cadence, unit, period, value + 1, revision + 1000, 'tampered', time, updated_at "
        "FROM hotline_figures WHERE indicator = 'hotline_1022.calls_received' ORDER BY unit, period LIMIT 1"
    )
    tampered = check(clickhouse, catalog)
    assert tampered.mismatches == 1 and "hotline_1022.calls_received" in tampered.examples[0]


def test_no_table_holds_a_clear_caller_number(clickhouse, catalog, two_days) -> None:
    p = make(clickhouse, catalog)
    flushes = run(p, two_days.records)
    numbers = caller_numbers(two_days)
    assert len(numbers) > 500
    tables = [r[0] for r in clickhouse.execute(
        "SELECT name FROM system.tables WHERE database = %(db)s", {"db": clickhouse.database})]  # fmt: skip
    assert {"call_events", "calls", "hotline_figures", "dead_letters"} <= set(tables)
    for table in tables:
        cols = [c for c, t in clickhouse.execute(
            "SELECT name, type FROM system.columns WHERE database = %(db)s AND table = %(t)s",
            {"db": clickhouse.database, "t": table}) if "String" in t]  # fmt: skip
        for col in cols:
            text = "\n".join(str(r[0]) for r in clickhouse.execute(f"SELECT {col} FROM {table}"))  # noqa: S608
            leaked = [n for n in numbers if n in text]
            assert not leaked, f"{table}.{col} holds caller numbers in clear: {leaked[:3]}"
    published = msgspec.json.encode([[e for _, e in f.live] + [e for _, e in f.derived]
                                     + [e for _, e, *_ in f.figures] for f in flushes])  # fmt: skip
    published += b"".join(raw + reason.encode() for f in flushes for _, raw, reason in f.dead.dead_records)
    assert not [n for n in numbers if n.encode() in published]
    # repeat callers are linked through the hash: the same number on two calls gives one hash
    hashes = clickhouse.execute("SELECT caller_hash FROM calls FINAL WHERE known = 1")
    assert all(len(h[0]) == 32 for h in hashes)


def test_a_restart_restores_the_calls_and_reports_nothing_twice(clickhouse, catalog, two_days) -> None:
    half = len(two_days.records) // 2
    first = make(clickhouse, catalog)
    run(first, two_days.records[:half])
    again = make(clickhouse, catalog)  # a new process: state from call_events, figures from hotline_figures
    assert set(again.calls) == set(first.calls)
    assert {k: v.state for k, v in again.calls.items()} == {k: v.state for k, v in first.calls.items()}
    redelivered = run(again, two_days.records[half - 200 : half], start=half - 200)  # at-least-once
    assert not [fig for f in redelivered for fig in f.figures]
    run(again, two_days.records[half:], start=half)
    rep = check(clickhouse, catalog)
    assert rep.mismatches == 0, rep.examples


def test_an_unavailable_hospital_is_skipped_until_it_is_back(clickhouse, catalog) -> None:
    from tests.hotline.test_calendar_routing_privacy import at

    p = make(clickhouse, catalog)
    router = p.router
    nearest = router.nearest_hospital("25741", None, None)
    assert nearest is not None

    def event(id_, type_, time, data, subject="25741"):
        return msgspec.json.encode({"specversion": "1.0", "id": id_, "source": "/cap-cuu-115/switchboard",
                                    "type": "vn.binhduong.hotline." + type_, "time": time, "subject": subject,
                                    "data": data})  # fmt: skip

    def call(n, time):
        cid = f"115-260305-{n:04d}"
        return (cid.encode(), event(f"{cid}-received", "call.received", time,
                                    {"call_id": cid, "line": "115", "caller_number": "+84387654321", "unit": "25741"}))  # fmt: skip

    down = event("a1", "facility.availability", "2026-03-05T02:00:00+07:00",
                 {"hospital": nearest.code, "available": False}, subject="718")  # fmt: skip
    up = event("a2", "facility.availability", "2026-03-05T04:00:00+07:00",
               {"hospital": nearest.code, "available": True}, subject="718")  # fmt: skip
    run(p, [call(1, "2026-03-05T01:00:00+07:00"), (b"x", down), call(2, "2026-03-05T02:30:00+07:00"),
            (b"x", up), call(3, "2026-03-05T04:30:00+07:00")])  # fmt: skip
    got = dict(clickhouse.execute("SELECT call_id, suggested_hospital FROM calls FINAL"))
    assert got["115-260305-0001"] == nearest.code
    assert got["115-260305-0002"] not in ("", nearest.code)
    assert got["115-260305-0003"] == nearest.code
    # a restarted service knows the availability too
    restarted = make(clickhouse, catalog)
    assert nearest.code in restarted.unavailable_at(at("2026-03-05T03:00:00+07:00"))
    assert nearest.code not in restarted.unavailable_at(at("2026-03-05T05:00:00+07:00"))
