"""Generation speed and memory of `ioc simulate` over a long run (no output: events are encoded and dropped).

    .venv/bin/python bench/simulate.py --days 365 --out .ioc/bench/simulate.json

Prints and writes events/s and the resident memory after each simulated month (flat = streaming works)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import psutil

from ioccore.settings import get_settings
from iocsim.engine import Simulation
from iocsim.reference import load_reference


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--start", default="2025-01-01")
    ap.add_argument("--out", type=Path, default=Path(".ioc/bench/simulate.json"))
    args = ap.parse_args()
    proc = psutil.Process()
    sim = Simulation(
        load_reference(get_settings().contracts_dir),
        seed=1,
        start=dt.date.fromisoformat(args.start),
        days=args.days,
    )
    t0 = time.monotonic()
    events = nbytes = 0
    samples = []
    last_day = None
    for day, _hour, batch in sim.hours():
        for e in batch:
            nbytes += len(e.encode())
        events += len(batch)
        if day != last_day and (day - sim.start).days % 30 == 0:
            samples.append(
                {
                    "day": (day - sim.start).days,
                    "events": events,
                    "rss_mb": round(proc.memory_info().rss / 2**20, 1),
                }
            )
            last_day = day
    elapsed = time.monotonic() - t0
    samples.append({"day": args.days, "events": events, "rss_mb": round(proc.memory_info().rss / 2**20, 1)})
    result = {
        "days": args.days,
        "events": events,
        "bytes": nbytes,
        "elapsed_s": round(elapsed, 1),
        "events_per_s": round(events / elapsed),
        "peak_rss_mb": max(s["rss_mb"] for s in samples),
        "rss_by_day": samples,
        "pending_lifecycle_events_at_end": len(sim._heap),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
