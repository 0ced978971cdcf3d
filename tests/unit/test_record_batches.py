"""ioccore.streams.record_batches on a real Faust agent stream (Faust's test context: its own Stream, Event
and Message objects, no broker)."""

from __future__ import annotations

import asyncio

import faust

from ioccore.streams import record_batches


def test_batches_own_their_bytes_and_ack_every_record():
    app = faust.App("test-record-batches", store="memory://", web_enabled=False)
    topic = app.topic("t", key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    seen: list[dict] = []

    @app.agent(topic)
    async def agent(stream):
        async for batch in record_batches(stream, max_records=3, max_bytes=1 << 20, every_s=3600):
            events = batch._events
            records = batch.take_records()
            seen.append(
                {
                    "values": [r.value for r in records],
                    "offsets": [r.offset for r in records],
                    "left": batch.records,
                    "size": batch.size,
                    # Faust's events no longer hold the bytes: the records are their only owner
                    "faust_values": {(e.value, e.message.value) for e in events},
                }
            )
            await batch.ack()
            seen[-1]["acked"] = all(e.message.acked for e in events)

    async def main():
        async with agent.test_context() as ctx:
            for i in range(7):
                await ctx.put(f"v{i}".encode(), key=b"k")
            for _ in range(100):
                if sum(len(s["values"]) for s in seen) == 7 and "acked" in seen[-1]:
                    break
                await asyncio.sleep(0.02)

    asyncio.run(asyncio.wait_for(main(), 30))
    assert [v for s in seen for v in s["values"]] == [f"v{i}".encode() for i in range(7)]
    assert all(1 <= len(s["values"]) <= 3 for s in seen)
    assert [o for s in seen for o in s["offsets"]] == list(range(7))
    assert [s["size"] for s in seen] == [2 * len(s["values"]) for s in seen]  # b"v0".. are 2 bytes each
    assert all(s["left"] == [] and s["faust_values"] == {(None, None)} and s["acked"] for s in seen)
