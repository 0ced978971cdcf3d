"""Hotline worker under a burst: both switchboards' simulated calls on ioc.hotline.calls, at 10x the rate
`make run` drives them (one simulated day of ~2,500 call events every 10 minutes), for up to 10 minutes.

Figures: the lag of each burst record, from the moment the broker acknowledged it until the worker logged it
written (ClickHouse) and published (live feed, figures) — max and p99 (target: max < 5 s); and the catch-up
throughput of the same worker over a backlog of simulated days sent before it starts. Baseline (same run, same
topic): a raw aiokafka loop decoding every record and counting.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench._stack import private_stack
from ioccore.kafka import end_offsets
from ioccore.logging import json_records
from ioccore.settings import REPO_ROOT, get_settings
from ioccore.testing import stop_processes
from ioccore.topics import HOTLINE_CALLS
from iocsim.switchboard import disorder, hotline_records

SIMULATED_DAY_S = 600  # make run: one simulated day of calls (~1,950 switchboard events) per 10 minutes
BURST_FACTOR = 10
BURST_MAX_S = 600
BACKLOG_DAYS = 3


def _flushes(log_path: Path) -> list[tuple[float, dict[int, int]]]:
    out = []
    for doc in json_records(log_path.read_text(errors="replace"), "written_through"):
        t = dt.datetime.fromisoformat(doc["timestamp"].replace("Z", "+00:00")).timestamp()
        out.append((t, {int(p): int(o) for p, o in doc["written_through"].items()}))
    return out


async def _send_paced(records: list[tuple[bytes, bytes]], rate: float) -> list[tuple[int, int, float]]:
    """Send at `rate` records/s; (partition, offset, acknowledged at) per record."""
    from ioccore.kafka import producer

    acks: list[tuple[int, int, float]] = []

    async def acked(fut: Any) -> None:
        meta = await fut
        acks.append((meta.partition, meta.offset, time.time()))

    async with producer(linger_ms=0) as p:
        t0 = time.monotonic()
        tasks = []
        for i, (k, v) in enumerate(records):
            wait = t0 + i / rate - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.ensure_future(acked(await p.send(HOTLINE_CALLS, value=v, key=k))))
        await asyncio.gather(*tasks)
    return acks


async def _send_all(records: list[tuple[bytes, bytes]]) -> None:
    from ioccore.kafka import producer

    async with producer() as p:
        await asyncio.gather(*[await p.send(HOTLINE_CALLS, value=v, key=k) for k, v in records])


async def _baseline() -> tuple[int, float]:
    import msgspec

    from ioccore.kafka import consumer

    ends = await end_offsets(HOTLINE_CALLS)
    want = sum(ends.values())
    n = 0
    async with consumer(HOTLINE_CALLS, group_id="bench-hotline-baseline") as c:
        t0 = None
        while n < want:
            batch = await c.getmany(timeout_ms=500, max_records=20_000)
            if t0 is None and batch:
                t0 = time.monotonic()
            for msgs in batch.values():
                for m in msgs:
                    n += 1
                    try:
                        msgspec.json.decode(m.value)
                    except msgspec.DecodeError:
                        pass
        return n, n / (time.monotonic() - (t0 or time.monotonic()))


def _wait_caught_up(log_path: Path, proc: subprocess.Popen, timeout: float) -> float:
    """Until the worker has written through the topic's end (its own derived events included)."""
    deadline = time.monotonic() + timeout
    last: dict[int, int] = {}
    stable = 0
    while stable < 3:
        if proc.poll() is not None:
            raise RuntimeError(f"the worker exited with {proc.returncode}; see {log_path}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not catch up in {timeout:.0f} s; see {log_path}")
        ends = {p: o for p, o in asyncio.run(end_offsets(HOTLINE_CALLS)).items() if o}
        done: dict[int, int] = {}
        for _, w in _flushes(log_path):
            for p, o in w.items():
                done[p] = max(done.get(p, 0), o)
        ok = all(done.get(p, 0) >= o for p, o in ends.items())
        stable = stable + 1 if ok and ends == last else 0
        last = ends
        time.sleep(0.5)
    return time.monotonic()


def run(events: int = 19_500) -> dict[str, Any]:
    contracts = get_settings().contracts_dir
    one_day = len(hotline_records(contracts, seed=4, start=dt.date(2026, 3, 9)).records)
    rate = one_day / SIMULATED_DAY_S * BURST_FACTOR
    burst_s = min(BURST_MAX_S, events / rate)
    backlog = disorder(
        hotline_records(contracts, seed=3, start=dt.date(2026, 3, 2), days=BACKLOG_DAYS, bad_rate=0.005)
    )
    burst_days = max(1, math.ceil(burst_s * rate / one_day))
    burst = hotline_records(contracts, seed=4, start=dt.date(2026, 3, 2) + dt.timedelta(days=BACKLOG_DAYS),
                            days=burst_days)  # fmt: skip
    burst_records = burst.records[: int(burst_s * rate)]
    with private_stack():
        asyncio.run(_send_all(backlog.records))
        n_base, baseline = asyncio.run(_baseline())
        log_path = Path(os.environ["IOC_HOME"]) / "hotline-worker.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ioccore.cli", "hotline", "worker"],
                cwd=REPO_ROOT,
                env={**os.environ, "IOC_HOTLINE_APP_ID": "bench-hotline", "IOC_HOTLINE_LOG_FLUSHES": "true"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            # catch-up over the backlog: from the first flush until the topic's end is written
            while not _flushes(log_path):
                if proc.poll() is not None:
                    raise RuntimeError(f"the worker exited; see {log_path}")
                time.sleep(0.05)
            first = _flushes(log_path)[0][0]
            _wait_caught_up(log_path, proc, 600)
            flushes = _flushes(log_path)
            caught_up_at = flushes[-1][0]
            catch_up_rate = len(backlog.records) / max(1e-6, caught_up_at - first)
            # the burst, paced, while the worker runs
            acks = asyncio.run(_send_paced(burst_records, rate))
            _wait_caught_up(log_path, proc, 600)
            flushes = _flushes(log_path)
            lags = []
            for partition, offset, acked in acks:
                done = next((t for t, w in flushes if w.get(partition, 0) > offset), None)
                lags.append(float("inf") if done is None else max(0.0, done - acked))
            lags.sort()
        finally:
            stop_processes([proc], timeout_s=20)
    return {
        "burst_events": len(acks),
        "burst_seconds": round(burst_s),
        "burst_events_per_s": round(rate, 1),
        "normal_events_per_s": round(rate / BURST_FACTOR, 2),
        "lag_max_s": round(lags[-1], 3),
        "lag_p99_s": round(lags[min(len(lags) - 1, int(0.99 * len(lags)))], 3),
        "lag_p50_s": round(lags[len(lags) // 2], 3),
        "target_lag_max_s": 5,
        "backlog_records": len(backlog.records),
        "catch_up_events_per_s": round(catch_up_rate),
        "baseline_events_per_s": round(baseline),
        "baseline_records": n_base,
    }


if __name__ == "__main__":
    print(json.dumps(run()))
