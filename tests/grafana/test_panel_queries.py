"""Every panel's SQL, expanded as the ClickHouse datasource plugin does, runs on ClickHouse 18.16 (`server`)
and current ClickHouse (`chdb`) loaded with one simulated day through the indicators processor, and returns
the columns its panel reads."""

from __future__ import annotations

import datetime as dt

import pytest

from iocboards.boards import build_all
from iocboards.check import check
from iocboards.queries import TimeRange
from ioccore.catalog import load_catalog
from ioccore.topics import EVENTS
from services.indicators import store
from services.indicators.engine import Engine
from services.indicators.model import boundaries, compile_model
from services.indicators.processor import Processor
from tests.indicators.test_reconcile_replay import records  # noqa: F401 - the same simulated day, as records

pytestmark = pytest.mark.clickhouse


def test_every_panel_query_runs_and_returns_its_columns(clickhouse, records):  # noqa: F811
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
    for start in range(0, len(records), 200):
        proc.process(records[start : start + 200])

    built = build_all(catalog)

    rng = TimeRange(dt.datetime(2026, 3, 1), dt.datetime(2026, 4, 1, 23, 59, 59), 3600)
    report = check(clickhouse, rng, built, progress=False)
    failures = [f"{f.query.board} / {f.query.panel}: {f.error}" for f in report.failures]
    assert failures == [], failures[:10]
    assert report.summary()["queries_failed"] == 0
    assert report.ok == sum(len(b.queries) for b in built) > 1000
    # the simulated day shows on the province's and every district's overview, and on every field board
    # of the province that has daily indicators
    for board_id in ["province.overview"] + [
        f"district.{u.code}.overview" for u in catalog.units if u.level == "district"
    ]:
        assert report.rows_by_board[board_id] > 0, board_id
    assert report.rows_by_board["province.data_timeliness"] > 0
    assert report.with_rows > report.ok // 3
    # a yearly or quarterly value shows although its period began before the range (2026-01-01 < 2026-03-01)
    long_periods = [
        pq
        for b in built
        for pq in b.queries
        if "cadence = 'year'" in pq.sql or "cadence = 'quarter'" in pq.sql
    ]
    assert len([pq for pq in long_periods if pq not in report.empty]) > 0
