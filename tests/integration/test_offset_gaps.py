"""ioccore.kafka.OffsetGaps on the real broker: records a consumer was made to skip are fetched and put back.

Tansu's skip (a fetch racing a concurrent produce, OffsetGaps' docstring) happens by chance, so most tests hand
`check()` the records a skipped consumer would have got; `test_concurrent_producers_lose_nothing` runs the race.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest

from ioccore.archive import RecordRef
from ioccore.kafka import OffsetGaps, consumer, ensure_topics, producer
from ioccore.topics import EVENTS, load_topics

pytestmark = pytest.mark.kafka


def _topic(partitions: int = 1) -> str:
    name = f"test.gaps.{uuid.uuid4().hex[:8]}"
    ensure_topics(topics=[dataclasses.replace(load_topics()[EVENTS], name=name, partitions=partitions)])
    return name


async def _produce(topic: str) -> None:
    """Offsets 0-1 one record per batch, 2-6 one batch of five, 7-8 one record per batch."""
    async with producer() as prod:
        for i in (0, 1):
            await prod.send_and_wait(topic, f"v{i}".encode(), partition=0)
        batch = prod.create_batch()
        for i in range(2, 7):
            assert batch.append(key=None, value=f"v{i}".encode(), timestamp=None) is not None
        await (await prod.send_batch(batch, topic, partition=0))
        for i in (7, 8):
            await prod.send_and_wait(topic, f"v{i}".encode(), partition=0)


def _ref(topic: str, offset: int) -> RecordRef:
    return RecordRef(topic, 0, offset, None, f"v{offset}".encode())


def test_a_mid_batch_skip_is_put_back_in_place():
    topic = _topic()

    async def main():
        await _produce(topic)
        gaps = OffsetGaps(None)
        try:
            first = await gaps.check([_ref(topic, 0), _ref(topic, 1), _ref(topic, 2), _ref(topic, 3)])
            # moved past 4-6 (inside a batch of five), as Tansu's race does to a batch
            second = await gaps.check([_ref(topic, 7), _ref(topic, 8)])
            return first, second, gaps.filled, gaps.lost
        finally:
            await gaps.close()

    first, second, filled, lost = asyncio.run(asyncio.wait_for(main(), 60))
    assert [r.offset for r in first] == [0, 1, 2, 3]
    assert [(r.offset, r.value) for r in second] == [(o, f"v{o}".encode()) for o in range(4, 9)]
    assert all(r.topic == topic and r.partition == 0 for r in second)
    assert (filled, lost) == (3, 0)


def test_a_restart_is_checked_against_the_committed_offset():
    """The group committed 4 (inside a batch); its next consumer is handed 7 first (a restarted worker whose
    first fetch raced a produce): 4-6 are fetched."""
    from aiokafka.structs import OffsetAndMetadata, TopicPartition

    topic, group = _topic(), f"test-gaps-{uuid.uuid4().hex[:8]}"

    async def main():
        await _produce(topic)
        async with consumer(topic, group_id=group) as c:
            while not c.assignment():
                await asyncio.sleep(0.1)
            await c.commit({TopicPartition(topic, 0): OffsetAndMetadata(4, "")})
        gaps = OffsetGaps(group)
        try:
            return await gaps.check([_ref(topic, 7), _ref(topic, 8)])
        finally:
            await gaps.close()

    out = asyncio.run(asyncio.wait_for(main(), 90))
    assert [r.offset for r in out] == [4, 5, 6, 7, 8]


def test_redelivery_and_work_done_elsewhere_are_no_gaps():
    topic, group = _topic(), f"test-gaps-{uuid.uuid4().hex[:8]}"
    from aiokafka.structs import OffsetAndMetadata, TopicPartition

    async def main():
        await _produce(topic)
        gaps = OffsetGaps(group)
        try:
            out = [await gaps.check([_ref(topic, o) for o in (0, 1, 2)])]
            out.append(await gaps.check([_ref(topic, o) for o in (1, 2, 3)]))  # moved back: re-delivered
            # The partition went to another worker, which did 4-7 and committed 8, then came back here.
            async with consumer(topic, group_id=group) as c:
                while not c.assignment():
                    await asyncio.sleep(0.1)
                await c.commit({TopicPartition(topic, 0): OffsetAndMetadata(8, "")})
            out.append(await gaps.check([_ref(topic, 8)]))
            return out, gaps.filled
        finally:
            await gaps.close()

    out, filled = asyncio.run(asyncio.wait_for(main(), 90))
    assert [[r.offset for r in b] for b in out] == [[0, 1, 2], [1, 2, 3], [8]]
    assert filled == 0


def test_offsets_the_broker_does_not_have_are_let_go():
    """A gap over offsets that hold no record (compaction or retention on Kafka) ends after retry_s."""
    topic = _topic()

    async def main():
        await _produce(topic)
        gaps = OffsetGaps(None, retry_s=0.5)
        try:
            await gaps.check([_ref(topic, o) for o in range(9)])
            out = await gaps.check([_ref(topic, 12)])  # 9-11 were never written
            return out, gaps.filled, gaps.lost
        finally:
            await gaps.close()

    out, filled, lost = asyncio.run(asyncio.wait_for(main(), 60))
    assert [r.offset for r in out] == [12]
    assert (filled, lost) == (0, 3)


def test_concurrent_producers_lose_nothing():
    """Four producers write one partition while a consumer follows it live (Tansu's race can skip a batch
    still being stored); with OffsetGaps every offset comes out once, in order."""
    from aiokafka.structs import TopicPartition

    topic, per_producer = _topic(), 1500

    async def produce(i: int) -> None:
        async with producer(linger_ms=0) as prod:
            for j in range(per_producer):
                await (await prod.send(topic, f"{i}-{j}".encode(), partition=0))

    async def main():
        tp = TopicPartition(topic, 0)
        gaps = OffsetGaps(None)
        seen: list[int] = []
        try:
            async with consumer(group_id=None, client_id="test-gaps-live", fetch_max_wait_ms=5) as c:
                c.assign([tp])
                c.seek(tp, 0)
                sending = asyncio.gather(*(produce(i) for i in range(4)))
                while len(seen) < 4 * per_producer:
                    got = await c.getmany(tp, timeout_ms=50)
                    refs = [
                        RecordRef(m.topic, m.partition, m.offset, m.key, m.value) for m in got.get(tp, ())
                    ]
                    seen += [r.offset for r in await gaps.check(refs)]
                    if sending.done() and not got:
                        sending.result()
                        if await c.position(tp) >= 4 * per_producer:
                            break
                await sending
        finally:
            await gaps.close()
        return seen, gaps.filled

    seen, filled = asyncio.run(asyncio.wait_for(main(), 120))
    print(f"records put back: {filled}")
    assert seen == list(range(4 * per_producer))


def test_an_unreachable_broker_is_asked_again_then_the_error_is_raised():
    from ioccore.errors import OperationalError
    from ioccore.stack import free_port

    gaps = OffsetGaps(None, bootstrap_servers=f"127.0.0.1:{free_port()}", outage_s=2.0)

    async def main():
        t0 = asyncio.get_running_loop().time()
        try:
            with pytest.raises(OperationalError, match="cannot connect a consumer"):
                await gaps.check([RecordRef("ioc.events", 0, 5, None, b"x")])
        finally:
            await gaps.close()
        return asyncio.get_running_loop().time() - t0

    waited = asyncio.run(asyncio.wait_for(main(), 60))
    assert waited >= 2.0  # asked again over the whole outage window, not given up at once


def test_a_worker_stream_gets_the_skipped_records_back_from_record_batches():
    """The workers' path: a Faust agent whose consumer was handed offsets 0, 1, 4, 5 of a real topic (2-3 skipped)
    gets 0-5 from ioccore.streams.record_batches, with their values."""
    import faust

    from ioccore.streams import record_batches

    topic = _topic()
    asyncio.run(_produce(topic))
    app = faust.App(f"test-gaps-{uuid.uuid4().hex[:8]}", store="memory://", web_enabled=False)
    t = app.topic(topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    seen: list[tuple[int, bytes]] = []

    @app.agent(t)
    async def agent(stream):
        async for batch in record_batches(stream, max_records=10, max_bytes=1 << 20, every_s=0.05):
            seen.extend((r.offset, r.value) for r in batch.take_records())
            await batch.ack()

    async def main():
        async with agent.test_context() as ctx:
            for offset in (0, 1, 4, 5):
                ctx.sent_offset = offset
                await ctx.put(f"v{offset}".encode(), partition=0)
            for _ in range(300):
                if len(seen) >= 6:
                    break
                await asyncio.sleep(0.02)

    asyncio.run(asyncio.wait_for(main(), 60))
    assert seen == [(o, f"v{o}".encode()) for o in range(6)]


def test_the_gateway_tail_gets_the_skipped_records_back():
    """The gateway's live feeds (a group-less tail, services.gateway.kafka_io): records produced after the tail
    started reach it each once, in order, though its consumer is moved past three of them (as Tansu's race
    does); nothing produced before it started is replayed."""
    from aiokafka.structs import TopicPartition

    from ioccore.kafka import bootstrap
    from services.gateway.kafka_io import tail

    topic = _topic()

    async def main():
        async with producer() as prod:
            for i in range(3):  # before the tail: not its business
                await prod.send_and_wait(topic, f"old{i}".encode(), partition=0)
        async with tail(topic, bootstrap=bootstrap(), client_id="test-tail") as feed:
            start = feed.gaps.expected[(topic, 0)]
            async with producer() as prod:
                for i in range(9):
                    await prod.send_and_wait(topic, f"new{i}".encode(), partition=0)
            feed.consumer.seek(TopicPartition(topic, 0), start + 3)  # moved past the first three
            got = []
            while len(got) < 9:
                got += await feed.records(timeout_ms=500, max_records=4)
            return start, got, feed.gaps.filled

    start, got, filled = asyncio.run(asyncio.wait_for(main(), 60))
    assert [r.value for r in got] == [f"new{i}".encode() for i in range(9)]
    assert [r.offset for r in got] == list(range(start, start + 9))
    assert filled == 3
