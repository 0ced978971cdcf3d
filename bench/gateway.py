"""Gateway benchmark: batched ingest throughput, single-event POST latency at a fixed rate, SSE fan-out.

The gateway runs as its own process (`ioc gateway serve`) on a private stack; the load generator runs in a
second process (asyncio + httpx). Figures and same-run baselines:
- ingest: events/s through POST /v1/events in batches of 1,000 (4 in flight), until every batch is
  acknowledged (in Kafka); baseline: the same batches produced straight to Kafka by aiokafka.
- latency: single-event POSTs at a fixed 500 requests/s (open loop) for 10 s: p50/p95/p99; baseline: GET
  /healthz at the same rate (the HTTP stack alone).
- fan-out: 200 stream clients (100 province viewers, 100 district operators over the 9 districts); indicator
  records go to ioc.indicators, each as the indicators service sends them: one values.updated event of one
  unit (here the five values one more accident changes: transport.accidents by day, week, month, quarter and
  year); each client must receive every record in its scope: complete (yes/no), and the time from the first
  record sent to the last client complete.
"""

from __future__ import annotations

import asyncio
import copy
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import time
from typing import Any

from bench._stack import private_stack

BATCH = 1000
RATE = 500
LATENCY_S = 10
CLIENTS = 200
FANOUT_RECORDS = 300
DISTRICTS = ["718", "719", "720", "721", "722", "723", "724", "725", "726"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _events(n: int, prefix: str) -> list[dict[str, Any]]:
    from ioccore.contracts import load_contracts

    base = next(e for p, e in load_contracts().examples() if p.name == "dossier.received.json")
    subjects = ["25741", "25942", "718", "724", "74"]
    out = []
    for i in range(n):
        e = copy.deepcopy(base)
        e["id"] = f"{prefix}-{i}"
        e["subject"] = subjects[i % len(subjects)]
        e["data"]["dossier_id"] = f"{prefix}{i}"
        out.append(e)
    return out


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(q * len(xs)))] * 1000, 2)


# ----------------------------------------------------------------------------------------------------------
# Load generator (second process)
# ----------------------------------------------------------------------------------------------------------
async def _ingest(url: str, token: str, n: int) -> dict[str, Any]:
    import httpx

    events = _events(n, "bench-batch")
    bodies = [json.dumps(events[i : i + BATCH]).encode() for i in range(0, n, BATCH)]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/cloudevents-batch+json"}
    sem = asyncio.Semaphore(4)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def post(body: bytes) -> int:
            async with sem:
                r = await client.post("/v1/events", content=body, headers=headers)
                return r.status_code

        t0 = time.perf_counter()
        codes = await asyncio.gather(*(post(b) for b in bodies))
        elapsed = time.perf_counter() - t0
    return {"events": n, "seconds": round(elapsed, 3), "events_per_s": round(n / elapsed),
            "all_accepted": all(c == 202 for c in codes)}  # fmt: skip


class _RawHttp:
    """A minimal keep-alive HTTP/1.1 client over asyncio streams: a load generator light enough that the
    gateway, not the client, is what gets measured on a small machine."""

    def __init__(self, host: str, port: int, size: int):
        self.host, self.port, self.size = host, port, size
        self.pool: asyncio.Queue = asyncio.Queue()

    async def open(self) -> None:
        for _ in range(self.size):
            self.pool.put_nowait(await asyncio.open_connection(self.host, self.port))

    async def close(self) -> None:
        while not self.pool.empty():
            _r, w = self.pool.get_nowait()
            w.close()

    async def request(self, raw: bytes) -> int:
        reader, writer = await self.pool.get()
        try:
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            return status
        finally:
            self.pool.put_nowait((reader, writer))


