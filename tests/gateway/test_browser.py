"""The wall and the console in real headless Chromium (Debian's /usr/bin/chromium, never downloaded), against
a live gateway on the real broker and ClickHouse 18.16. Screenshots go to tests/artifacts/ (gitignored)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import json
from pathlib import Path

import pytest

from ioccore.kafka import producer
from ioccore.topics import ALERTS, INDICATORS
from services.gateway.indicators.service import key_indicator
from tests.gateway import seed
from tests.gateway.fake_alerts import running
from tests.gateway.seed import C718, C724, D718, D724, TODAY

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make setup` installs the Debian package chromium")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            b.close()


def _send(records):
    async def go():
        async with producer() as p:
            for topic, key, value in records:
                await p.send_and_wait(topic, json.dumps(value).encode(), key=key.encode())

    # Playwright's sync API holds this thread's event loop: send from another thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, go()).result()


def test_the_wall_shows_27_fields_and_9_districts_and_updates_live(live_gateway, browser):
    gw = live_gateway
    ch = gw.app.state.gw.ch
    seed.active(ch)
    ind, cadence = key_indicator("transport", "province")
    seed.values(ch, [seed.value(ind.id, "74", TODAY, 5.0)])
    seed.alerts(
        ch,
        [
            seed.alert_row("a718", C718, D718, severity="critical"),
            seed.alert_row("a74", "74", "", severity="info"),
        ],
    )
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    page.goto(f"{gw.url}/wall#token={gw.tokens('province_viewer')}")
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    assert page.locator(".tile").count() == 27
    assert page.locator(".district[data-district]").count() == 9
    assert page.locator(".district[data-province='74'] [data-severity='info']").inner_text() == "1"
    assert page.locator(".tile[data-field='transport']").get_attribute("data-value") == "5"
    assert page.locator(".district[data-district='718'] [data-severity='critical']").inner_text() == "1"
    page.wait_for_selector(".live.ok", timeout=30_000)
    # New events arrive: the tiles and the ticker change without a reload. One update event carries the
    # province's changed values: the transport tile's, another cadence of it (not the tile's), a late value of
    # the day before (not the latest), another field's.
    a724 = seed.alert_row("a724", C724, D724, severity="warning")
    seed.alerts(ch, [a724])
    other, other_cadence = key_indicator("environment", "province")
    assert cadence == other_cadence == "day"  # the rows below are of the day TODAY
    rows = [
        seed.indicator_row(ind.id, TODAY, 123.0, version=2, cadence=cadence),
        seed.indicator_row(ind.id, TODAY, 999.0, version=2, cadence="week", period="2026-W48"),
        seed.indicator_row(ind.id, TODAY - dt.timedelta(days=1), 555.0, version=2, cadence=cadence),
        seed.indicator_row(other.id, TODAY, 77.0, version=2, cadence=other_cadence),
    ]
    _send(
        [
            (INDICATORS, "74", seed.indicator_event("74", *rows)),
            (ALERTS, "a724", seed.alert_event("raised", a724, 1)),
        ]
    )
    page.wait_for_selector(".tile[data-field='transport'][data-value='123']", timeout=30_000)
    page.wait_for_selector(".tile[data-field='environment'][data-value='77']", timeout=30_000)
    page.wait_for_selector("#ticker [data-alert-id='a724']", timeout=30_000)
    page.wait_for_selector(".district[data-district='724'] .sev.warning", timeout=30_000)
    assert page.locator(".tile[data-field='transport']").get_attribute("data-value") == "123"
    page.screenshot(path=str(ARTIFACTS / "wall.png"))
    # English switch.
    page.click("#lang")
    assert page.locator("h1 [data-i18n='title']").inner_text() == "Intelligent Operations Center"
    # A district's IOC wall: the same 27 fields for the district, its own alerts.
    district = browser.new_page(viewport={"width": 1920, "height": 1080})
    district.goto(f"{gw.url}/wall/718#token={gw.tokens('district_operator', district=D718)}")
    district.wait_for_selector("body[data-ready='1']", timeout=30_000)
    assert district.locator(".tile").count() == 27
    assert district.locator(".district").count() == 1  # its own row, no province row
    assert district.locator("#ticker [data-alert-id]").evaluate_all(
        "xs => xs.map(x => x.dataset.alertId)"
    ) == ["a718"]
    district.screenshot(path=str(ARTIFACTS / "wall-718.png"))


def test_a_district_operator_sees_only_their_alerts_and_acknowledges_one_live(live_gateway, browser):
    gw = live_gateway
    ch = gw.app.state.gw.ch
    seed.alerts(
        ch,
        [seed.alert_row("a718", C718, D718), seed.alert_row("b718", D718, D718, severity="critical"),
         seed.alert_row("a724", C724, D724)],
    )  # fmt: skip
    seed.alert_events(
        ch, [{"alert_id": "a718", "version": 1, "transition": "raised", "actor": "system", "state": "firing"}]
    )
    with running(ch):
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        page.goto(f"{gw.url}/console#token={gw.tokens('district_operator', district=D718, sub='op718')}")
        page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        ids = sorted(page.locator("#inbox tr").evaluate_all("rs => rs.map(r => r.dataset.alertId)"))
        assert ids == ["a718", "b718"]
        page.click("#inbox tr[data-alert-id='a718']")
        page.wait_for_selector("#btn-acknowledge")
        assert "Liên hệ" in page.locator(".sop").inner_text()
        page.wait_for_selector(".live.ok", timeout=30_000)
        page.click("#btn-acknowledge")
        page.wait_for_selector("#outcome.applied, #outcome.rejected", timeout=30_000)
        assert "applied" in page.locator("#outcome").get_attribute("class"), page.locator(
            "#outcome"
        ).inner_text()
        page.wait_for_selector("#inbox tr[data-alert-id='a718'][data-state='acknowledged']", timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "console.png"))
