"""A group-less consumer positioned at the end of its topics (every gateway process reads every partition)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from ioccore.kafka import consumer


@contextlib.asynccontextmanager
async def tail(*topics: str, bootstrap: str, client_id: str) -> AsyncIterator[Any]:
    """Yields a started consumer assigned to every partition of `topics`, positioned at their end, so
    nothing produced after this returns is missed."""
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
        for tp in parts:
            await cons.position(tp)  # resolve now: what is produced from here on is read
        yield cons
