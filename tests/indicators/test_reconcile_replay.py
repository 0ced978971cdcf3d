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


def test_streamed_values_equal_the_sql_recount_and_replay_regroups_by_2025_units(clickhouse, records):
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
