"""Hostile payloads against HTTP ingest, on the real broker and ClickHouse 18.16: deeply nested JSON, bodies in
the wrong encoding or with a false Content-Type or Content-Encoding, oversized bodies and headers, numbers JSON
does not know, huge integers, null bytes, replayed batches. Every answer is a 4xx with a message (or a 2xx for
what is valid), never a 5xx; and what is refused never reaches Kafka."""

from __future__ import annotations

import asyncio
import codecs
import copy
import gzip
import json
import uuid

import httpx
import pytest
from fastapi.testclient import TestClient

from ioccore.kafka import end_offsets
from ioccore.topics import EVENTS, HOTLINE_CALLS
from services.gateway.app import create_app
from tests.gateway.conftest import Tokens, make_settings
from tests.gateway.test_ingest import BATCH, LAND, SINGLE, _example, _land_events, _records

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


@pytest.fixture
def gateway(server_ch, clean_topics, tmp_path):
    """The whole app on the real broker, checking re-sends against the archive too (hostile ids reach SQL)."""
    app = create_app(make_settings(tmp_path, dedup_archive=True, max_request_bytes=256 * 1024), ch=server_ch)
    with TestClient(app) as client:
        yield app, client, Tokens(app)


def _published() -> int:
    return sum(asyncio.run(end_offsets(EVENTS)).values()) + sum(
        asyncio.run(end_offsets(HOTLINE_CALLS)).values()
    )


def _refused(r: httpx.Response, *codes: int) -> None:
    """A 4xx (one of `codes` when given) whose body says why."""
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:500])
    if codes:
        assert r.status_code in codes, (r.status_code, r.text[:500])
    detail = r.json()["detail"]
    assert detail and (isinstance(detail, list) or detail.strip()), r.text[:500]


def _event(i: int = 0, **data) -> dict:
    e = _land_events(i + 1)[i]
    e["id"] = f"hostile-{uuid.uuid4().hex[:12]}"
    e["data"].update(data)
    return e


def test_deeply_nested_json_is_a_4xx_not_a_recursion_error(gateway):
    _app, client, tokens = gateway
    h = {**tokens.headers("department_system", source=LAND), **BATCH}
    depth = 10_000
    bodies = {
        "arrays": b"[" * depth + b"]" * depth,
        "objects": b'{"a":' * depth + b"1" + b"}" * depth,
        "in data": json.dumps([_event()])
        .replace('"dispute_id"', '"deep": ' + "[" * depth + "]" * depth + ', "dispute_id"')
        .encode(),  # fmt: skip
        "in an extension": json.dumps([_event()])[:-2].encode()
        + b', "ext": '
        + b"[" * depth
        + b"]" * depth
        + b"}]",
        "unclosed": b"[" * depth,
    }
    before = _published()
    for name, body in bodies.items():
        r = client.post("/v1/events", content=body, headers=h)
        try:
            _refused(r, 400)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None
    # a nesting the contracts allow stays accepted: a valid event next to nothing deep
    r = client.post("/v1/events", content=json.dumps([_event()]), headers=h)
    assert r.status_code == 202, r.text
    assert _published() == before + 1


def test_wrongly_encoded_bodies_and_false_content_types_are_refused(gateway):
    _app, client, tokens = gateway
    auth = tokens.headers("department_system", source=LAND)
    event = _event(dispute_id="Tranh chấp đất đai ở Thủ Dầu Một")
    text = json.dumps(event, ensure_ascii=False)
    before = _published()
    cases = [
        ("invalid UTF-8", b'{"id": "\xff\xfe\xfa"}', SINGLE, (400,)),
        ("UTF-16", text.encode("utf-16"), SINGLE, (400,)),
        ("UTF-16-LE without BOM", text.encode("utf-16-le"), SINGLE, (400,)),
        ("latin-1", text.encode("latin-1", "replace").replace(b"?", b"\xe0"), SINGLE, (400,)),
        ("UTF-32", text.encode("utf-32"), SINGLE, (400,)),
        ("text/plain", text.encode(), {"Content-Type": "text/plain"}, (415,)),
        ("form", b"a=1", {"Content-Type": "application/x-www-form-urlencoded"}, (415,)),
        ("no Content-Type", text.encode(), {}, (415,)),
        ("empty body", b"", SINGLE, (400,)),
        ("whitespace", b"  \n ", SINGLE, (400,)),
        ("gzip body not declared", gzip.compress(text.encode()), SINGLE, (400,)),
        ("gzip declared", gzip.compress(text.encode()), {**SINGLE, "Content-Encoding": "gzip"}, (415,)),
        ("gzip claimed, plain body", text.encode(), {**SINGLE, "Content-Encoding": "gzip"}, (415,)),
        ("br claimed", text.encode(), {**SINGLE, "Content-Encoding": "br"}, (415,)),
        ("array as single", json.dumps([event]).encode(), SINGLE, (400,)),
        ("object as batch", text.encode(), BATCH, (400,)),
        ("JSON scalar", b'"just a string"', SINGLE, (422,)),
        ("null", b"null", SINGLE, (422,)),
        ("batch of scalars", b"[1, null, true]", BATCH, (422,)),
        ("trailing garbage", text.encode() + b"}}", SINGLE, (400,)),
        ("two documents", (text + "\n" + text).encode(), SINGLE, (400,)),
    ]
    for name, body, headers, codes in cases:
        r = client.post("/v1/events", content=body, headers={**auth, **headers})
        try:
            _refused(r, *codes)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None
    assert _published() == before
    # A UTF-8 byte order mark: JSON text may not begin with one (RFC 8259), refused with the reason too;
    # a charset parameter naming UTF-8 is fine.
    r = client.post("/v1/events", content=codecs.BOM_UTF8 + text.encode(), headers={**auth, **SINGLE})
    _refused(r, 400)
    r = client.post(
        "/v1/events",
        content=text.encode(),
        headers={**auth, "Content-Type": "application/cloudevents+json; charset=utf-8"},
    )
    assert r.status_code == 202, r.text
    assert _published() == before + 1


