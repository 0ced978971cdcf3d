"""Boards as code: generated files are reproducible and committed; the boards cover the province and its
9 districts; every query's macros expand to plain SQL."""

from __future__ import annotations

import datetime as dt
import json

from iocboards.boards import build_all
from iocboards.build import default_dir, render, stale_files
from iocboards.queries import TimeRange, expand
from ioccore.catalog import load_catalog


def test_generated_files_are_reproducible_and_committed():
    assert render() == render()
    stale = stale_files(default_dir())
    assert stale == [], f"deploy/grafana is stale ({stale[:5]}...): run `ioc grafana build` and commit"


def test_boards_cover_the_province_and_every_district_in_their_folders():
    catalog = load_catalog()
    built = build_all(catalog)
    districts = {u.code for u in catalog.units if u.level == "district"}
    assert len(districts) == 9
    by_folder: dict[str, set[str]] = {}
    for b in built:
        by_folder.setdefault(b.folder_uid, set()).add(b.board.kind)
        assert b.panels > 0 and b.queries, b.board.id
    assert set(by_folder) == {"ioc-province"} | {f"ioc-district-{d}" for d in districts}
    assert {"overview", "hotline", "alerts", "timeliness", "field", "group"} <= by_folder["ioc-province"]
    for d in districts:
        assert {"overview", "hotline", "alerts", "field"} <= by_folder[f"ioc-district-{d}"]
    # field boards let the viewer choose the district (province boards) and the commune
    for b in built:
        names = [v["name"] for v in b.model.get("templating", {}).get("list", [])]
        if b.board.kind == "field":
            assert "commune" in names and (b.board.scope.level == "district" or "district" in names)
    folders = json.loads((default_dir() / "folders.json").read_text("utf-8"))
    assert sorted(f["district"] for f in folders if f["district"]) == sorted(districts)


def test_every_query_expands_to_sql_without_grafana_syntax():
    rng = TimeRange(dt.datetime(2026, 3, 1), dt.datetime(2026, 4, 1), 3600)
    built = build_all(load_catalog())
    seen_macros = set()
    for b in built:
        for pq in b.queries:
            for macro in (
                "$__timeFilter",
                "$__dateFilter",
                "$__interval_s",
                "$__fromTime",
                "$__toTime",
                "$district",
                "$commune",
            ):
                if macro in pq.sql:
                    seen_macros.add(macro)
            sql = expand(pq.sql, rng, {"district": "718", "commune": "25741"})
            assert "$" not in sql, (b.board.id, pq.panel, sql)
    assert seen_macros == {
        "$__timeFilter",
        "$__dateFilter",
        "$__interval_s",
        "$__fromTime",
        "$__toTime",
        "$district",
        "$commune",
    }
    assert "toStartOfInterval(toDateTime(at), INTERVAL 3600 second)" in expand("$__timeInterval(at)", rng, {})
    assert expand("$__fromTime", rng, {}) == "toDateTime(1772323200)"
    assert expand("$__dateFilter(d)", rng, {}) == "d >= toDate('2026-03-01') AND d <= toDate('2026-04-01')"
    assert (
        expand("$__timeFilter(t)", rng, {}) == "t >= toDateTime(1772323200) AND t <= toDateTime(1775001600)"
    )
