"""End to end on the real stack: simulator → gateway ingest (HTTP) → Kafka → indicators worker → ClickHouse →
gateway queries and live stream. (The alerts leg, → alerts → console, is tests/gateway/test_e2e_alerts.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from ioccore.settings import REPO_ROOT, get_settings
from ioccore.testing import with_database
from services.gateway.geo import unit_tree
from tests.gateway.test_stream import Reader

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]
DAY = "2026-03-02"
IND, TYPE = "admin_procedures.dossiers_received", "vn.binhduong.admin_procedures.dossier.received"


def test_simulated_traffic_posted_to_the_gateway_reaches_the_wall_api_and_stream(live_gateway, tmp_path):
    gw = live_gateway
    sim = tmp_path / "sim.jsonl"
    subprocess.run(
        [sys.executable, "-m", "ioccore.cli", "simulate", "--start", DAY, "--days", "1", "--out", "file",
         "--file", str(sim), "--no-progress"],
        check=True, cwd=REPO_ROOT, capture_output=True,
    )  # fmt: skip
    events = [json.loads(line) for line in sim.read_text().splitlines() if line.strip()]
    in_718 = unit_tree().subtree("718")
    expected = sum(1 for e in events if e["type"] == TYPE and e["subject"] in in_718)
    assert expected > 0
    # A 718 operator follows the stream while the data flows.
    reader = Reader(
        f"{gw.url}/v1/stream?kinds=indicators", gw.tokens("district_operator", district="718"), n=5
    )
    reader.start()
    assert reader.connected.wait(30) and reader.error is None
    headers = {"Authorization": f"Bearer {gw.tokens('province_admin')}",
               "Content-Type": "application/cloudevents-batch+json"}  # fmt: skip
    with httpx.Client(base_url=gw.url, timeout=60) as client:
        for i in range(0, len(events), 2000):
            r = client.post("/v1/events", content=json.dumps(events[i : i + 2000]), headers=headers)
            assert r.status_code == 202, r.text[:500]
    db_url = with_database(get_settings().effective_clickhouse_url, gw.app.state.gw.ch.database)
    log = open(tmp_path / "worker.log", "ab")  # noqa: SIM115
    worker = subprocess.Popen(
        [sys.executable, "-m", "ioccore.cli", "indicators", "worker"],
        cwd=REPO_ROOT, env={**os.environ, "IOC_CLICKHOUSE_URL": db_url, "IOC_INDICATORS_FLUSH_S": "0.5"},
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        got = None
        deadline = time.monotonic() + 240
        h = {"Authorization": f"Bearer {gw.tokens('district_operator', district='718')}"}
        while time.monotonic() < deadline and got != expected:
            r = httpx.get(
                f"{gw.url}/v1/indicators/{IND}/series", params={"unit": "718", "cadence": "day"}, headers=h
            )
            points = [p for p in r.json().get("points", []) if p["period"] == DAY]
            got = int(points[0]["value"]) if points else None
            time.sleep(1)
        assert got == expected, (got, expected, (tmp_path / "worker.log").read_text()[-2000:])
        reader.join(60)
        assert len(reader.messages) >= 5
        assert all(ev["subject"] in in_718 for _id, _kind, evs in reader.messages for ev in evs)
        tiles = httpx.get(f"{gw.url}/v1/wall/tiles", params={"unit": "718"}, headers=h).json()
        assert len(tiles) == 27 and any(t["value"] is not None for t in tiles)
    finally:
        worker.terminate()
        worker.wait(30)
        log.close()
