"""Reads: indicator series, latest, rankings, wall tiles, alerts, hotline, timeliness, catalog and units,
on ClickHouse 18.16 and current ClickHouse (chdb), against contract-shaped rows."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.gateway import seed
from tests.gateway.seed import C718, D718, D724, NOW, TODAY

pytestmark = pytest.mark.clickhouse
IND = "transport.accidents"


def test_series_reads_the_newest_version_of_each_period_of_the_active_version_set(reads_app):
    app, client, tokens = reads_app
    ch = app.state.gw.ch
    seed.active(ch, "v1", revision=1)
    d1, d2 = TODAY - dt.timedelta(days=1), TODAY
    seed.values(
        ch,
        [
            seed.value(IND, D718, d1, 3.0, version=5),
            seed.value(IND, D718, d2, 4.0, version=6),
            seed.value(IND, D718, d2, 7.0, version=9),  # a later version of the same period wins
            seed.value(IND, D718, d2, 99.0, version_set="old"),  # not the active version set
            seed.value(IND, D724, d2, 50.0),
        ],
    )
    h = tokens.headers("province_viewer")
    r = client.get(f"/v1/indicators/{IND}/series", params={"unit": D718, "cadence": "day"}, headers=h)
    assert r.status_code == 200, r.text
    assert [(p["period"], p["value"]) for p in r.json()["points"]] == [
        (d1.isoformat(), 3.0),
        (d2.isoformat(), 7.0),
    ]
    r = client.get(f"/v1/indicators/{IND}/series", params={"unit": D718, "since": d2.isoformat()}, headers=h)
    assert [p["value"] for p in r.json()["points"]] == [7.0]
    # Switching the active version set switches the reads.
    seed.active(ch, "old", revision=2)
    from services.gateway.indicators import service

    service._active_cache.clear()
    r = client.get(f"/v1/indicators/{IND}/series", params={"unit": D718}, headers=h)
    assert [p["value"] for p in r.json()["points"]] == [99.0]


def test_latest_gives_the_latest_period_per_unit_and_ranking_orders_districts(reads_app):
    app, client, tokens = reads_app
    ch = app.state.gw.ch
    seed.active(ch)
    d1, d2 = TODAY - dt.timedelta(days=1), TODAY
    seed.values(
        ch,
        [
            seed.value(IND, D718, d1, 3.0),
            seed.value(IND, D718, d2, 4.0),
            seed.value(IND, D724, d2, 9.0),
            seed.value(IND, "719", d2, 1.0),
            seed.value(IND, C718, d2, 2.0),
        ],
    )
    h = tokens.headers("province_admin")
    r = client.get("/v1/indicators/latest", params={"indicator": IND, "cadence": "day"}, headers=h)
    assert r.status_code == 200, r.text
    got = {x["unit"]: (x["period"], x["value"]) for x in r.json()}
    assert got == {D718: (d2.isoformat(), 4.0), D724: (d2.isoformat(), 9.0), "719": (d2.isoformat(), 1.0),
                   C718: (d2.isoformat(), 2.0)}  # fmt: skip
    top = client.get(f"/v1/indicators/{IND}/ranking", params={"order": "top", "limit": 2}, headers=h).json()
    assert top["period"] == d2.isoformat()
    assert [u["unit"] for u in top["units"]] == [D724, D718]
    bottom = client.get(
        f"/v1/indicators/{IND}/ranking", params={"order": "bottom", "limit": 1}, headers=h
    ).json()
    assert [u["unit"] for u in bottom["units"]] == ["719"]
    assert client.get("/v1/indicators/nope.nope/ranking", headers=h).status_code == 404


def test_wall_tiles_cover_the_27_fields_with_their_key_indicator_values(reads_app):
    app, client, tokens = reads_app
    ch = app.state.gw.ch
    seed.active(ch)
    tiles = client.get("/v1/wall/tiles", headers=tokens.headers("province_viewer")).json()
    assert len(tiles) == 27
    transport = next(t for t in tiles if t["field"] == "transport")
    seed.values(
        ch,
        [
            seed.value(transport["indicator"], "74", TODAY - dt.timedelta(days=i), float(10 - i))
            for i in range(3)
        ],
    )
    tiles = client.get("/v1/wall/tiles", headers=tokens.headers("province_viewer")).json()
    transport = next(t for t in tiles if t["field"] == "transport")
    assert transport["value"] == 10.0 and transport["trend"] == [8.0, 9.0, 10.0]


def test_alerts_filter_by_state_severity_field_and_time_and_show_the_timeline(reads_app):
    app, client, tokens = reads_app
    ch = app.state.gw.ch
    a1 = seed.alert_row("a1", C718, D718, severity="critical")
    a1_later = {**a1, "state": "acknowledged", "acknowledged_by": "op718", "version": 2}
    a2 = seed.alert_row("a2", D718, D718, field="health", opened_at=NOW - dt.timedelta(days=3))
    a3 = seed.alert_row("a3", D724, D724, state="resolved")
    seed.alerts(ch, [a1, a1_later, a2, a3])
    seed.alert_events(
        ch,
        [
            {"alert_id": "a1", "version": 1, "transition": "raised", "actor": "system", "state": "firing"},
            {
                "alert_id": "a1",
                "version": 2,
                "transition": "acknowledged",
                "actor": "op718",
                "state": "acknowledged",
            },
        ],
    )
    h = tokens.headers("province_viewer")

    def ids(**params):
        r = client.get("/v1/alerts", params=params, headers=h)
        assert r.status_code == 200, r.text
        return sorted(a["alert_id"] for a in r.json())

    assert ids() == ["a1", "a2", "a3"]
    assert ids(state=["acknowledged"]) == ["a1"]
    assert ids(state=["firing", "acknowledged"]) == ["a1", "a2"]
    assert ids(severity="critical") == ["a1"]
    assert ids(field="health") == ["a2"]
    assert ids(since=(NOW - dt.timedelta(days=1)).isoformat()) == ["a1", "a3"]
    assert ids(unit=D724) == ["a3"]
    detail = client.get("/v1/alerts/a1", headers=h).json()
    assert detail["alert"]["state"] == "acknowledged" and detail["alert"]["sop_vi"].startswith("1.")
    assert [e["transition"] for e in detail["timeline"]] == ["raised", "acknowledged"]
    counts = client.get("/v1/alerts/open-by-district", headers=h).json()
    assert sorted((c["district"], c["severity"], c["count"]) for c in counts) == [
        (D718, "critical", 1),
        (D718, "warning", 1),
    ]
    assert client.get("/v1/alerts/zzz", headers=h).status_code == 404


def test_hotline_live_calls_exclude_closed_ones_and_kpis_read_the_hotline_indicators(reads_app):
    app, client, tokens = reads_app
    ch = app.state.gw.ch
    seed.calls(
        ch,
        [
            seed.call_row("c1", C718, D718, "ringing"),
            seed.call_row("c2", D724, D724, "answered"),
            seed.call_row("c3", C718, D718, "answered"),
            seed.call_row("c3", C718, D718, "closed", version=2),
        ],
    )
    h = tokens.headers("province_viewer")
    live = client.get("/v1/hotline/calls/live", headers=h).json()
    assert sorted(c["call_id"] for c in live) == ["c1", "c2"]
    assert all("*" in c["caller_masked"] for c in live)
    seed.active(ch)
    seed.values(ch, [seed.value("hotline_1022.calls_received", "74", TODAY, 412.0)])
    kpis = client.get("/v1/hotline/kpis", headers=h).json()
    assert [(k["indicator"], k["value"]) for k in kpis] == [("hotline_1022.calls_received", 412.0)]


def test_timeliness_scores_each_source_by_the_lag_between_event_and_receipt(reads_app):
    app, client, tokens = reads_app
    ch = app.state.gw.ch
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    rows = [("/fast", now - dt.timedelta(seconds=30)), ("/fast", now - dt.timedelta(seconds=60)),
            ("/slow", now - dt.timedelta(hours=5)), ("/slow", now - dt.timedelta(seconds=10))]  # fmt: skip
    ch.insert(
        "events_archive",
        {
            "source": [s for s, _ in rows],
            "id": [str(i) for i in range(len(rows))],
            "type": ["vn.binhduong.land.land_dispute.received"] * len(rows),
            "subject": ["74"] * len(rows),
            "time": [t for _, t in rows],
            "time_ms": [0] * len(rows),
            "received_at": [now] * len(rows),
            "topic": ["t"] * len(rows),
            "partition": [0] * len(rows),
            "offset": list(range(len(rows))),
            "data": ["{}"] * len(rows),
        },
    )
    r = client.get("/v1/timeliness", params={"on_time_s": 3600}, headers=tokens.headers("province_admin"))
    assert r.status_code == 200, r.text
    got = {x["source"]: (x["events"], x["score"]) for x in r.json()}
    assert got == {"/fast": (2, 100.0), "/slow": (2, 50.0)}


def test_catalog_and_units(reads_app):
    _app, client, tokens = reads_app
    h = tokens.headers("province_viewer")
    assert len(client.get("/v1/catalog/fields", headers=h).json()) == 27
    inds = client.get("/v1/catalog/indicators", params={"field": "transport"}, headers=h).json()
    assert inds and all(i["field"] == "transport" for i in inds)
    units = client.get("/v1/units", params={"level": "district"}, headers=h).json()
    assert len(units) == 9
    assert client.get("/healthz").json() == {"status": "ok"}
    assert b"ioc_gateway_requests_total" in client.get("/metrics").content
