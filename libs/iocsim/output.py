"""Where simulated events go: a JSON-lines file, or Kafka (JSON-array records of up to 500 events per key)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from iocsim.engine import Emission, Simulation

MAX_BATCH = 500


class FileSink:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(path, "wb")  # noqa: SIM115 - closed in close()

    async def put(self, e: Emission) -> None:
        self._f.write(e.encode())
        self._f.write(b"\n")

    async def flush(self) -> None:
        self._f.flush()

    async def close(self) -> None:
        self._f.close()


class KafkaSink:
    """Batches events per (topic, key) into JSON arrays; a malformed (non-JSON) record goes alone.

    Sends are pipelined; every flush waits until the broker confirmed (acks=all) what was sent."""

    def __init__(self, producer: Any):
        self.producer = producer
        self.buffers: dict[tuple[str, str], list[bytes]] = {}
        self.pending: list[asyncio.Future] = []
        self.records = 0
        self.records_by_topic: dict[str, int] = {}

    async def _send(self, topic: str, key: str, value: bytes) -> None:
        fut = await self.producer.send(topic, value=value, key=key.encode())
        self.pending.append(fut)
        self.records += 1
        self.records_by_topic[topic] = self.records_by_topic.get(topic, 0) + 1

    async def put(self, e: Emission) -> None:
        if e.bad == "broken_json":
            await self._send(e.topic, e.key, e.encode())
            return
        buf = self.buffers.setdefault((e.topic, e.key), [])
        buf.append(e.encode())
        if len(buf) >= MAX_BATCH:
            del self.buffers[(e.topic, e.key)]
            await self._send(e.topic, e.key, b"[" + b",".join(buf) + b"]")

    async def flush(self) -> None:
        buffers, self.buffers = self.buffers, {}
        for (topic, key), buf in buffers.items():
            await self._send(topic, key, b"[" + b",".join(buf) + b"]")
        pending, self.pending = self.pending, []
        if pending:
            await asyncio.gather(*pending)

    async def close(self) -> None:
        await self.flush()


async def run(
    sim: Simulation,
    sink: Any,
    *,
    speed: float = 0.0,
    on_day: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Drive the simulation into the sink. speed > 0: a simulated day takes `speed` seconds of wall time.

    Returns the run's figures: events, malformed events, records, elapsed seconds, events/s."""
    t0 = time.monotonic()
    total = 0
    sim_t0: int | None = None
    day_index = -1
    last_day = None
    for day, hour, batch in sim.hours():
        if day != last_day:
            if last_day is not None:
                await sink.flush()
                day_index += 1
                if on_day:
                    on_day(day_index + 1, total)
            last_day = day
        for e in batch:
            if speed > 0:
                if sim_t0 is None:
                    sim_t0 = e.t - (e.t % 3600)
                wait = t0 + (e.t - sim_t0) / 86400 * speed - time.monotonic()
                if wait > 0.02:
                    await sink.flush()
                    await asyncio.sleep(wait)
            await sink.put(e)
            total += 1
        if speed > 0:
            await sink.flush()
        del hour
    await sink.close()
    if on_day:
        on_day(day_index + 2, total)
    elapsed = time.monotonic() - t0
    bad = sum(sim.bad_counts.values())
    return {
        "events": total,
        "valid_events": total - bad,
        "malformed_events": dict(sim.bad_counts),
        "elapsed_s": round(elapsed, 3),
        "events_per_s": round(total / elapsed) if elapsed > 0 else None,
        "by_type": dict(sorted(sim.counts.items())),
    }
