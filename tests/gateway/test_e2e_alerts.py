"""End to end with every real part: a department posts to the gateway → Kafka → indicators worker → alerts
worker → the district operator's console in Chromium, who acknowledges the alert and sees it change live."""

from __future__ import annotations

import datetime as dt
import json
import subprocess

import httpx
import pytest

from ioccore.settings import get_settings
from ioccore.testing import spawn_ioc, stop_processes, with_database
from tests.gateway.test_browser import ARTIFACTS, browser  # noqa: F401 (fixture)

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]
RULE = (
    "admin_procedures.online_dossier_rate.below_target"  # contracts/rules: online share under the 50% target
)


def _dossiers(n: int, online: int) -> list[dict]:
    now = dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).replace(microsecond=0)
    return [
        {
            "specversion": "1.0",
            "id": f"e2e-dossier-{i}",
            "source": "/so-tttt/mot-cua",
            "type": "vn.binhduong.admin_procedures.dossier.received",
            "time": (now - dt.timedelta(seconds=n - i)).isoformat(),
            "subject": "25741",  # a ward of Thủ Dầu Một (718)
            "data": {
                "dossier_id": f"E2E-{i}",
                "procedure_code": "1.004227",
                "procedure_group": "ho-tich",
                "level": "commune",
                "channel": "online" if i < online else "counter",
                "due_at": (now + dt.timedelta(days=2)).isoformat(),
            },
        }
        for i in range(n)
    ]


def _worker(name: str, db_url: str, log_path) -> subprocess.Popen:
    return spawn_ioc([name, "worker"], log_path, IOC_CLICKHOUSE_URL=db_url, IOC_INDICATORS_FLUSH_S="0.5")


def test_a_department_event_becomes_an_alert_the_718_operator_acknowledges(live_gateway, browser, tmp_path):  # noqa: F811
    gw = live_gateway
    db_url = with_database(get_settings().effective_clickhouse_url, gw.app.state.gw.ch.database)
    log = tmp_path / "workers.log"
    workers = [_worker("indicators", db_url, log), _worker("alerts", db_url, log)]
    try:
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        page.goto(f"{gw.url}/console#token={gw.tokens('district_operator', district='718', sub='op718')}")
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        page.wait_for_selector(".live.ok", timeout=60_000)
        # The department posts through the gateway: 2 of 20 dossiers online, 10% against a 50% target.
        token = gw.tokens("department_system", source="/so-tttt/mot-cua")
        r = httpx.post(
            f"{gw.url}/v1/events",
            content=json.dumps(_dossiers(20, online=2)),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/cloudevents-batch+json",
            },
            timeout=30,
        )
        assert r.status_code == 202, r.text
        row = f"#inbox tr[data-alert-id^='{RULE}|718|']"
        page.wait_for_selector(row, timeout=180_000)
        # Only the district's alerts: the province-level one (unit 74) is not in a 718 operator's inbox.
        ids = page.locator("#inbox tr").evaluate_all("rs => rs.map(r => r.dataset.alertId)")
        assert ids and all("|718|" in i or "|257" in i for i in ids), ids
        page.click(row)
        page.wait_for_selector("#btn-acknowledge")
        page.click("#btn-acknowledge")
        page.wait_for_selector("#outcome.applied, #outcome.rejected", timeout=60_000)
        assert "applied" in page.locator("#outcome").get_attribute("class"), page.locator(
            "#outcome"
        ).inner_text()
        page.wait_for_selector(f"{row}[data-state='acknowledged']", timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "console-e2e.png"))
        audit = gw.app.state.gw.ch.execute(
            "SELECT action, outcome FROM audit_log FINAL WHERE actor = 'op718' AND action = 'alert.acknowledge'"
        )
        assert audit == [("alert.acknowledge", "applied")]
    finally:
        stop_processes(workers, timeout_s=30)
