"""The stream hub's fan-out logic (pure: no broker): scope filtering, replay, reset, cutting off a slow client."""

from __future__ import annotations

import asyncio

from services.gateway.stream.hub import Hub


def _ev(subject: str) -> dict:
    return {"subject": subject, "id": subject, "data": {}}


def test_fan_out_filters_by_scope_and_kind_and_groups_a_record_by_subject():
    async def go():
        hub = Hub(buffer=100, client_queue=100)
        a, _ = hub.subscribe(frozenset({"718", "25741"}), frozenset({"indicators"}), None)
        b, _ = hub.subscribe(frozenset({"74", "718", "724"}), frozenset({"indicators", "alerts"}), None)
        hub.publish("indicators", [_ev("718"), _ev("724"), _ev("718"), {"no": "subject"}])
        hub.publish("alerts", [_ev("718")])
        got_a = [a.queue.get_nowait() for _ in range(a.queue.qsize())]
        got_b = [b.queue.get_nowait() for _ in range(b.queue.qsize())]
        assert [(m.kind, m.subject) for m in got_a] == [("indicators", "718")]
        assert b'"id":"718"' in got_a[0].frame and got_a[0].frame.count(b'"subject":"718"') == 2
        assert [(m.kind, m.subject) for m in got_b] == [
            ("indicators", "718"),
            ("indicators", "724"),
            ("alerts", "718"),
        ]

    asyncio.run(go())


def test_resume_replays_what_was_missed_and_an_unknown_or_too_old_id_resets():
    async def go():
        hub = Hub(buffer=3, client_queue=100)
        for _ in range(5):
            hub.publish("indicators", [_ev("718")])
        everything = frozenset({"718"})
        kinds = frozenset({"indicators"})
        c, reset = hub.subscribe(everything, kinds, f"{hub.epoch}-3")
        assert not reset and [c.queue.get_nowait().seq for _ in range(c.queue.qsize())] == [4, 5]
        _c, reset = hub.subscribe(everything, kinds, f"{hub.epoch}-1")  # 2 is no longer buffered
        assert reset
        _c, reset = hub.subscribe(everything, kinds, "another-process-4")
        assert reset

    asyncio.run(go())


def test_the_resume_buffer_is_bounded_by_bytes_and_a_client_past_it_resets():
    async def go():
        hub = Hub(buffer=1_000, client_queue=100, buffer_bytes=20_000)
        big = [
            {"subject": "718", "id": str(i), "data": {"pad": "x" * 1_000}} for i in range(3)
        ]  # ~3.2 kB a frame
        for _ in range(50):
            hub.publish("indicators", big)
        assert hub.buffer_bytes == sum(len(m.frame) for m in hub.buffer) <= 20_000
        kept = [m.seq for m in hub.buffer]
        assert kept == list(range(51 - len(kept), 51)) and 3 <= len(kept) < 50  # the newest, in order
        everything, kinds = frozenset({"718"}), frozenset({"indicators"})
        c, reset = hub.subscribe(everything, kinds, f"{hub.epoch}-{kept[0]}")
        assert not reset and c.queue.qsize() == len(kept) - 1
        _c, reset = hub.subscribe(everything, kinds, f"{hub.epoch}-{kept[0] - 2}")  # its next one was evicted
        assert reset

    asyncio.run(go())


def test_a_client_that_falls_behind_is_cut_off_not_the_others():
    async def go():
        hub = Hub(buffer=100, client_queue=2)
        slow, _ = hub.subscribe(frozenset({"718"}), frozenset({"indicators"}), None)
        for _ in range(3):
            hub.publish("indicators", [_ev("718")])
        assert slow.dropped
        fresh, _ = hub.subscribe(frozenset({"718"}), frozenset({"indicators"}), None)
        hub.publish("indicators", [_ev("718")])
        assert fresh.queue.qsize() == 1 and not fresh.dropped

    asyncio.run(go())


def test_hostile_records_and_resume_ids_neither_stop_the_hub_nor_raise():
    """The hub reads topics anyone with broker access can write, and Last-Event-ID comes from the client."""

    async def go():
        from ioccore.topics import ALERTS, INDICATORS

        hub = Hub(buffer=100, client_queue=100)
        c, _ = hub.subscribe(frozenset({"718"}), frozenset({"indicators", "alerts"}), None)
        for raw in (
            None,
            b"",
            b"\xff",
            b'"\xed\xa0\x80"',
            b"[" * 10_000 + b"]" * 10_000,
            b"[1, null]",
            b"42",
        ):
            hub.publish_raw(INDICATORS, raw)
        hub.publish_raw(ALERTS, b'[{"subject": "718", "id": "a"}]')
        assert [m.kind for m in (c.queue.get_nowait() for _ in range(c.queue.qsize()))] == ["alerts"]
        kinds = frozenset({"indicators"})
        for last in (f"{hub.epoch}-\u00b2", f"{hub.epoch}-" + "9" * 5000, f"{hub.epoch}--1", f"{hub.epoch}-",
                     "-", "\x00", "x" * 100_000):  # fmt: skip
            _c, reset = hub.subscribe(frozenset({"718"}), kinds, last)
            assert reset, last[:30]

    asyncio.run(go())
