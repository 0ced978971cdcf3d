"""Indicators worker throughput: simulator events on ioc.events -> every catalog indicator for every scope and
cadence, in ClickHouse (archive, dead letters, partition states, values), by one `ioc indicators worker`.

Figure: events per second from the moment the worker is assigned its partitions (it logs
`indicators.partitions_assigned`), before it fetched anything, until every partition's values are written up
to its end offset (it logs `indicators.flushed`); the worker's peak RSS, and its CPU seconds over the same
span; the same two for its insert process. Group join and start-up are excluded (they are the `faust`
benchmark); fetching the backlog is included. Baseline (same run, same topic): a raw aiokafka loop decoding
every record and counting.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench._stack import private_stack, proc_stat
from ioccore.clickhouse import connect
from ioccore.kafka import end_offsets
from ioccore.logging import json_records
from ioccore.settings import REPO_ROOT
from ioccore.testing import stop_processes
from ioccore.topics import EVENTS
from services.indicators.worker import values_through

EVENTS_PER_DAY = 38_000  # department events per simulated day (hotline calls go to their own topic)


async def _baseline() -> tuple[int, float]:
    import msgspec

    from ioccore.kafka import consumer

    ends = await end_offsets(EVENTS)
    want = sum(ends.values())
    count = records = 0
    async with consumer(EVENTS, group_id="bench-baseline") as cons:
        await cons.getmany(timeout_ms=0)
        t0 = None
        while records < want:
            batch = await cons.getmany(timeout_ms=500, max_records=20_000)
            if t0 is None and batch:
                t0 = time.monotonic()
            for msgs in batch.values():
                for m in msgs:
                    records += 1
                    try:
                        obj = msgspec.json.decode(m.value)
                    except msgspec.DecodeError:
                        obj = None
                    count += len(obj) if isinstance(obj, list) else 1
        return count, count / (time.monotonic() - (t0 or time.monotonic()))


def _peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _phases(log_text: str) -> dict[str, float]:
    """Seconds per flush phase, summed over the worker's `indicators.flushed` lines."""
    out: dict[str, float] = {}
    for doc in json_records(log_text, "values_through"):
        for k, v in doc.get("phases_s", {}).items():
            out[k] = out.get(k, 0.0) + float(v)
    return {k: round(v, 2) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}


def _assigned(text: str) -> bool:
    """Whether the worker's log says it was assigned partitions of ioc.events (a first assignment may be
    empty while the group forms)."""
    return any(doc.get("partitions") for doc in json_records(text, "partitions"))


def _children(pid: int) -> list[int]:
    """The child processes of a process, whichever of its threads started them."""
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def _worker_run(
    ends: dict[int, int], log_path: Path
) -> tuple[float, float, int, float, dict[str, float], float, float]:
    ch = connect()
    want = {p: o for p, o in ends.items() if o}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ioccore.cli", "indicators", "worker"],
            cwd=REPO_ROOT,
            env={
                **os.environ,
                "IOC_INDICATORS_APP_ID": "bench-indicators",
                "IOC_INDICATORS_LOG_FLUSHES": "true",
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        t0 = None
        cpu0 = child_cpu0 = 0.0
        while True:  # from the partition assignment until every partition's values are written to its end
            text = log_path.read_text(errors="replace")
            if t0 is None and _assigned(text):
                t0 = time.monotonic()
                cpu0 = proc_stat(proc.pid)[1]
                child_cpu0 = sum(proc_stat(c)[1] for c in _children(proc.pid))
            done = values_through(text)
            if all(done.get(p, 0) >= o for p, o in want.items()):
                break
            if proc.poll() is not None:
                raise RuntimeError(f"the worker exited with {proc.returncode}; see {log_path}")
            time.sleep(0.05)
        elapsed = time.monotonic() - (t0 or time.monotonic())
        cpu = proc_stat(proc.pid)[1] - cpu0
        rss = _peak_rss_mb(proc.pid)
        child = _children(proc.pid)  # the worker's insert process (ioccore.clickhouse.OrderedInserts)
        child_cpu = sum(proc_stat(c)[1] for c in child) - child_cpu0
        child_rss = sum(_peak_rss_mb(c) for c in child)
        values = int(ch.execute("SELECT count() FROM indicator_values FINAL")[0][0])
        phases = _phases(log_path.read_text(errors="replace"))
        return elapsed, rss, values, cpu, phases, child_rss, child_cpu
    finally:
        stop_processes([proc], timeout_s=15)


def run(events: int = 200_000) -> dict[str, Any]:
    days = max(1, math.ceil(events / EVENTS_PER_DAY))
    with private_stack():
        subprocess.run(
            [sys.executable, "-m", "ioccore.cli", "simulate", "--start", "2026-01-05", "--days", str(days),
             "--out", "kafka", "--no-progress"],
            check=True, cwd=REPO_ROOT, env=os.environ.copy(), capture_output=True,
        )  # fmt: skip
        ends = asyncio.run(end_offsets(EVENTS))
        n, baseline = asyncio.run(_baseline())
        elapsed, rss, values, cpu, phases, child_rss, child_cpu = _worker_run(
            ends, Path(os.environ["IOC_HOME"]) / "indicators-worker.log"
        )
    rate = n / elapsed if elapsed > 0 else float("nan")
    return {
        "events": n,
        "simulated_days": days,
        "values": values,
        "events_per_s": round(rate),
        "baseline_events_per_s": round(baseline),
        "ratio": round(rate / baseline, 3),
        "rss_mb": round(rss),
        # the worker's own CPU (all its threads) over the same span: steadier than the rate on a shared machine
        "worker_cpu_s": round(cpu, 1),
        "events_per_cpu_s": round(n / cpu) if cpu > 0 else None,
        # its insert process (a child: the driver's work runs there, off the worker's GIL), over the same span
        "inserts_rss_mb": round(child_rss),
        "inserts_cpu_s": round(child_cpu, 1),
        # where the flushes' time went (wall seconds per phase; wait_clickhouse: for writes still running)
        "phases_s": phases,
    }


if __name__ == "__main__":
    print(json.dumps(run()))
