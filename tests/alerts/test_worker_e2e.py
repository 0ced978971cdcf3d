"""The alerts worker end to end on the real broker and ClickHouse 18.16: the simulator's `--anomaly` in district
718 goes through the real indicators worker into the alerts worker, which raises the expected alert in the
right district; operators act on it via ioc.alert.commands and read the results back; a district-724
operator's command on a 718 alert is rejected; a restarted worker goes on from ClickHouse."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from ioccore.kafka import consumer, producer
from ioccore.settings import REPO_ROOT
from ioccore.testing import fresh_clickhouse, spawn_ioc, stop_processes
from ioccore.topics import ALERT_COMMAND_RESULTS, ALERT_COMMANDS, ALERTS
from services.alerts import store

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]
RULE = "environment.volume_high"


@pytest.fixture
def database(stack_env, tmp_path):
    with fresh_clickhouse("server", tmp_path) as ch:
        yield ch.url, ch


async def _wait_for(topic: str, match, procs, logs, timeout: float = 240) -> dict:
    """The first event on `topic` for which match(event) holds (workers must stay alive meanwhile)."""
    deadline = time.monotonic() + timeout
    async with consumer(topic, group_id=f"e2e-{uuid.uuid4().hex[:8]}") as c:
        while time.monotonic() < deadline:
            for msgs in (await c.getmany(timeout_ms=500)).values():
                for m in msgs:
                    event = json.loads(m.value)
                    if match(event):
                        return event
            dead = [p for p in procs if p.poll() is not None]
            assert not dead, "a worker died: " + "".join(log.read_text()[-3000:] for log in logs)
    raise AssertionError(f"nothing matched on {topic} within {timeout} s")


async def _command(action: str, alert_id: str, district: str, **kw) -> str:
    cid = str(uuid.uuid4())
    event = {
        "specversion": "1.0",
        "id": cid,
        "source": "urn:ioc:gateway",
        "type": "vn.binhduong.alerts.command",
        "time": "2026-11-23T10:20:00+07:00",
        "subject": alert_id.split("|")[1],
        "data": {"command_id": cid, "alert_id": alert_id, "action": action,
                 "actor": {"id": f"op.{district}", "role": "district_operator", "district": district}, **kw},
    }  # fmt: skip
    async with producer() as p:
        await p.send_and_wait(ALERT_COMMANDS, json.dumps(event).encode(), key=alert_id.encode())
    return cid


def _result(cid: str, procs, logs) -> dict:
    ev = asyncio.run(
        _wait_for(ALERT_COMMAND_RESULTS, lambda e: e["data"]["command_id"] == cid, procs, logs, 60)
    )
    return ev["data"]


def test_anomaly_raises_the_alert_in_its_district_and_operators_act_on_it(
    stack_env, clean_topics, database, tmp_path
):
    url, ch = database
    env = {"IOC_CLICKHOUSE_URL": url}
    logs = [tmp_path / "indicators.log", tmp_path / "alerts.log"]
    alerts_env = {**env, "IOC_ALERTS_APP_ID": f"alerts-{uuid.uuid4().hex[:6]}", "IOC_ALERTS_TICK_S": "1"}
    procs = [
        spawn_ioc(
            ["indicators", "worker"], logs[0], **env, IOC_INDICATORS_APP_ID=f"ind-{uuid.uuid4().hex[:6]}"
        ),
        spawn_ioc(["alerts", "worker"], logs[1], **alerts_env),
    ]
    try:
        subprocess.run(
            [sys.executable, "-m", "ioccore.cli", "simulate", "--start", "2026-03-02", "--days", "1",
             "--anomaly", "environment:718:5", "--out", "kafka", "--no-progress"],
            check=True, cwd=REPO_ROOT, env=os.environ.copy(), capture_output=True,
        )  # fmt: skip
        raised = asyncio.run(
            _wait_for(
                ALERTS, lambda e: e["data"]["rule"] == RULE and e["type"].endswith(".raised"), procs, logs
            )
        )
        data = raised["data"]
        assert (data["unit"], data["district"], raised["subject"], data["state"]) == (
            "718",
            "718",
            "718",
            "firing",
        )
        assert data["value"] > data["threshold"] == 1669
        aid = data["alert_id"]
        # in ClickHouse too, written before it was published
        [row] = store.query(ch, district="718", field="environment", state="firing")
        assert row["alert_id"] == aid and row["severity"] == "critical" and "Xem chi tiết" in row["sop_vi"]

        # a district-724 operator may not touch a 718 alert; nothing changes
        res = _result(
            asyncio.run(_command("acknowledge", aid, "724", note="không phải của tôi")), procs, logs
        )
        assert (res["outcome"], res["version"], res["state"]) == ("rejected", 1, "firing")
        assert "718" in res["reason"] and "724" in res["reason"]

        res = _result(asyncio.run(_command("acknowledge", aid, "718", note="Đang xác minh", expected_version=1)), procs, logs)  # fmt: skip
        assert (res["outcome"], res["state"], res["version"]) == ("applied", "acknowledged", 2)
        stale = _result(asyncio.run(_command("resolve", aid, "718", expected_version=1)), procs, logs)
        assert stale["outcome"] == "rejected" and "stale" in stale["reason"]

        # a restart rebuilds the state from alert_events: the next command finds version 2
        stop_processes([procs[1]])
        procs[1] = spawn_ioc(["alerts", "worker"], logs[1], **alerts_env)
        res = _result(asyncio.run(_command("assign", aid, "718", assignee="cb.718.tranthib", expected_version=2)), procs, logs)  # fmt: skip
        assert (res["outcome"], res["state"], res["version"]) == ("applied", "assigned", 3)
        res = _result(
            asyncio.run(_command("resolve", aid, "718", note="Đã xử lý", expected_version=3)), procs, logs
        )
        assert (res["outcome"], res["state"], res["version"]) == ("applied", "resolved", 4)
    finally:
        stop_processes(procs)
    timeline = store.timeline(ch, aid)
    assert [(e["transition"], e["actor"]) for e in timeline] == [
        ("raised", "system"), ("acknowledged", "op.718"), ("assigned", "op.718"), ("resolved", "op.718"),
    ]  # fmt: skip
    # the operator's commands read the same
    cli = {**os.environ, **env}
    listed = subprocess.run([sys.executable, "-m", "ioccore.cli", "alerts", "list", "--district", "718",
                             "--field", "environment", "--json"], env=cli, capture_output=True, text=True, check=True)  # fmt: skip
    assert [(r["alert_id"], r["state"]) for r in json.loads(listed.stdout)] == [(aid, "resolved")]
    shown = subprocess.run([sys.executable, "-m", "ioccore.cli", "alerts", "timeline", aid],
                           env=cli, capture_output=True, text=True, check=True)  # fmt: skip
    assert "Đang xác minh" in shown.stdout and "cb.718.tranthib" in shown.stdout
    # the anomaly was in 718 only: no volume alert of this rule elsewhere
    others = [r for r in store.query(ch, field="environment", limit=1000) if r["rule"] == RULE]
    assert {r["district"] for r in others} == {"718"}