def test_numbers_json_does_not_know_huge_integers_and_null_bytes(gateway):
    app, client, tokens = gateway
    h = {**tokens.headers("department_system", source=LAND), **BATCH}
    before = _published()
    base = json.dumps([_event()])
    for literal in ("NaN", "Infinity", "-Infinity", "nan", "inf"):
        body = base.replace('"dispute_id": ', f'"amount": {literal}, "dispute_id": ')
        _refused(client.post("/v1/events", content=body, headers=h), 400)
    for huge in ("1" + "0" * 400, "-" + "9" * 5000, "1e400", "123456789012345678901234567890"):
        body = base.replace('"specversion": ', f'"bignumber": {huge}, "specversion": ')
        r = client.post("/v1/events", content=body, headers=h)
        assert r.status_code in (202, 400, 422), (huge[:20], r.status_code, r.text[:300])
        if r.status_code != 202:
            _refused(r)
    # Null bytes and other control characters: in the id (which reaches the archive check's SQL), in the
    # source, in data. Each is refused by the contract or taken verbatim; never a 5xx.
    hostile_ids = ["a\x00b", "\x00", "x'; DROP TABLE events_archive; --", "\\", "a\\'b", "\u2028", "\ud800"]
    for hid in hostile_ids:
        e = _event()
        e["id"] = hid
        body = json.dumps([e])  # \u0000 and lone surrogates arrive as JSON escapes
        r = client.post("/v1/events", content=body, headers=h)
        assert r.status_code in (202, 400, 403, 422), (repr(hid), r.status_code, r.text[:300])
        if r.status_code != 202:
            _refused(r)
    e = _event()
    e["data"]["dispute_id"] = "nul \x00 here and a lone surrogate \ud800"
    r = client.post("/v1/events", content=json.dumps([e]), headers=h)
    assert r.status_code in (202, 400, 422), r.text
    raw_nul = (
        json.dumps([_event()]).replace('"dispute_id"', '"dispute\x00id"').encode()
    )  # a raw NUL inside a string
    _refused(client.post("/v1/events", content=raw_nul, headers=h), 400)
    assert app.state.gw.ch.execute("EXISTS TABLE events_archive")[0][0] == 1
    assert _published() >= before


def test_oversized_bodies_and_headers_are_refused(gateway):
    _app, client, tokens = gateway
    h = {**tokens.headers("department_system", source=LAND), **BATCH}
    before = _published()
    big = json.dumps(_land_events(1) * 1).encode()
    padding = b" " * (300 * 1024)
    _refused(client.post("/v1/events", content=big[:-1] + padding + b"]", headers=h), 413)

    def chunks():  # no Content-Length: the limit holds on the stream itself
        for _ in range(100):
            yield b" " * 4096
        yield big

    _refused(client.post("/v1/events", content=chunks(), headers=h), 413)
    # A Content-Length that lies low: the body read is what counts.
    r = client.post("/v1/events", content=big[:-1] + padding + b"]", headers={**h, "Content-Length": "10"})
    assert 400 <= r.status_code < 500
    # An event whose one string is huge, inside the limit: the contract's maxLength refuses it.
    e = _event()
    e["id"] = "x" * 100_000
    _refused(client.post("/v1/events", content=json.dumps([e]), headers=h), 422)
    # Huge headers: a token of 20 kB (garbage, under the header limit), of 100 kB, a header of 100 kB beside a
    # valid token.
    r = client.post("/v1/events", content=big, headers={**BATCH, "Authorization": "Bearer " + "a" * 20_000})
    _refused(r, 401)
    r = client.post("/v1/events", content=big, headers={**BATCH, "Authorization": "Bearer " + "a" * 100_000})
    _refused(r, 431)
    r = client.post("/v1/events", content=big, headers={**h, "X-Padding": "p" * 100_000})
    _refused(r, 431)
    assert _published() <= before + 1


