"""Alert latency: from an indicator update that crosses a rule (sent to ioc.indicators) to its lifecycle event on
ioc.alerts, through one `ioc alerts worker`, under ~10k values/s of background indicator updates.

Updates are values.updated events as the indicators service sends them: one record per unit, one event of up to
1,000 compact rows. Background: for each district in turn, an event of the day values of every field's volume
indicator (the probe's aside) over the next run of days (83 days x 12 indicators = 996 rows, as a catch-up
flush after a backlog sends them), each day after the last, at values that cross nothing, so the worker
validates and judges every row (the volume rule and the spike rule of each indicator). Probes: every
`probe_every_s`, one event of one row of environment.volume_high for a district alternately above its threshold
and below its clear threshold (raised / resolved / reopened); each carries a unique value, matched on the event
it causes. Figures: p50 / p99 of the delays in ms, the number of alert events measured, the background rate
reached (values and events a second). Baseline (same run): the median delay of one record through the broker
alone (the alert path is two hops).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench._stack import private_stack
from ioccore.settings import REPO_ROOT
from ioccore.testing import stop_processes
from ioccore.topics import ALERT_COMMAND_RESULTS, ALERT_COMMANDS, ALERTS, INDICATORS

PERIOD = "2026-11-23"
BATCH = 1000  # rows an event at most (the contract's limit)


def _row(indicator: str, day: str, value: float, version: int) -> dict[str, Any]:
    return {"indicator": indicator, "cadence": "day", "period": day, "period_start": day, "value": value,
            "n": 1, "version": version}  # fmt: skip


def _update(unit: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One values.updated event: the changed values of a district."""
    top = max(r["version"] for r in rows)
    return {
        "specversion": "1.0",
        "id": f"v1|{unit}|{top}|{len(rows)}|0",
        "source": "urn:ioc:indicators",
        "type": "vn.binhduong.indicators.values.updated",
        "time": "2026-11-23T10:15:02+07:00",
        "subject": unit,
        "datacontenttype": "application/json",
        "data": {"version_set": "v1", "level": "district", "unit": unit, "values": rows},
    }


async def _ready(timeout: float = 120) -> None:
    """Until the worker answers a command (it then consumes both topics of its group)."""
    from ioccore.kafka import consumer, producer

    cid = str(uuid.uuid4())
    cmd = {"specversion": "1.0", "id": cid, "source": "urn:ioc:bench", "type": "vn.binhduong.alerts.command",
           "time": "2026-11-23T10:00:00+07:00", "subject": "718",
           "data": {"command_id": cid, "alert_id": "none|718|1", "action": "comment", "note": "ping",
                    "actor": {"id": "bench", "role": "province_admin", "district": None}}}  # fmt: skip
    async with producer() as p, consumer(ALERT_COMMAND_RESULTS, group_id=f"bench-{cid[:8]}") as c:
        await p.send_and_wait(ALERT_COMMANDS, json.dumps(cmd).encode(), key=b"none")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for msgs in (await c.getmany(timeout_ms=500)).values():
                if any(json.loads(m.value)["data"]["command_id"] == cid for m in msgs):
                    return
    raise RuntimeError("the alerts worker did not answer within 120 s")


