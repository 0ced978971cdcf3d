"""The alerts worker: a Faust app consuming ioc.indicators and ioc.alert.commands, with a timer.

    ioc alerts worker

State lives in memory, rebuilt at start from ClickHouse alert_events (the event store) and primed with the
stored indicator values, so a restart loses nothing. Each step writes alert_events and alerts before it
publishes on ioc.alerts / ioc.alert.command.results (and timeliness figures on ioc.events); the input's
offsets are committed after that. One step at a time (a lock), agent concurrency 1.

Run one alerts worker: the whole alert state is in one process (indicator updates are keyed by unit and
commands by alert id, so two workers would each see a part of the inputs of an alert).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from ioccore.clickhouse import connect
from ioccore.contracts import load_contracts
from ioccore.logging import get_logger
from ioccore.settings import get_settings
from ioccore.streams import make_app, record_batches
from ioccore.topics import ALERT_COMMANDS, DEADLETTER, INDICATORS
from services.alerts.service import AlertsService, Step, build_core
from services.alerts.settings import AlertSettings

log = get_logger("services.alerts")


def create_app(settings: AlertSettings | None = None) -> Any:
    settings = settings or AlertSettings()
    app = make_app(settings.app_id, fetch_max_wait_ms=settings.fetch_max_wait_ms)
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
    indicators = app.topic(INDICATORS, **raw)
    commands = app.topic(ALERT_COMMANDS, **raw)
    state: dict[str, Any] = {}
    lock = asyncio.Lock()

    async def service() -> AlertsService:
        async with lock:
            if "s" not in state:

                def build() -> AlertsService:
                    ch = connect(ride_out_s=get_settings().worker_clickhouse_ride_out_s)
                    return AlertsService(ch, load_contracts(), build_core(ch))

                state["s"] = await asyncio.to_thread(build)
                state["totals"] = {"updates": 0, "commands": 0, "events": 0, "dead_lettered": 0}
        return state["s"]

    async def run(fn: Any, *args: Any) -> None:
        """One step under the lock: decide, write ClickHouse, then publish; any failure stops the worker
        (the state in memory may be ahead of ClickHouse) and a restart rebuilds it from alert_events."""
        svc = await service()
        async with lock:
            try:
                t0 = time.perf_counter()
                step: Step = await asyncio.to_thread(fn, svc, *args)
                t1 = time.perf_counter()
                producer = app.producer
                # dead letters awaited with the rest: the input offsets move only once the broker has them
                futures = [
                    await producer.send(
                        DEADLETTER, key, value, None, None, [("reason", reason.encode()[:4000])]
                    )
                    for key, value, reason in step.dead
                ]
                futures += [await producer.send(t, k, v, None, None, None) for t, k, v in step.records]
                if futures:
                    await asyncio.gather(*futures)
                t2 = time.perf_counter()
            except Exception:
                log.exception("alerts.step_failed")
                os._exit(3)
        totals = state["totals"]
        totals["updates"] += step.updates
        totals["commands"] += step.commands
        totals["events"] += step.events
        totals["dead_lettered"] += len(step.dead)
        if step.events or step.commands:
            log.info(
                "alerts.step",
                events=step.events,
                commands=step.commands,
                updates=step.updates,
                decide_ms=round((t1 - t0 - step.write_s) * 1000, 1),
                write_ms=round(step.write_s * 1000, 1),
                publish_ms=round((t2 - t1) * 1000, 1),
            )

    async def consume(stream: Any, fn: Any, max_records: int) -> None:
        """Steps of up to `max_records` records; their offsets are acknowledged only once the step is written
        and published; records the broker made the consumer skip are put back (record_batches)."""
        await service()
        async for batch in record_batches(
            stream,
            max_records=max_records,
            max_bytes=settings.max_batch_bytes,
            every_s=settings.batch_s,
        ):
            await run(fn, [r.value for r in batch.take_records()])
            await batch.ack()

    @app.agent(indicators, concurrency=1)
    async def on_indicators(stream: Any) -> None:
        await consume(stream, AlertsService.updates, settings.max_records)

    @app.agent(commands, concurrency=1)
    async def on_commands(stream: Any) -> None:
        await consume(stream, AlertsService.commands, 100)

    @app.timer(interval=settings.tick_s)
    async def on_tick() -> None:
        if "s" in state:
            await run(AlertsService.tick, None)

    @app.timer(interval=settings.log_every_s)
    async def progress() -> None:
        if "totals" in state:
            log.info("alerts.progress", at=int(time.time()), **state["totals"])

    return app


def run_worker(settings: AlertSettings | None = None) -> None:
    import sys
    import warnings

    from faust.exceptions import AlreadyConfiguredWarning

    warnings.filterwarnings("ignore", category=AlreadyConfiguredWarning)
    app = create_app(settings)
    sys.argv = [sys.argv[0], "worker", "-l", "warn", "--web-port", str(app.conf.web_port)]
    app.main()