def test_oversized_headers_against_the_real_server(live_gateway):
    """Through uvicorn (not the in-process client): a header section over the server's limit is a 4xx."""
    h = {**live_gateway.tokens.headers("department_system", source=LAND), **BATCH}
    body = json.dumps([_event()])
    with httpx.Client(base_url=live_gateway.url, timeout=30) as http:
        for headers in (
            {**h, "X-Padding": "p" * 200_000},
            {**h, **{f"X-H{i}": "v" * 100 for i in range(2000)}},
            {**BATCH, "Authorization": "Bearer " + "a" * 200_000},
        ):
            try:
                r = http.post("/v1/events", content=body, headers=headers)
            except httpx.RemoteProtocolError:
                continue  # the server closed the connection on the oversized header section: refused
            assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
        # and the server still answers
        assert http.get("/healthz").status_code == 200
        r = http.post("/v1/events", content=body, headers=h)
        assert r.status_code == 202, r.text


def test_a_replayed_batch_is_published_once_and_the_answer_says_so(gateway):
    """Re-sending is what a department system does after a timeout: the answer names the duplicates, Kafka gets
    each (source, id) once, and the first version of an event stands (a re-send with other data is not news)."""
    _app, client, tokens = gateway
    h = {**tokens.headers("department_system", source=LAND), **BATCH}
    events = [_event(i % 2) for i in range(3)]
    r1 = client.post("/v1/events", content=json.dumps(events), headers=h)
    assert r1.status_code == 202 and r1.json()["duplicates"] == []
    r2 = client.post("/v1/events", content=json.dumps(events), headers=h)
    assert r2.status_code == 202
    assert r2.json() == {"accepted": [e["id"] for e in events], "duplicates": [e["id"] for e in events]}
    # the same event twice in one request, and a re-send whose data differs
    again = copy.deepcopy(events[0])
    again["data"]["dispute_id"] = "changed"
    fresh = _event()
    r3 = client.post("/v1/events", content=json.dumps([fresh, fresh, again]), headers=h)
    assert r3.status_code == 202
    assert r3.json()["duplicates"] == [fresh["id"], again["id"]]
    # a switchboard call replayed in single mode
    call = _example("hotline/examples/call.received.json")
    hc = {**tokens.headers("department_system", source=call["source"]), **SINGLE}
    assert client.post("/v1/events", content=json.dumps(call), headers=hc).json()["duplicates"] == []
    assert client.post("/v1/events", content=json.dumps(call), headers=hc).json()["duplicates"] == [
        call["id"]
    ]

    published = [e for _key, value in _records(EVENTS, 3) for e in value]
    ids = [e["id"] for e in published]
    assert sorted(ids) == sorted([e["id"] for e in events] + [fresh["id"]])
    assert next(e for e in published if e["id"] == events[0]["id"])["data"] == events[0]["data"]
    assert [v["id"] for _k, v in _records(HOTLINE_CALLS, 1)] == [call["id"]]
    assert sum(asyncio.run(end_offsets(HOTLINE_CALLS)).values()) == 1

    # and archived once each: the archiver over ioc.events (what the indicators worker also does)
    ch = _app.state.gw.ch
    asyncio.run(_archive_until(ch, len(events) + 1))
    rows = ch.execute("SELECT id, count() FROM events_archive WHERE source = %(s)s GROUP BY id", {"s": LAND})
    assert dict(rows) == {e["id"]: 1 for e in [*events, fresh]}


async def _archive_until(ch, n: int) -> None:
    from ioccore.archive import run_archiver
    from ioccore.contracts import load_contracts

    stop = asyncio.Event()
    counters: dict[str, int] = {}
    task = asyncio.create_task(
        run_archiver(
            ch, load_contracts(), group_id=f"archiver-{uuid.uuid4().hex[:6]}", stop=stop, counters=counters
        )
    )
    try:
        async with asyncio.timeout(120):
            while counters.get("archived", 0) < n:
                assert not task.done(), task.exception()
                await asyncio.sleep(0.2)
    finally:
        stop.set()
        await task
