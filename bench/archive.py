"""Archive throughput: events from ioc.events into ClickHouse (decode, validate, columnar insert, commit).

Figure: events per second from the first fetch until every event is in `events_archive`.
Baseline (same run, same topic): a raw aiokafka consumer loop that decodes every record and counts events.
Producers batch (100 events per record), as DESIGN.md recommends.
"""

from __future__ import annotations

import asyncio
import copy
import json
import resource
import time
from typing import Any

from bench._stack import private_stack
from ioccore.archive import run_archiver
from ioccore.clickhouse import connect
from ioccore.contracts import load_contracts
from ioccore.kafka import consumer, producer
from ioccore.topics import EVENTS

PER_RECORD = 100


def _events(n: int) -> list[dict]:
    contracts = load_contracts()
    base = next(e for p, e in contracts.examples() if p.name == "dossier.received.json")
    subjects = ["25747", "25750", "25756", "718", "719", "74"]
    out = []
    for i in range(n):
        e = copy.deepcopy(base)
        e["id"] = f"bench-{i}"
        e["subject"] = subjects[i % len(subjects)]
        e["data"]["dossier_id"] = f"D{i}"
        out.append(e)
    return out


async def _produce(n: int) -> None:
    events = _events(n)
    async with producer(linger_ms=20) as prod:
        futures = []
        for start in range(0, n, PER_RECORD):
            chunk = events[start : start + PER_RECORD]
            futures.append(
                await prod.send(EVENTS, json.dumps(chunk).encode(), key=chunk[0]["subject"].encode())
            )
        await asyncio.gather(*futures)


async def _baseline(n: int) -> float:
    import msgspec

    count = 0
    async with consumer(EVENTS, group_id="bench-baseline") as cons:
        await cons.getmany(timeout_ms=0)  # join the group before timing
        t0 = None
        while count < n:
            batch = await cons.getmany(timeout_ms=500, max_records=20_000)
            if t0 is None and batch:
                t0 = time.monotonic()
            for msgs in batch.values():
                for m in msgs:
                    obj = msgspec.json.decode(m.value)
                    count += len(obj) if isinstance(obj, list) else 1
        return n / (time.monotonic() - (t0 or time.monotonic()))


async def _archive(n: int) -> float:
    ch = connect()
    stop = asyncio.Event()
    task = asyncio.create_task(run_archiver(ch, load_contracts(), group_id="bench-archiver", stop=stop))
    t0 = None
    while True:
        await asyncio.sleep(0.05)
        done = ch.execute("SELECT count() FROM events_archive")[0][0]
        if t0 is None and done:
            t0 = time.monotonic()
        if done >= n or task.done():
            break
    elapsed = time.monotonic() - (t0 or time.monotonic())
    stop.set()
    await task
    return n / elapsed if elapsed else float("nan")


def run(events: int = 100_000) -> dict[str, Any]:
    with private_stack():
        asyncio.run(_produce(events))
        baseline = asyncio.run(_baseline(events))
        rate = asyncio.run(_archive(events))
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "events": events,
        "events_per_s": round(rate),
        "baseline_events_per_s": round(baseline),
        "ratio": round(rate / baseline, 3),
        "rss_mb": round(rss_mb),
    }


if __name__ == "__main__":
    print(json.dumps(run()))
