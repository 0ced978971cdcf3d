"""`ioc run` / `make run`: the whole system in the foreground, supervised with asyncio.

Starts the local stack (what is not already running), then every service process that exists,
restarts a service that dies (with backoff), prints where to look, and on Ctrl-C or SIGTERM stops
the services and then the parts of the stack it started itself. Nothing is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from dataclasses import dataclass, field

from rich.console import Console

from ioccore import stack
from ioccore.logging import get_logger
from ioccore.settings import get_settings

log = get_logger("ioccore.supervisor")


@dataclass
class Service:
    name: str
    argv: list[str]
    restarts: list[float] = field(default_factory=list)


# Simulated department traffic in `make run`: one simulated day every 10 minutes (~66 events/s).
SIMULATED_DAY_S = 600


def services() -> list[Service]:
    """The service processes of the system, as far as they exist."""
    import datetime as dt

    ioc = [sys.executable, "-m", "ioccore.cli"]
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).date().isoformat()
    return [
        # The indicators worker archives the raw events as well (ioc.events -> events_archive, dead letters).
        Service("indicators", [*ioc, "indicators", "worker"]),
        # Alert rules over the indicator updates, operators' commands, escalation and no-data timers.
        Service("alerts", [*ioc, "alerts", "worker"]),
        # Hotline 1022/115: call state, routing, deadlines, live feed, daily KPI figures (onto ioc.events).
        Service("hotline", [*ioc, "hotline", "worker"]),
        # REST, live stream, wall and console (services/gateway).
        Service("gateway", [*ioc, "gateway", "serve"]),
        Service(
            "simulator",
            [
                *ioc,
                "simulate",
                "--out",
                "kafka",
                "--start",
                today,
                "--days",
                "365",
                "--speed",
                str(SIMULATED_DAY_S),
                "--no-progress",
            ],
        ),
    ]


async def _supervise(svc: Service, stop: asyncio.Event, console: Console) -> None:
    while not stop.is_set():
        proc = await asyncio.create_subprocess_exec(*svc.argv, stdin=asyncio.subprocess.DEVNULL)
        console.print(f"  ▶ {svc.name} (pid {proc.pid})")
        waiter = asyncio.create_task(proc.wait())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                try:
                    await asyncio.wait_for(waiter, timeout=10)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await waiter
            stopper.cancel()
            return
        stopper.cancel()
        now = time.monotonic()
        svc.restarts = [t for t in svc.restarts if now - t < 60] + [now]
        delay = min(30.0, 0.5 * 2 ** (len(svc.restarts) - 1))
        console.print(f"  [yellow]! {svc.name} exited with {proc.returncode}; restarting in {delay:.1f} s[/]")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)


def _gateway_urls() -> dict[str, str] | None:
    """The gateway's signed-in URLs, from the gateway's own command (ioccore imports no service)."""
    import json
    import subprocess

    try:
        done = subprocess.run(
            [sys.executable, "-m", "ioccore.cli", "gateway", "urls", "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return json.loads(done.stdout)
    except (subprocess.SubprocessError, ValueError, OSError) as exc:
        log.warning("supervisor.gateway_urls_failed", error=str(exc))
        return None


def _banner(console: Console, t0: float) -> None:
    s = get_settings()
    st = stack.status(s)
    console.print(
        f"\n[bold green]IOC đang chạy / IOC is running[/] (sẵn sàng sau {time.monotonic() - t0:.1f} s)"
    )
    console.print(f"  Kafka (Tansu)     {st['kafka']['bootstrap']}")
    console.print(f"  ClickHouse        {st['clickhouse']['url']}  (v{st['clickhouse']['version']})")
    if st["clickhouse"].get("http"):
        console.print(
            f"  ClickHouse HTTP   {st['clickhouse']['http']}"
            f"?query=SELECT%20type,count()%20FROM%20{s.clickhouse_database}.events_archive%20FINAL%20GROUP%20BY%20type"
        )
    urls = _gateway_urls()
    if urls:
        console.print(f"  Màn hình tỉnh / province wall:  {urls['wall']}", highlight=False, soft_wrap=True)
        console.print(
            f"  Bàn điều hành / console (district 718 operator):  {urls['console']}",
            highlight=False,
            soft_wrap=True,
        )
        console.print(
            f"  API (OpenAPI):  {urls['api']}   token: .venv/bin/ioc token --role …", highlight=False
        )
    console.print(
        "  Gửi sự kiện mẫu / send sample events:  .venv/bin/ioc send contracts/events/*/examples/*.json"
    )
    console.print("  Trạng thái / status:                    .venv/bin/ioc stack status")
    console.print("  Chỉ tiêu / indicators:                  .venv/bin/ioc indicators status")
    console.print("  Đối soát / reconcile with the archive:  .venv/bin/ioc reconcile")
    console.print(
        "  Cảnh báo / alerts:                      .venv/bin/ioc alerts status  (list, timeline ID)"
    )
    console.print("  Tổng đài / hotlines:                    .venv/bin/ioc hotline status")
    console.print("  Nhấn Ctrl-C để dừng / Ctrl-C stops everything.\n")


def run_system(console: Console) -> int:
    settings = get_settings()
    t0 = time.monotonic()
    console.print("Khởi động / starting the stack …")
    started = stack.up(settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, stop.set)
        tasks = [asyncio.create_task(_supervise(svc, stop, console)) for svc in services()]
        _banner(console, t0)
        await stop.wait()
        console.print("\nĐang dừng / stopping …")
        await asyncio.gather(*tasks)

    try:
        asyncio.run(main())
    finally:
        local = stack.parts(settings)
        for name in reversed(started):  # the broker before the object store it writes to
            local[name].stop()
        console.print(
            "Đã dừng / stopped"
            + (f": {', '.join(started)}" if started else " (the stack was already running before; left up)")
        )
    return 0
