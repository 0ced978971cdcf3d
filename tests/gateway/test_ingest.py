"""HTTP ingest on the real broker and ClickHouse 18.16: validation against the contracts, a department's own
source only, re-sends harmless, size and rate limits."""

from __future__ import annotations

import asyncio
import copy
import json

import pytest

from ioccore.kafka import consumer
from ioccore.settings import get_settings
from ioccore.topics import EVENTS, HOTLINE_CALLS

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]
BATCH = {"Content-Type": "application/cloudevents-batch+json"}
SINGLE = {"Content-Type": "application/cloudevents+json"}
LAND = "/so-tnmt/dat-dai"


def _example(name: str) -> dict:
    path = get_settings().contracts_dir / "events" / name
    return json.loads(path.read_text(encoding="utf-8"))


def _records(topic: str, n: int) -> list[tuple[bytes, object]]:
    async def read():
        out = []
        async with consumer(topic, group_id=None, auto_offset_reset="earliest") as c:
            while len(out) < n:
                batch = await asyncio.wait_for(c.getmany(timeout_ms=500), timeout=30)
                for recs in batch.values():
                    out.extend((r.key, json.loads(r.value)) for r in recs)
        return out

    return asyncio.run(read())


def _land_events(n: int) -> list[dict]:
    base = _example("land/examples/land_dispute.received.json")
    out = []
    for i in range(n):
        e = copy.deepcopy(base)
        e["id"] = f"dispute-{i}"
        e["subject"] = ["25741", "25942"][i % 2]
        out.append(e)
    return out


def test_a_department_posts_a_batch_and_kafka_has_it_keyed_by_subject(kafka_app):
    _app, client, tokens = kafka_app
    h = {**tokens.headers("department_system", source=LAND), **BATCH}
    events = _land_events(4)
    r = client.post("/v1/events", content=json.dumps(events), headers=h)
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": [e["id"] for e in events], "duplicates": []}
    recs = _records(EVENTS, 2)
    got = {key.decode(): sorted(e["id"] for e in value) for key, value in recs}
    assert got == {"25741": ["dispute-0", "dispute-2"], "25942": ["dispute-1", "dispute-3"]}
    # The same ids again: accepted, reported as duplicates, not published again.
    r = client.post("/v1/events", content=json.dumps(events[:2]), headers=h)
    assert r.json() == {"accepted": ["dispute-0", "dispute-1"], "duplicates": ["dispute-0", "dispute-1"]}
    single = {**tokens.headers("department_system", source=LAND), **SINGLE}
    r = client.post("/v1/events", content=json.dumps(events[3]), headers=single)
    assert r.json()["duplicates"] == ["dispute-3"]
    assert len(_records(EVENTS, 2)) == 2


def test_invalid_events_are_named_with_the_reason_and_none_is_taken(kafka_app):
    _app, client, tokens = kafka_app
    h = {**tokens.headers("department_system", source=LAND), **BATCH}
    events = _land_events(3)
    del events[1]["data"]["dispute_id"]
    events[2]["subject"] = "999999"
    r = client.post("/v1/events", content=json.dumps(events), headers=h)
    assert r.status_code == 422
    rejected = r.json()["rejected"]
    assert [x["position"] for x in rejected] == [1, 2]
    assert "dispute_id" in rejected[0]["reason"] and "subject" in rejected[1]["reason"]
    r = client.post("/v1/events", content=b"{not json", headers=h)
    assert r.status_code == 400
    r = client.post("/v1/events", content=json.dumps(events[0]), headers={**h, "Content-Type": "text/plain"})
    assert r.status_code == 415


def test_a_department_may_emit_only_its_own_sources_types(kafka_app):
    app, client, tokens = kafka_app
    h = {**tokens.headers("department_system", source=LAND, sub="tnmt"), **BATCH}
    health = _example("health/examples/" + sorted(
        p.name for p in (get_settings().contracts_dir / "events/health/examples").glob("*.json"))[0])  # fmt: skip
    as_other = copy.deepcopy(_land_events(1)[0])
    as_other["source"] = "/so-yte/his"
    r = client.post("/v1/events", content=json.dumps([_land_events(1)[0], health, as_other]), headers=h)
    assert r.status_code == 403, r.text
    assert [x["position"] for x in r.json()["rejected"]] == [1, 2]
    denied = app.state.gw.ch.execute(
        "SELECT count() FROM audit_log FINAL WHERE actor = 'tnmt' AND outcome = 'denied' AND action = 'ingest'"
    )
    assert denied[0][0] == 1


def test_switchboard_events_go_to_the_hotline_topic_keyed_by_call(kafka_app):
    _app, client, tokens = kafka_app
    call = _example("hotline/examples/call.received.json")
    h = {**tokens.headers("department_system", source=call["source"]), **SINGLE}
    r = client.post("/v1/events", content=json.dumps(call), headers=h)
    assert r.status_code == 202, r.text
    [(key, value)] = _records(HOTLINE_CALLS, 1)
    assert key.decode() == call["data"]["call_id"] and value["id"] == call["id"]


def test_size_and_rate_limits_answer_413_and_429(server_ch, clean_topics, tmp_path):
    from fastapi.testclient import TestClient

    from services.gateway.app import create_app
    from tests.gateway.conftest import Tokens, make_settings

    app = create_app(
        make_settings(tmp_path, max_request_bytes=2000, requests_per_s=1, request_burst=2), ch=server_ch
    )
    with TestClient(app) as client:
        h = {**Tokens(app).headers("department_system", source=LAND), **BATCH}
        r = client.post("/v1/events", content=json.dumps(_land_events(20)), headers=h)
        assert r.status_code == 413
        codes = [
            client.post("/v1/events", content=json.dumps(_land_events(1)), headers=h).status_code
            for _ in range(3)
        ]
        assert codes[-1] == 429 and 202 in codes
        r = client.post("/v1/events", content=json.dumps(_land_events(1)), headers=h)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


def test_with_the_archive_check_an_event_archived_long_ago_is_a_duplicate(server_ch, clean_topics, tmp_path):
    from fastapi.testclient import TestClient

    from services.gateway.app import create_app
    from tests.gateway.conftest import Tokens, make_settings

    old, new = _land_events(2)
    server_ch.insert(
        "events_archive",
        {"source": [old["source"]], "id": [old["id"]], "type": [old["type"]], "subject": [old["subject"]],
         "time": [seed_time()], "time_ms": [0], "received_at": [seed_time()], "topic": ["t"], "partition": [0],
         "offset": [0], "data": ["{}"]},
    )  # fmt: skip
    app = create_app(make_settings(tmp_path, dedup_archive=True), ch=server_ch)
    with TestClient(app) as client:
        h = {**Tokens(app).headers("department_system", source=LAND), **BATCH}
        r = client.post("/v1/events", content=json.dumps([old, new]), headers=h)
        assert r.status_code == 202
        assert r.json() == {"accepted": [old["id"], new["id"]], "duplicates": [old["id"]]}
        r = client.post("/v1/events", content=json.dumps([new]), headers=h)
        assert r.json()["duplicates"] == [new["id"]]


def seed_time():
    from tests.gateway.seed import NOW

    return NOW
