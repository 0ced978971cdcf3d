"""The fault suite's harness: the whole system as real processes under simulated load, and the invariant.

`System` runs what `make run` runs (indicators, alerts and hotline workers, the gateway) as subprocesses on the
session's private stack (Tansu + ClickHouse 18.16), over a fresh migrated database and fresh topics. `Load`
drives simulator traffic from a thread: department events POSTed through the gateway (acknowledged = the
gateway answered 202 naming the id; an unanswered or refused post is retried, as a department system does)
and hotline call events produced straight to ioc.hotline.calls, as the switchboards do (acknowledged = the
producer's future resolved with acks=all). `System.check` waits until every consumer group has no lag and
the archive stops growing, then asserts the invariant: every acknowledged event is in the archive exactly
once (or dead-lettered, counted apart), `ioc reconcile --json` finds no mismatch in any service, and no
process died unless the test killed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ioccore.clickhouse import ClickHouse
from ioccore.kafka import committed_offsets, end_offsets, producer
from ioccore.settings import REPO_ROOT, get_settings
from ioccore.stack import free_port
from ioccore.testing import spawn_ioc
from ioccore.topics import ALERT_COMMANDS, EVENTS, HOTLINE_CALLS, INDICATORS

LONG = os.environ.get("IOC_FAULTS_LONG") == "1"
logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per post
# `make run`'s simulated traffic: one simulated day (~40,000 department and hotline events) every 600 s.
BASE_RATE = 66.0  # events/s
DRAIN_TIMEOUT_S = 420.0


def say(text: str) -> None:
    """Figures the integrator quotes (`pytest -s` shows them)."""
    print(f"[faults] {text}", flush=True)


@dataclass
class Proc:
    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen | None = None
    killed: int = 0  # times the test killed it on purpose
    exits: list[int] = field(default_factory=list)  # exits the test did not cause

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def rss_mb(self) -> float:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0


class System:
    """The services of `make run` as real processes over one database (module-scoped in the suite)."""

    GROUPS = {  # consumer group (the Faust app id) -> the topics it consumes
        "indicators": (EVENTS,),
        "alerts": (INDICATORS, ALERT_COMMANDS),
        "hotline": (HOTLINE_CALLS,),
    }

    def __init__(self, db: ClickHouse, tmp: Path):
        self.db = db
        self.tmp = tmp
        run = uuid.uuid4().hex[:8]
        self.group = {name: f"faults-{name}-{run}" for name in self.GROUPS}
        self.port = free_port()
        self.key_dir = tmp / "gateway-keys"
        env = {
            "IOC_CLICKHOUSE_URL": db.url,
            "IOC_INDICATORS_APP_ID": self.group["indicators"],
            "IOC_ALERTS_APP_ID": self.group["alerts"],
            "IOC_HOTLINE_APP_ID": self.group["hotline"],
            "IOC_INDICATORS_FLUSH_S": "0.5",
            "IOC_GATEWAY_PORT": str(self.port),
            "IOC_GATEWAY_KEY_DIR": str(self.key_dir),
        }
        self.procs = {
            name: Proc(name, [name, "worker"], env, tmp / f"{name}.log") for name in self.GROUPS
        } | {"gateway": Proc("gateway", ["gateway", "serve"], env, tmp / "gateway.log")}
        self.url = f"http://127.0.0.1:{self.port}"

    # -- processes ---------------------------------------------------------------------------------------
    def start(self, name: str) -> None:
        p = self.procs[name]
        assert not p.alive(), f"{name} already runs"
        p.popen = spawn_ioc(p.args, p.log, **p.env)
        if name == "gateway":
            self.wait_gateway()

    def start_all(self) -> None:
        for name in self.procs:
            self.start(name)

    def wait_gateway(self, timeout_s: float = 90) -> None:
        p = self.procs["gateway"]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert p.alive(), f"the gateway exited while starting:\n{self.tail('gateway')}"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise AssertionError(f"the gateway did not answer in {timeout_s} s:\n{self.tail('gateway')}")

    def kill9(self, name: str) -> None:
        p = self.procs[name]
        assert p.alive(), f"{name} is not running:\n{self.tail(name)}"
        p.popen.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        p.popen.wait()  # type: ignore[union-attr]
        p.killed += 1

    def signal(self, name: str, sig: int) -> None:
        os.kill(self.procs[name].pid, sig)

    def log_count(self, name: str, needle: str) -> int:
        log = self.procs[name].log
        return log.read_text(errors="replace").count(needle) if log.exists() else 0

    def tail(self, name: str, chars: int = 3000) -> str:
        log = self.procs[name].log
        return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"

    def crashed(self) -> dict[str, str]:
        """Processes that exited without the test killing them (with the end of their log)."""
        out = {}
        for name, p in self.procs.items():
            if p.popen is not None and p.popen.poll() is not None:
                p.exits.append(p.popen.returncode)
                out[name] = f"exit {p.popen.returncode}:\n{self.tail(name)}"
        return out

    def ensure_running(self) -> dict[str, str]:
        """Restart whatever died (a previous test's failure must not spoil the next); returns what had died."""
        dead = self.crashed()
        for name in dead:
            self.procs[name].popen = None
            self.start(name)
        return dead

    def stop(self) -> None:
        from ioccore.testing import stop_processes

        with contextlib.suppress(Exception):
            for name in self.procs:
                if self.procs[name].alive():
                    self.signal(name, signal.SIGCONT)
        stop_processes([p.popen for p in self.procs.values() if p.popen is not None], timeout_s=10)

    # -- observation ---------------------------------------------------------------------------------------
    def lag(self) -> dict[str, int]:
        """Consumer group -> records on its topics not yet committed (end offset minus committed offset)."""
        out = {}
        for name, topics in self.GROUPS.items():
            committed = committed_offsets(self.group[name], get_settings().effective_kafka_bootstrap)
            out[name] = sum(
                max(0, end - committed.get((topic, part), 0))
                for topic in topics
                for part, end in asyncio.run(end_offsets(topic)).items()
            )
        return out

    def counts(self) -> tuple[int, int]:
        archived = self.db.execute("SELECT count() FROM events_archive")[0][0]
        calls = self.db.execute("SELECT count() FROM call_events")[0][0]
        return archived, calls

    def drain(self, timeout_s: float = DRAIN_TIMEOUT_S) -> float:
        """Wait until no group lags and the archive stopped growing; the seconds it took."""
        t0 = time.monotonic()
        deadline = t0 + timeout_s
        last: tuple | None = None
        stable = 0
        lag: dict[str, int] = {}
        while stable < 3:
            dead = self.crashed()
            assert not dead, f"a process died while draining: {dead}"
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"not drained after {timeout_s:.0f} s: consumer lag {lag}, archive/call rows {last}; "
                    + "; ".join(f"{n}: {self.tail(n, 1500)}" for n in self.procs)
                )
            lag = self.lag()
            now = (self.counts(), tuple(sorted(lag.items())))
            stable = stable + 1 if not any(lag.values()) and now == last else 0
            last = now
            time.sleep(1.0)
        return time.monotonic() - t0

    # -- the invariant ---------------------------------------------------------------------------------------
    def check(self, load: Load, *, expect_killed: dict[str, int] | None = None) -> dict[str, Any]:
        """Drain, then assert: acknowledged = archived exactly once (or dead-lettered), reconcile clean, no
        unexpected exit. Returns the figures."""
        drain_s = self.drain()
        figures: dict[str, Any] = {"drain_s": round(drain_s, 1)}
        dept = self._once(
            "events_archive",
            load.acked_events,
            "SELECT source, id, count() FROM events_archive FINAL GROUP BY source, id",
            "SELECT source, id, count() FROM events_archive GROUP BY source, id",
        )
        calls = self._once(
            "call_events",
            load.acked_calls,
            "SELECT source, event_id, count() FROM call_events FINAL GROUP BY source, event_id",
            "SELECT source, event_id, count() FROM call_events GROUP BY source, event_id",
        )
        availability = self._once(
            "facility_availability",
            load.acked_availability,
            "SELECT '', event_id, count() FROM facility_availability FINAL GROUP BY event_id",
            "SELECT '', event_id, count() FROM facility_availability GROUP BY event_id",
        )
        figures |= {"department": dept, "hotline": calls, "availability": availability["acknowledged"]}
        t0 = time.monotonic()
        report = reconcile(self.db.url)
        figures["reconcile_s"] = round(time.monotonic() - t0, 1)
        assert report["mismatches"] == 0, f"reconcile found mismatches: {json.dumps(report)[:3000]}"
        figures["reconciled"] = {name: part["checked"] for name, part in report.get("parts", {}).items()} | {
            "indicators": report["checked"]
        }
        assert figures["reconciled"]["indicators"] > 0, report
        dead = self.crashed()
        assert not dead, f"processes died that the test did not kill: {dead}"
        for name, n in (expect_killed or {}).items():
            assert self.procs[name].killed >= n, f"{name} was not killed {n} times"
        return figures

    def _once(self, table: str, acked: set, final_sql: str, raw_sql: str) -> dict[str, int]:
        """Every acknowledged (source, id) exactly once in `table` (FINAL), else dead-lettered with a reason."""
        rows = {(s, i): n for s, i, n in self.db.execute(final_sql)}
        missing = acked - rows.keys()
        doubled = sorted(k for k in acked if rows.get(k, 0) > 1)
        lettered = set()
        reasons: dict[str, int] = {}
        if missing:
            for raw, reason in self.db.execute("SELECT raw, reason FROM dead_letters"):
                with contextlib.suppress(ValueError, TypeError, AttributeError):
                    doc = json.loads(raw)
                    for e in doc if isinstance(doc, list) else [doc]:
                        key = (e.get("source"), e.get("id"))
                        if key in missing and reason and key not in lettered:
                            lettered.add(key)
                            reasons[reason[:50]] = reasons.get(reason[:50], 0) + 1
        lost = sorted(missing - lettered)
        assert not lost and not doubled, (
            f"{table}: {len(acked)} acknowledged; {len(lost)} missing {lost[:20]}; "
            f"{len(doubled)} more than once {doubled[:20]}"
        )
        physical = {(s, i): n for s, i, n in self.db.execute(raw_sql)}
        return {
            "acknowledged": len(acked),
            "archived_once": len(acked) - len(lettered),
            "dead_lettered": len(lettered),
            "physical_rows": sum(physical.get(k, 0) for k in acked),
        } | ({"dead_letter_reasons": reasons} if reasons else {})


