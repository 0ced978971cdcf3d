"""Operator actions: commands on ioc.alert.commands, the outcome read back from ioc.alert.command.results
(real broker; a contract-shaped stand-in answers for the alerts service)."""

from __future__ import annotations

import pytest

from tests.gateway import seed
from tests.gateway.fake_alerts import running
from tests.gateway.seed import C718, C724, D718, D724

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def test_acknowledge_is_applied_a_stale_one_rejected_and_no_answer_is_a_504(kafka_app):
    app, client, tokens = kafka_app
    ch = app.state.gw.ch
    seed.alerts(ch, [seed.alert_row("a1", C718, D718), seed.alert_row("quiet", C718, D718),
                     seed.alert_row("a724", C724, D724)])  # fmt: skip
    h = tokens.headers("district_operator", district=D718, sub="op718")
    with running(ch, silent={"quiet"}) as svc:
        r = client.post(
            "/v1/alerts/a1/acknowledge", json={"note": "đang xử lý", "expected_version": 1}, headers=h
        )
        assert r.status_code == 200, r.text
        assert (
            r.json()["outcome"] == "applied"
            and r.json()["state"] == "acknowledged"
            and r.json()["version"] == 2
        )
        cmd = svc.commands[-1]
        assert cmd["type"] == "vn.binhduong.alerts.command" and cmd["subject"] == C718
        assert cmd["data"]["actor"] == {"id": "op718", "role": "district_operator", "district": D718}
        assert cmd["data"]["expected_version"] == 1 and cmd["data"]["note"] == "đang xử lý"
        # Stale: the alert is at version 2 now.
        r = client.post("/v1/alerts/a1/resolve", json={"expected_version": 1}, headers=h)
        assert r.status_code == 409 and r.json()["outcome"] == "rejected"
        assert "/" in r.json()["reason"]
        r = client.post("/v1/alerts/a1/assign", json={"assignee": "cong-an-718"}, headers=h)
        assert r.json()["state"] == "assigned"
        assert client.post("/v1/alerts/a1/assign", json={}, headers=h).status_code == 422
        r = client.post("/v1/alerts/quiet/acknowledge", headers=h)
        assert r.status_code == 504 and "reload" in r.json()["detail"]
        assert client.post("/v1/alerts/a724/acknowledge", headers=h).status_code == 403
        assert len([c for c in svc.commands if c["data"]["alert_id"] == "a724"]) == 0
    audit = ch.execute(
        "SELECT action, outcome, resource FROM audit_log FINAL WHERE actor = 'op718' ORDER BY time, action"
    )
    assert sorted(audit) == sorted(
        [("alert.acknowledge", "applied", "a1"), ("alert.resolve", "rejected", "a1"),
         ("alert.assign", "applied", "a1"), ("alert.acknowledge", "timeout", "quiet"),
         ("alert.acknowledge", "denied", "a724")]
    )  # fmt: skip