def _raw_request(method: str, path: str, host: str, token: str, body: bytes | None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Authorization: Bearer {token}"]
    if body is not None:
        lines += ["Content-Type: application/cloudevents+json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


async def _fixed_rate(url: str, requests: list[bytes], rate: int) -> dict[str, Any]:
    """Open loop: request i is due at start + i/rate; its latency counts from when it was due (so a queue
    building up on either side shows in the figures)."""
    hostport = url.removeprefix("http://")
    host, port = hostport.split(":")
    client = _RawHttp(host, int(port), 64)
    await client.open()
    lat: list[float] = []
    errors = 0

    async def one(raw: bytes, at: float) -> None:
        nonlocal errors
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        status = await client.request(raw)
        lat.append(time.perf_counter() - at)
        if status >= 300:
            errors += 1

    for raw in requests[:50]:  # warm up
        await client.request(raw)
    start = time.perf_counter() + 0.2
    await asyncio.gather(*(one(raw, start + i / rate) for i, raw in enumerate(requests[50:])))
    took = time.perf_counter() - start
    await client.close()
    n = len(requests) - 50
    return {"requests": n, "rate_target": rate, "rate_achieved": round(n / took), "errors": errors,
            "p50_ms": _pct(lat, 0.50), "p95_ms": _pct(lat, 0.95), "p99_ms": _pct(lat, 0.99)}  # fmt: skip


async def _fanout(url: str, tokens: list[tuple[str, str]], ready: Any, go: Any) -> dict[str, Any]:
    """Connect the clients, signal ready, wait until each got its expected count (sent back through go)."""
    import httpx

    counts = [0] * len(tokens)
    done_at: list[float | None] = [None] * len(tokens)
    expected: dict[str, int] = {}
    connected = 0
    limits = httpx.Limits(max_connections=len(tokens) + 10)
    all_connected = asyncio.Event()
    finished = asyncio.Event()

    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(120.0), limits=limits) as client:

        async def reader(i: int, scope: str, token: str) -> None:
            nonlocal connected
            async with client.stream("GET", f"/v1/stream?kinds=indicators&access_token={token}") as r:
                async for line in r.aiter_lines():
                    if line.startswith(": connected"):
                        connected += 1
                        if connected == len(tokens):
                            all_connected.set()
                    elif line.startswith("data: "):
                        counts[i] += 1
                        if expected and counts[i] >= expected[scope]:
                            done_at[i] = time.perf_counter()
                            if all(d is not None for d in done_at):
                                finished.set()
                            return

        tasks = [asyncio.create_task(reader(i, s, t)) for i, (s, t) in enumerate(tokens)]
        await asyncio.wait_for(all_connected.wait(), 120)
        ready.put("ready")
        expected.update(await asyncio.to_thread(go.get))  # scope -> expected messages; records being sent now
        t0 = time.perf_counter()
        try:
            await asyncio.wait_for(finished.wait(), 120)
            complete = True
        except TimeoutError:
            complete = False
        for t in tasks:
            t.cancel()
        last = max((d for d in done_at if d is not None), default=t0)
    return {"clients": len(tokens), "complete": complete,
            "clients_complete": sum(1 for d in done_at if d is not None),
            "messages_delivered": sum(counts), "seconds_to_last_client": round(last - t0, 3)}  # fmt: skip


def _load_process(kind: str, args: dict[str, Any], out: Any, ready: Any = None, go: Any = None) -> None:
    try:
        _load(kind, args, out, ready, go)
    except BaseException:
        import traceback

        out.put({"error": traceback.format_exc()})
        if ready is not None:
            ready.put("failed")


def _load(kind: str, args: dict[str, Any], out: Any, ready: Any, go: Any) -> None:
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    if kind == "ingest":
        out.put(asyncio.run(_ingest(args["url"], args["token"], args["events"])))
    elif kind == "latency":
        host = args["url"].removeprefix("http://")
        events = _events(RATE * LATENCY_S + 50, f"bench-single-{time.time_ns()}")
        reqs = [
            _raw_request("POST", "/v1/events", host, args["token"], json.dumps(e).encode()) for e in events
        ]
        out.put(asyncio.run(_fixed_rate(args["url"], reqs, RATE)))
    elif kind == "baseline_latency":
        host = args["url"].removeprefix("http://")
        reqs = [_raw_request("GET", "/healthz", host, args["token"], None)] * (RATE * LATENCY_S + 50)
        out.put(asyncio.run(_fixed_rate(args["url"], reqs, RATE)))
    elif kind == "fanout":
        out.put(asyncio.run(_fanout(args["url"], args["tokens"], ready, go)))


def _in_process(kind: str, args: dict[str, Any]) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    p = ctx.Process(target=_load_process, args=(kind, args, out))
    p.start()
    res = out.get(timeout=600)
    p.join(30)
    if "error" in res:
        raise SystemExit(f"the load generator failed ({kind}):\n{res['error']}")
    return res


# ----------------------------------------------------------------------------------------------------------
# Baselines and the fan-out's producer (this process)
# ----------------------------------------------------------------------------------------------------------
async def _produce_direct(n: int) -> dict[str, Any]:
    from ioccore.kafka import producer
    from ioccore.topics import EVENTS

    events = _events(n, "bench-direct")
    async with producer(linger_ms=2) as prod:
        t0 = time.perf_counter()
        futures = []
        for i in range(0, n, BATCH):
            chunk = events[i : i + BATCH]
            futures.append(
                await prod.send(EVENTS, json.dumps(chunk).encode(), key=chunk[0]["subject"].encode())
            )
        await asyncio.gather(*futures)
        elapsed = time.perf_counter() - t0
    return {"events_per_s": round(n / elapsed), "seconds": round(elapsed, 3)}


async def _produce_indicator_records(records: list[tuple[str, bytes]]) -> None:
    from ioccore.kafka import producer
    from ioccore.topics import INDICATORS

    async with producer(linger_ms=2) as prod:
        futures = [await prod.send(INDICATORS, v, key=k.encode()) for k, v in records]
        await asyncio.gather(*futures)


# (cadence, period, period_start) of 2026-11-23's periods
PERIODS = [("day", "2026-11-23", "2026-11-23"), ("week", "2026-W48", "2026-11-23"),
           ("month", "2026-11", "2026-11-01"), ("quarter", "2026-Q4", "2026-10-01"),
           ("year", "2026", "2026-01-01")]  # fmt: skip


def _indicator_records() -> tuple[list[tuple[str, bytes]], dict[str, int]]:
    """Records over the province, districts and communes; expected messages per scope (74 or a district)."""
    from ioccore.catalog import load_catalog

    units = [u for u in load_catalog().units]
    parent = {u.code: u.parent for u in units}
    records = []
    expected = {"74": 0, **{d: 0 for d in DISTRICTS}}
    for i in range(FANOUT_RECORDS):
        u = units[i % len(units)]
        rows = [{"indicator": "transport.accidents", "cadence": cadence, "period": period, "period_start": start,
                 "value": float(i), "n": i, "version": i} for cadence, period, start in PERIODS]  # fmt: skip
        ev = {"specversion": "1.0", "id": f"v1|{u.code}|{i}|{len(rows)}|0", "source": "urn:ioc:indicators",
              "type": "vn.binhduong.indicators.values.updated", "time": "2026-11-23T09:00:00+07:00",
              "subject": u.code, "datacontenttype": "application/json",
              "data": {"version_set": "v1", "level": u.level, "unit": u.code, "values": rows}}  # fmt: skip
        records.append((u.code, json.dumps(ev).encode()))
        expected["74"] += 1
        district = u.code if u.level == "district" else parent.get(u.code) if u.level == "commune" else None
        if district in expected:
            expected[district] += 1
    return records, expected


def run(events: int = 100_000) -> dict[str, Any]:
    from services.gateway.auth.models import Principal, Role
    from services.gateway.auth.service import TokenService
    from services.gateway.settings import GatewaySettings

    n = max(BATCH, min(events, 200_000))
    with private_stack():
        port = _free_port()
        env = {**os.environ, "IOC_GATEWAY_PORT": str(port), "IOC_GATEWAY_REQUESTS_PER_S": "1000000",
               "IOC_GATEWAY_REQUEST_BURST": "1000000", "IOC_GATEWAY_EVENTS_PER_S": "100000000",
               "IOC_GATEWAY_EVENT_BURST": "100000000", "IOC_LOG_LEVEL": "WARNING"}  # fmt: skip
        tokens = TokenService(GatewaySettings())  # creates the key the gateway will read
        admin = tokens.issue(Principal(sub="bench", role=Role.province_admin))
        proc = subprocess.Popen(
            [sys.executable, "-m", "ioccore.cli", "gateway", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            import httpx

            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("the gateway did not become ready")
                time.sleep(0.2)
            baseline_produce = asyncio.run(_produce_direct(n))
            ingest = _in_process("ingest", {"url": url, "token": admin, "events": n})
            latency = _in_process("latency", {"url": url, "token": admin})
            baseline_latency = _in_process("baseline_latency", {"url": url, "token": admin})
            # Fan-out: 100 province viewers, 100 district operators.
            clients = [
                ("74", tokens.issue(Principal(sub=f"v{i}", role=Role.province_viewer)))
                for i in range(CLIENTS // 2)
            ]
            clients += [
                (d, tokens.issue(Principal(sub=f"op{i}", role=Role.district_operator, district=d)))
                for i, d in enumerate(DISTRICTS[i % len(DISTRICTS)] for i in range(CLIENTS - len(clients)))
            ]
            records, expected = _indicator_records()
            ctx = mp.get_context("spawn")
            out, ready, go = ctx.Queue(), ctx.Queue(), ctx.Queue()
            p = ctx.Process(
                target=_load_process, args=("fanout", {"url": url, "tokens": clients}, out, ready, go)
            )
            p.start()
            if ready.get(timeout=180) != "ready":
                raise SystemExit(f"the fan-out load generator failed:\n{out.get(timeout=10).get('error')}")
            go.put(expected)
            asyncio.run(_produce_indicator_records(records))
            fanout = out.get(timeout=300)
            p.join(30)
            fanout["records"] = FANOUT_RECORDS
        finally:
            proc.terminate()
            proc.wait(15)
    return {
        "ingest_batched": {**ingest, "target_events_per_s": 20_000,
                           "baseline_direct_kafka_events_per_s": baseline_produce["events_per_s"]},
        "single_event_latency": {**latency, "target_p99_ms": 50, "baseline_healthz": baseline_latency},
        "sse_fanout": {**fanout, "target_clients": CLIENTS},
    }  # fmt: skip
