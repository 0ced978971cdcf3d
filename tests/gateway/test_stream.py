"""The live stream over real HTTP: one shared consumer, each client filtered to its scope, resumable."""

from __future__ import annotations

import asyncio
import json
import threading

import httpx
import pytest

from ioccore.kafka import producer
from ioccore.topics import ALERTS, HOTLINE_LIVE, INDICATORS
from tests.gateway import seed
from tests.gateway.seed import C718, C724, D718, D724, TODAY

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


class Reader(threading.Thread):
    """Reads SSE messages until `n` data messages arrived."""

    def __init__(self, url: str, token: str, n: int, last_event_id: str | None = None):
        super().__init__(daemon=True)
        self.url, self.token, self.n, self.last = url, token, n, last_event_id
        self.messages: list[tuple[str, str, list]] = []  # (id, event, data)
        self.connected = threading.Event()
        self.error: Exception | None = None

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        if self.last:
            headers["Last-Event-ID"] = self.last
        try:
            with httpx.stream("GET", self.url, headers=headers, timeout=httpx.Timeout(60.0)) as r:
                assert r.status_code == 200, r.read()
                eid = event = None
                for line in r.iter_lines():
                    if line.startswith(":") or line.startswith("retry:"):
                        self.connected.set()
                    elif line.startswith("id: "):
                        eid = line[4:]
                    elif line.startswith("event: "):
                        event = line[7:]
                        self.connected.set()
                    elif line.startswith("data: "):
                        self.messages.append((eid, event, json.loads(line[6:])))
                        if len(self.messages) >= self.n:
                            return
        except Exception as exc:  # surfaced by the test
            self.error = exc
            self.connected.set()


def _send(records: list[tuple[str, str, object]]) -> None:
    async def go():
        async with producer() as p:
            for topic, key, value in records:
                await p.send_and_wait(topic, json.dumps(value).encode(), key=key.encode())

    asyncio.run(go())


def test_each_client_gets_exactly_the_updates_of_its_scope_and_can_resume(live_gateway):
    gw = live_gateway
    url = f"{gw.url}/v1/stream"
    op718 = Reader(url, gw.tokens("district_operator", district=D718), n=3)
    province = Reader(url, gw.tokens("province_viewer"), n=6)
    commune = Reader(url + "?kinds=indicators", gw.tokens("commune_viewer", commune=C724), n=1)
    readers = [op718, province, commune]
    for r in readers:
        r.start()
    for r in readers:
        assert r.connected.wait(30) and r.error is None, r.error
    # Readers are registered once connected; the hub is fed after.
    a718, a724 = seed.alert_row("a718", C718, D718), seed.alert_row("a724", C724, D724)
    accidents = lambda v: seed.indicator_row("transport.accidents", TODAY, v)  # noqa: E731
    _send(
        [
            (INDICATORS, D718, seed.indicator_event(D718, accidents(4.0))),
            (INDICATORS, C724, seed.indicator_event(C724, accidents(1.0))),
            (INDICATORS, "74", seed.indicator_event("74", accidents(9.0))),
            (ALERTS, "a718", seed.alert_event("raised", a718, 1)),
            (ALERTS, "a724", seed.alert_event("raised", a724, 1)),
            (HOTLINE_LIVE, "c1", seed.live_call_event("c1", C718, D718)),
        ]
    )
    for r in readers:
        r.join(60)
        assert r.error is None and not r.is_alive()
    subjects = lambda rd: sorted((m[1], m[2][0]["subject"]) for m in rd.messages)  # noqa: E731
    assert subjects(op718) == [("alerts", C718), ("calls", C718), ("indicators", D718)]
    [(update,)] = [m[2] for m in op718.messages if m[1] == "indicators"]
    assert (update["data"]["unit"], update["data"]["values"][0]["value"]) == (D718, 4.0)
    assert len(province.messages) == 6
    assert subjects(commune) == [("indicators", C724)]
    # Reconnecting with the id of the first message replays the two after it, nothing else.
    resumed = Reader(
        url, gw.tokens("district_operator", district=D718), n=2, last_event_id=op718.messages[0][0]
    )
    resumed.start()
    resumed.join(60)
    assert [m[0] for m in resumed.messages] == [m[0] for m in op718.messages[1:]]
    # An unknown id (say, from before a restart) gets a reset: reload through the REST API.
    with httpx.stream(
        "GET", url, headers={"Authorization": f"Bearer {gw.tokens('province_viewer')}", "Last-Event-ID": "x-1"},
        timeout=30,
    ) as r:  # fmt: skip
        lines = []
        for line in r.iter_lines():
            lines.append(line)
            if line.startswith("event:"):
                break
    assert "event: reset" in lines


def test_the_stream_needs_a_token_and_accepts_it_as_a_query_parameter(live_gateway):
    gw = live_gateway
    assert httpx.get(f"{gw.url}/v1/stream", timeout=10).status_code == 401
    token = gw.tokens("province_viewer")
    with httpx.stream("GET", f"{gw.url}/v1/stream?access_token={token}", timeout=30) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
