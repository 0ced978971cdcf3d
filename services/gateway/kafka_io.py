"""A group-less consumer positioned at the end of its topics (every gateway process reads every partition)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ioccore.archive import RecordRef
from ioccore.kafka import OffsetGaps, consumer


@dataclass
class Tail:
    """The records produced after the tail started, each offset once and in order per partition: records the
    broker moved the consumer past (ioccore.kafka.OffsetGaps) are fetched and put back in place."""

    consumer: Any
    gaps: OffsetGaps

    async def records(self, *, timeout_ms: int, max_records: int) -> list[RecordRef]:
        batches = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        got = [
            RecordRef(m.topic, m.partition, m.offset, m.key, m.value) for ms in batches.values() for m in ms
        ]
        return await self.gaps.check(got)


@contextlib.asynccontextmanager
async def tail(*topics: str, bootstrap: str, client_id: str) -> AsyncIterator[Tail]:
    """Yields a Tail over every partition of `topics`, positioned at their end, so nothing produced after
    this returns is missed."""
    from aiokafka.structs import TopicPartition

    async with consumer(
        group_id=None, bootstrap_servers=bootstrap, auto_offset_reset="latest", client_id=client_id
    ) as cons:
        parts: list[TopicPartition] = []
        for _ in range(50):
            await cons.topics()  # refreshes the cluster metadata
            parts = [TopicPartition(t, p) for t in topics for p in sorted(cons.partitions_for_topic(t) or ())]
            if all(cons.partitions_for_topic(t) for t in topics):
                break
            await asyncio.sleep(0.1)
        cons.assign(parts)
        await cons.seek_to_end(*parts)
        gaps = OffsetGaps(None, bootstrap_servers=bootstrap)
        for tp in parts:  # resolve now: what is produced from here on is read, from these offsets on
            gaps.expected[(tp.topic, tp.partition)] = await cons.position(tp)
        try:
            yield Tail(cons, gaps)
        finally:
            await gaps.close()
