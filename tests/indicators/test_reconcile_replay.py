"""Reconcile and replay on ClickHouse 18.16 (`server`) and current ClickHouse (`chdb`): a simulated day goes
through the processor into the database; the SQL recount equals every streamed value; a replay under
units@2025 groups the values by the new units and reconciles too; reads switch to it."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from collections import defaultdict

import pytest

from ioccore.archive import RecordRef
from ioccore.catalog import load_catalog
from ioccore.settings import REPO_ROOT
from ioccore.topics import EVENTS
from services.indicators import store
from services.indicators.engine import Engine
from services.indicators.model import boundaries, compile_model
from services.indicators.processor import Processor
from services.indicators.reconcile import reconcile
from services.indicators.replay import replay

pytestmark = pytest.mark.clickhouse


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> list[RecordRef]:
    path = tmp_path_factory.mktemp("sim") / "day.jsonl"
    subprocess.run(
        [sys.executable, "-m", "ioccore.cli", "simulate", "--start", "2026-03-31", "--days", "1",
         "--bad-rate", "0.002", "--out", "file", "--file", str(path), "--no-progress"],
        check=True, cwd=REPO_ROOT, capture_output=True,
    )  # fmt: skip
    by_key: dict[str, list[bytes]] = defaultdict(list)
    for line in path.read_bytes().splitlines():
        if b'"vn.binhduong.hotline.' in line:
            continue  # the hotline topic's events
        try:
            key = json.loads(line).get("subject", "x")
        except ValueError:
            key = "x"
        by_key[str(key)].append(line)
    out, offsets = [], [0, 0, 0, 0]
    for key, lines in sorted(by_key.items()):
        p = zlib.crc32(key.encode()) % 4
        for start in range(0, len(lines), 300):
            value = b"[" + b",".join(lines[start : start + 300]) + b"]"
            out.append(RecordRef(EVENTS, p, offsets[p], key.encode(), value))
            offsets[p] += 1
    return out


def _live_processor(clickhouse):
    """The catalog, its model, the active version under units@2024, and a processor of the 4 partitions."""
    catalog = load_catalog()
    model = compile_model(catalog)
    version = store.ensure_active_version(clickhouse, "2024", model.catalog_hash)
    proc = Processor(
        clickhouse,
        catalog.contracts,
        Engine(model, boundaries(catalog, "2024")),
        version["version_set"],
        4,
        EVENTS,
    )
    return catalog, model, version, proc


def test_streamed_values_equal_the_sql_recount_and_replay_regroups_by_2025_units(clickhouse, records):
    catalog, model, version, proc = _live_processor(clickhouse)
    for start in range(0, len(records), 40):
        proc.process(records[start : start + 40])
    # a redelivered batch changes nothing
    proc.process(records[:40])
    archived = clickhouse.execute("SELECT count() FROM events_archive FINAL")[0][0]
    # re-sent events (same identities, new offsets) count once: in this processor, and in a restarted one
    # that rebuilds what it had seen from the archive
    proc.process([RecordRef(r.topic, r.partition, r.offset + 100_000, r.key, r.value) for r in records[:30]])
    restarted = Processor(
        clickhouse, catalog.contracts, Engine(model, boundaries(catalog, "2024")), "v1", 4, EVENTS
    )
    flush = restarted.process(
        [RecordRef(r.topic, r.partition, r.offset + 200_000, r.key, r.value) for r in records[30:60]]
    )
    assert flush.duplicates > 0 and flush.archived == 0
    counters = store.partition_counters(clickhouse, "v1")
    assert sum(c["duplicates"] for c in counters.values()) > flush.duplicates
    assert sum(c["processed"] for c in counters.values()) == archived
    assert clickhouse.execute("SELECT count() FROM events_archive FINAL")[0][0] == archived

    report = reconcile(clickhouse, model, boundaries(catalog, "2024"), "v1")
    assert report.checked > 5_000
    assert report.mismatches == 0, report.examples
    dead = clickhouse.execute("SELECT count() FROM dead_letters")[0][0]
    assert dead > 0

    result = replay(clickhouse, catalog, "2025")
    assert result.events == clickhouse.execute("SELECT count() FROM events_archive FINAL")[0][0]
    assert store.active_version(clickhouse)["version_set"] == result.version_set
    units_2025 = {u.code: u.level for u in catalog.units_by_set["2025"]}
    rows = clickhouse.execute(
        "SELECT DISTINCT unit, level FROM indicator_values WHERE version_set = %(v)s",
        {"v": result.version_set},
    )
    assert rows and all(units_2025.get(unit) == level for unit, level in rows)
    assert {level for _, level in rows} == {"commune", "province"}
    again = reconcile(clickhouse, model, boundaries(catalog, "2025"), result.version_set)
    assert again.checked > 1_000
    assert again.mismatches == 0, again.examples


def test_updates_are_compact_contract_events_ending_at_the_stored_values(clickhouse, records):
    from ioccore.contracts import CloudEvent, load_contracts

    _, _, version, proc = _live_processor(clickhouse)
    contracts = load_contracts()
    announced: dict = {}
    sizes = []
    for start in range(0, len(records), 40):
        flush = proc.process(records[start : start + 40])
        rows_sent = 0
        for unit, raws in flush.updates.items():
            for raw in raws:
                sizes.append(len(raw))
                (event,) = contracts.decode(raw)  # one compact event a record, valid on the typed fast path
                assert isinstance(event, CloudEvent), event
                assert contracts._fast(raw) is not None
                assert event.type == "vn.binhduong.indicators.values.updated"
                assert event.subject == unit == event.data["unit"]
                assert 1 <= len(event.data["values"]) <= 1000
                for row in event.data["values"]:
                    k = (row["indicator"], row["cadence"], unit, row["period"])
                    assert announced.get(k, (-1, None))[0] <= row["version"]
                    announced[k] = (row["version"], row["value"])
                    rows_sent += 1
        assert rows_sent <= flush.values  # only changed values are announced
    stored = {
        (ind, cadence, unit, period): (ver, value)
        for ind, cadence, unit, period, value, ver in clickhouse.execute(
            "SELECT indicator, cadence, unit, period, value, version FROM indicator_values FINAL "
            "WHERE version_set = %(v)s",
            {"v": version["version_set"]},
        )
    }
    assert len(stored) > 5_000
    # every stored value was announced, and the last announcement of each series is the stored value (a row
    # is sent when the value changed: the stored version may have grown since, with the same value)
    assert announced.keys() == stored.keys()
    assert {k: v for k, (_, v) in announced.items()} == {k: v for k, (_, v) in stored.items()}
    assert all(ver <= stored[k][0] for k, (ver, _) in announced.items())
    assert max(sizes) < 1_000_000  # under the producer's request limit
