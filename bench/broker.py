"""What the durable local broker costs: produce throughput and latency, memory storage against durable.

Each storage gets a fresh private broker (Tansu, and for durable the stack's object store) on free ports.
Figures per storage:
- batched: `events` CloudEvents sent with ioccore's producer (acks=all, linger 5 ms), all awaited: events/s;
- single: 500 events one at a time with send_and_wait, like the gateway's ingest: p50 / p99 ms;
durable with every write synced to disk (the default) and without (IOC_OBJECTS_FSYNC=false).
Baseline (same run): memory storage, the default of `make run`.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from ioccore.kafka import ensure_topics, producer
from ioccore.settings import Settings, get_settings
from ioccore.stack import ObjectStorePart, TansuPart, free_port
from ioccore.topics import EVENTS

SINGLE = 500


def _event(n: int) -> bytes:
    path = get_settings().contracts_dir / "events/admin_procedures/examples/dossier.received.json"
    e = json.loads(path.read_text(encoding="utf-8"))
    e["id"] = f"bench-{n}"
    return json.dumps(e).encode()


async def _measure(bootstrap: str, events: int) -> dict[str, Any]:
    values = [_event(n) for n in range(max(events, SINGLE))]
    async with producer(bootstrap) as prod:
        t0 = time.perf_counter()
        futures = [await prod.send(EVENTS, values[n], key=str(n % 91).encode()) for n in range(events)]
        await asyncio.gather(*futures)
        batched_s = time.perf_counter() - t0
    async with producer(bootstrap, linger_ms=0) as prod:
        lat = []
        for n in range(SINGLE):
            t = time.perf_counter()
            await prod.send_and_wait(EVENTS, values[n], key=str(n % 91).encode())
            lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    return {
        "batched_events_per_s": round(events / batched_s),
        "single_p50_ms": round(statistics.median(lat), 2),
        "single_p99_ms": round(lat[int(len(lat) * 0.99) - 1], 2),
    }


def _one(storage: str, events: int, fsync: bool = True) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix=f"ioc-bench-broker-{storage}-"))
    settings = Settings(
        home=home,
        kafka_port=free_port(),
        objects_port=free_port(),
        kafka_storage=storage,
        objects_fsync=fsync,
    )
    parts = ([ObjectStorePart("objects", settings)] if storage == "durable" else []) + [
        TansuPart("kafka", settings)
    ]
    try:
        for part in parts:
            part.wait_ready(part.start(), 30)
        ensure_topics(settings.local_kafka_bootstrap)
        return asyncio.run(_measure(settings.local_kafka_bootstrap, events))
    finally:
        for part in reversed(parts):
            part.stop()


def run(events: int = 20_000) -> dict[str, Any]:
    memory = _one("memory", events)
    durable = _one("durable", events)
    durable_no_fsync = _one("durable", events, fsync=False)
    return {
        "events": events,
        "durable": durable,
        "durable_without_fsync": durable_no_fsync,
        "baseline_memory": memory,
        "ratio": round(durable["batched_events_per_s"] / memory["batched_events_per_s"], 3),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