def reconcile(db_url: str) -> dict[str, Any]:
    """`ioc reconcile --json` (every `ioc_reconcilers` entry point: indicators, alerts, hotline)."""
    res = subprocess.run(
        [sys.executable, "-m", "ioccore.cli", "reconcile", "--json", "--no-progress"],
        cwd=REPO_ROOT,
        env={**os.environ, "IOC_CLICKHOUSE_URL": db_url},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.stdout.strip(), f"ioc reconcile printed nothing (exit {res.returncode}): {res.stderr[-3000:]}"
    report = json.loads(res.stdout)
    assert res.returncode in (0, 1), res.stderr[-3000:]
    return report


class Load:
    """Simulated traffic from a thread: department events through the gateway, calls straight to Kafka.

    Emissions come from one simulator run (ids unique across the module); `rate` events/s, sent every 0.2 s.
    Acknowledged (source, id) pairs are recorded; a post that fails or is refused (connection, 5xx, 429) is
    retried until acknowledged or the load is stopped."""

    TICK_S = 0.2

    def __init__(self, system: System, emissions: Iterator[Any], token: str):
        self.system = system
        self.emissions = emissions
        self.token = token
        self.acked_events: set[tuple[str, str]] = set()
        self.acked_calls: set[tuple[str, str]] = set()  # call events (source, id)
        self.acked_availability: set[tuple[str, str]] = set()  # 115 facilities' availability ("", id)
        self.retried_posts = 0
        self.rate = BASE_RATE
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.sent = 0

    def start(self, rate: float = BASE_RATE) -> None:
        assert self._thread is None
        self.rate = rate
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="faults-load", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=300)
            assert not self._thread.is_alive(), "the load did not stop"
            self._thread = None
        if self.error is not None:
            raise AssertionError(f"the load failed: {self.error!r}") from self.error

    def run_for(self, seconds: float, rate: float = BASE_RATE) -> None:
        self.start(rate)
        time.sleep(seconds)
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by stop()
            self.error = exc

    async def _main(self) -> None:
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/cloudevents-batch+json",
        }
        async with producer() as prod, httpx.AsyncClient(timeout=30) as http:
            carry = 0.0
            next_tick = time.monotonic()
            while not self._stop.is_set():
                carry += self.rate * self.TICK_S
                n, carry = int(carry), carry - int(carry)
                batch = [e for _, e in zip(range(n), self.emissions, strict=False)]
                dept = [e.event for e in batch if e.topic == EVENTS]
                calls = [e for e in batch if e.topic == HOTLINE_CALLS]
                futures = [
                    await prod.send(HOTLINE_CALLS, value=e.encode(), key=e.key.encode()) for e in calls
                ]
                if dept:
                    await self._post(http, headers, dept)
                if futures:
                    await asyncio.gather(*futures)
                    for e in calls:
                        if e.event["type"].endswith(".facility.availability"):
                            self.acked_availability.add(("", e.event["id"]))
                        else:
                            self.acked_calls.add((e.event["source"], e.event["id"]))
                self.sent += len(batch)
                next_tick += self.TICK_S
                await asyncio.sleep(max(0.0, next_tick - time.monotonic()))

    async def _post(self, http: httpx.AsyncClient, headers: dict, events: list[dict]) -> None:
        body = json.dumps(events)
        by_id = {e["id"]: e["source"] for e in events}
        give_up = None
        while True:
            try:
                r = await http.post(f"{self.system.url}/v1/events", content=body, headers=headers)
                if r.status_code == 202:
                    doc = r.json()
                    self.acked_events.update((by_id[i], i) for i in doc["accepted"])
                    return
                if r.status_code < 500 and r.status_code != 429:
                    raise AssertionError(
                        f"the gateway refused simulator events: {r.status_code} {r.text[:500]}"
                    )
            except httpx.TransportError:
                pass  # the gateway is down or restarting: not acknowledged, send again
            self.retried_posts += 1
            if self._stop.is_set():  # stopping: a batch still unanswered after a minute stays unacknowledged
                give_up = give_up or time.monotonic() + 60
                if time.monotonic() > give_up:
                    return
            await asyncio.sleep(0.5)