async def _one_hop(n: int = 50) -> float:
    """Baseline: the median delay of one record through the broker (producer to consumer, the same client
    settings as the measurement); the alert path is two such hops plus the worker."""
    from ioccore.kafka import consumer, producer

    delays = []
    async with (
        producer() as p,
        consumer(ALERTS, group_id=f"hop-{uuid.uuid4().hex[:8]}", fetch_max_wait_ms=10) as c,
    ):
        await c.getmany(timeout_ms=0)
        for _ in range(n):
            await p.send_and_wait(ALERTS, json.dumps({"t": time.time()}).encode(), key=b"hop")
            got = False
            while not got:
                for msgs in (await c.getmany(timeout_ms=100)).values():
                    for m in msgs:
                        t = json.loads(m.value).get("t")
                        if t is not None:
                            delays.append((time.time() - t) * 1000)
                            got = True
    delays.sort()
    return round(delays[len(delays) // 2], 1)


async def _measure(
    rules: list[dict[str, Any]], seconds: float, rate: int, probe_every_s: float
) -> dict[str, Any]:
    import msgspec

    from ioccore.kafka import consumer, producer

    probe = next(r for r in rules if r["id"] == "environment.volume_high")
    districts = ["718", "719", "720", "721", "722", "723", "724", "725", "726"]
    background_indicators = sorted({r["indicator"] for r in rules if r["id"] != probe["id"]})
    days_per_event = BATCH // len(background_indicators)
    first_day = dt.date.fromisoformat(PERIOD) + dt.timedelta(days=1)
    sent_at: dict[float, float] = {}
    delays: list[float] = []
    stop = asyncio.Event()
    bg_values = bg_events = 0
    bg_span = [0.0, 0.0]

    def background_record(i: int) -> tuple[bytes, bytes]:
        """The i-th background record: district i % 9, the days after those of its previous event."""
        unit = districts[i % len(districts)]
        start = first_day + dt.timedelta(days=(i // len(districts)) * days_per_event)
        days = [(start + dt.timedelta(days=k)).isoformat() for k in range(days_per_event)]
        rows = [_row(ind, day, 1.0, i + 1) for day in days for ind in background_indicators]
        return unit.encode(), msgspec.json.encode(_update(unit, rows))

    async def background(p: Any) -> None:
        nonlocal bg_values, bg_events
        per_s = max(1.0, rate / (days_per_event * len(background_indicators)))
        i = 0
        t0 = bg_span[0] = time.monotonic()
        while not stop.is_set():
            key, value = background_record(i)
            await p.send(INDICATORS, value, key=key)
            i += 1
            bg_events += 1
            bg_values += days_per_event * len(background_indicators)
            await asyncio.sleep(max(0.0, t0 + i / per_s - time.monotonic()))
        bg_span[1] = time.monotonic()

    async def probes(p: Any) -> None:
        n = 0
        while not stop.is_set():
            d = districts[n % len(districts)]
            bounds = {**probe["condition"], **(probe.get("overrides") or {}).get(d, {})}
            crossing = (n // len(districts)) % 2 == 0
            value = (bounds["threshold"] + 1 if crossing else bounds["clear"] - 1) + n / 1000
            event = _update(d, [_row(probe["indicator"], PERIOD, value, 10_000 + n)])
            sent_at[round(value, 6)] = time.time()
            await p.send(INDICATORS, msgspec.json.encode(event), key=d.encode())
            n += 1
            await asyncio.sleep(probe_every_s)

    async with (
        producer() as p,
        consumer(ALERTS, group_id=f"bench-{uuid.uuid4().hex[:8]}", fetch_max_wait_ms=10) as c,
    ):
        await c.getmany(timeout_ms=0)
        tasks = [asyncio.create_task(background(p)), asyncio.create_task(probes(p))]
        end = time.monotonic() + seconds
        while time.monotonic() < end + 5:
            if time.monotonic() >= end:
                stop.set()
            for msgs in (await c.getmany(timeout_ms=100)).values():
                now = time.time()
                for m in msgs:
                    data = json.loads(m.value).get("data")
                    if data is None:
                        continue  # a baseline record
                    t = sent_at.get(round(float(data["value"] or 0), 6))
                    if t is not None and data["rule"] == probe["id"]:
                        delays.append((now - t) * 1000)
        stop.set()
        await asyncio.gather(*tasks)
    delays.sort()

    def pct(q: float) -> float:
        return round(delays[min(len(delays) - 1, int(q * len(delays)))], 1) if delays else float("nan")

    return {
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "alerts": len(delays),
        "probes": len(sent_at),
        "background_values_per_s": round(bg_values / (bg_span[1] - bg_span[0])),
        "background_events_per_s": round(bg_events / (bg_span[1] - bg_span[0]), 1),
    }


def run(seconds: float = 30.0, rate: int = 10_000, probe_every_s: float = 0.1) -> dict[str, Any]:
    from ioccore.catalog import load_catalog

    rules = [r for r in load_catalog().rules if r["id"].endswith(".volume_high")]
    with private_stack():
        log_path = Path(os.environ["IOC_HOME"]) / "alerts-worker.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ioccore.cli", "alerts", "worker"],
                cwd=REPO_ROOT,
                env={**os.environ, "IOC_ALERTS_APP_ID": "bench-alerts"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            hop = asyncio.run(_one_hop())
            asyncio.run(_ready())
            result = asyncio.run(_measure(rules, seconds, rate, probe_every_s))
            result["baseline_one_hop_p50_ms"] = hop
            if proc.poll() is not None:
                raise RuntimeError(f"the worker exited with {proc.returncode}; see {log_path}")
        finally:
            stop_processes([proc], timeout_s=15)
    return result


if __name__ == "__main__":
    print(json.dumps(run()))
