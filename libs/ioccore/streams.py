"""Faust apps for the IOC services, built one way: `make_app`.

Group timing comes from ioccore.kafka.GROUP_TIMING (a worker is Ready in ~5 s on the local Tansu
instead of ~32 s with Faust's defaults). Offsets are committed by Faust after processing; sinks are
idempotent (DESIGN.md), so redelivery after a crash changes nothing. Agent concurrency stays 1 where
offsets matter (faust-streaming#606).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ioccore.archive import RecordRef
from ioccore.kafka import GROUP_TIMING, OffsetGaps, bootstrap
from ioccore.settings import get_settings
from ioccore.stack import free_port

T = TypeVar("T")


def faust_settings(**overrides: Any) -> dict[str, Any]:
    """faust.App keyword arguments for the configured broker."""
    faust_dir = get_settings().home / "faust"
    faust_dir.mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = {
        "broker": "kafka://" + ",".join(bootstrap().split(",")),
        "broker_session_timeout": GROUP_TIMING["session_timeout_ms"] / 1000,
        "broker_heartbeat_interval": GROUP_TIMING["heartbeat_interval_ms"] / 1000,
        "consumer_auto_offset_reset": "earliest",
        "store": "memory://",
        "web_host": "127.0.0.1",
        # A worker binds its web port even with web_enabled=False: each gets its own.
        "web_port": free_port(),
        "web_enabled": False,
        "producer_acks": -1,
        # Faust's own files (none with memory:// stores, but it makes the directory) under .ioc, not cwd
        "datadir": str(faust_dir / "{conf.name}"),
    }
    settings.update(overrides)
    return settings


def cap_fetch_wait(ms: int) -> None:
    """Make this process's Kafka consumers wait at most `ms` for data in a fetch.

    Tansu answers a fetch that finds no data only when fetch_max_wait_ms has passed, even if records arrive
    meanwhile (measured here: a record every 0.3 s reached an idle consumer after a median 330 ms with 1,500 ms,
    93 ms with 500 ms, 11 ms with 20 ms). Faust hard-codes 1,500 ms, so a latency-bound worker (alerts) caps it.
    Process-wide (aiokafka's consumer class is replaced by a subclass); costs an idle fetch per `ms`."""
    import aiokafka

    base = aiokafka.AIOKafkaConsumer
    if getattr(base, "_ioc_fetch_cap", None) == ms:
        return

    class CappedConsumer(getattr(base, "_ioc_base", base)):  # type: ignore[misc, valid-type]
        _ioc_fetch_cap = ms
        _ioc_base = getattr(base, "_ioc_base", base)

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["fetch_max_wait_ms"] = min(int(kwargs.get("fetch_max_wait_ms", ms)), ms)
            super().__init__(*args, **kwargs)

    aiokafka.AIOKafkaConsumer = CappedConsumer  # type: ignore[misc]


def make_app(app_id: str, *, fetch_max_wait_ms: int | None = None, **overrides: Any) -> Any:
    """A Faust app; fetch_max_wait_ms caps its consumers' fetch wait (see cap_fetch_wait)."""
    import faust

    if fetch_max_wait_ms is not None:
        cap_fetch_wait(fetch_max_wait_ms)
    return faust.App(app_id, **faust_settings(**overrides))


async def take_batches(
    source: AsyncIterator[T], *, size_of: Callable[[T], int], max_items: int, max_bytes: int, every_s: float
) -> AsyncIterator[list[T]]:
    """Batches of the items of `source`, read ahead while the caller works on the previous batch.

    A batch goes as soon as it holds `max_items` items or `max_bytes` bytes (`size_of` each; an item bigger
    than that alone), and otherwise `every_s` after the previous batch went: live traffic is coalesced into
    one batch per `every_s`, while a backlog runs batch after batch without waiting. (Faust's `take_events`
    waits `within` again after each batch it yields, and stops reading while the caller works.) At most one
    batch is held ahead, so memory stays bounded."""
    loop = asyncio.get_running_loop()
    buf: list[T] = []
    size = 0
    wake = asyncio.Event()  # an item arrived, or the reader ended
    room = asyncio.Event()  # the buffer was taken: read on
    room.set()

    def full() -> bool:
        return len(buf) >= max_items or size >= max_bytes

    async def read() -> None:
        nonlocal size
        try:
            async for item in source:
                buf.append(item)
                size += size_of(item)
                wake.set()
                if full():
                    room.clear()
                    await room.wait()
        finally:
            wake.set()

    reader = asyncio.ensure_future(read())
    last = -math.inf
    try:
        while True:
            while not buf:
                if reader.done():
                    reader.result()  # the reader's failure, if any
                    return
                wake.clear()
                await wake.wait()
            while not full() and not reader.done():
                wait = last + every_s - loop.time()
                if wait <= 0:
                    break
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), wait)
                except TimeoutError:
                    break
            last = loop.time()
            batch = buf[:]
            buf.clear()
            size = 0
            room.set()
            yield batch
    finally:
        reader.cancel()


@dataclass
class RecordBatch:
    """A batch of a Faust agent's records; `ack()` once everything derived from them is written."""

    records: list[RecordRef]
    size: int  # bytes of the records' values
    _events: list[Any]
    _stream: Any

    def take_records(self) -> list[RecordRef]:
        """The records, which the batch then no longer holds: their bytes are freed as soon as the caller is
        done with them, while the batch waits for its `ack()` (only the records' positions are kept)."""
        records, self.records = self.records, []
        return records

    async def ack(self) -> None:
        for event in self._events:
            await self._stream.ack(event)


async def record_batches(
    stream: Any, *, max_records: int, max_bytes: int, every_s: float
) -> AsyncIterator[RecordBatch]:
    """The records of a Faust agent's stream in batches (take_batches), acknowledged by the caller: Faust
    commits an offset only once its batch's `ack()` ran. The records own their bytes: Faust's events keep
    only what acknowledging reads (topic, partition, offset). Records the broker made the consumer skip are
    fetched and put back in place (ioccore.kafka.OffsetGaps, against the app's consumer group): no offset is
    passed over. Acknowledging the batch's later records covers them (Faust commits over a gap in offsets)."""
    manual = stream.noack()
    gaps = OffsetGaps(stream.app.conf.id)
    try:
        async for events in take_batches(
            manual.events(),
            size_of=lambda e: len(e.message.value or b""),
            max_items=max_records,
            max_bytes=max_bytes,
            every_s=every_s,
        ):
            records = []
            size = 0
            for e in events:
                m = e.message
                records.append(RecordRef(m.topic, m.partition, m.offset, m.key, m.value))
                size += len(m.value or b"")
                e.value = m.value = None
            yield RecordBatch(await gaps.check(records), size, events, manual)
    finally:
        await gaps.close()
