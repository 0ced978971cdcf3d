"""The hotline worker: a Faust app consuming ioc.hotline.calls.

    ioc hotline worker

Records are taken in batches (ioccore.streams.record_batches: up to `max_records` records or `max_flush_bytes`,
else one batch per `flush_s`; a call after a quiet spell goes at once) and processed by
services.hotline.processor: the calls' events and states go to ClickHouse first, then the derived events
(deadline_set, overdue) back onto ioc.hotline.calls, each changed call's summary onto ioc.hotline.live, the
changed daily figures onto ioc.events and redacted dead letters onto ioc.events.deadletter; only then are the
records acknowledged (Faust commits their offsets). Agent concurrency is 1. One worker per group: the per-call
state and the province-wide figures are held by one process (about 410 calls a day; see the benchmark).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from ioccore.catalog import load_catalog
from ioccore.clickhouse import connect
from ioccore.errors import OperationalError
from ioccore.logging import get_logger
from ioccore.settings import get_settings
from ioccore.streams import make_app, record_batches
from ioccore.topics import DEADLETTER, EVENTS, HOTLINE_CALLS, HOTLINE_LIVE
from services.hotline.calendar import load_deadlines
from services.hotline.privacy import CallerPrivacy, load_key
from services.hotline.processor import Flush, Processor
from services.hotline.routing import Router
from services.hotline.settings import HotlineSettings

log = get_logger("services.hotline")


def caller_privacy(settings: HotlineSettings) -> CallerPrivacy:
    key = settings.caller_key.get_secret_value() if settings.caller_key else None
    try:
        return CallerPrivacy(load_key(key, get_settings().home))
    except (ValueError, OSError) as exc:
        raise OperationalError(
            "hotline",
            f"no usable caller key ({exc})",
            "set IOC_HOTLINE_CALLER_KEY to a secret of 16+ characters, or unset it to use the local one in "
            "$IOC_HOME/secrets/hotline_caller_key",
        ) from exc


def build_processor(settings: HotlineSettings, ch: Any | None = None) -> Processor:
    catalog = load_catalog()
    proc = Processor(
        ch or connect(ride_out_s=get_settings().worker_clickhouse_ride_out_s),
        catalog.contracts,
        catalog,
        Router(catalog, settings.boundary_set),
        load_deadlines(get_settings().contracts_dir),
        caller_privacy(settings),
        settings.retention_days,
    )
    n = proc.restore()
    log.info("hotline.restored", calls=n, figures=len(proc.emitted))
    return proc


async def publish(producer: Any, flush: Flush) -> None:
    """Send a flush's derived events, live summaries, figures and dead letters; wait until the broker has them."""
    from ioccore.contracts import encode_event

    futures = []
    for key, raw, reason in flush.dead.dead_records:
        futures.append(
            await producer.send(DEADLETTER, key, raw, None, None, [("reason", reason.encode()[:4000])])
        )
    for key, event in flush.derived:
        futures.append(
            await producer.send(HOTLINE_CALLS, key.encode(), encode_event(event), None, None, None)
        )
    for key, event in flush.live:
        futures.append(await producer.send(HOTLINE_LIVE, key.encode(), encode_event(event), None, None, None))
    by_unit: dict[str, list[dict[str, Any]]] = {}
    for unit, event, *_ in flush.figures:
        by_unit.setdefault(unit, []).append(event)
    for unit, events in by_unit.items():
        futures.append(await producer.send(EVENTS, unit.encode(), encode_event(events), None, None, None))  # type: ignore[arg-type]
    if futures:
        await asyncio.gather(*futures)


def create_app(settings: HotlineSettings | None = None) -> Any:
    settings = settings or HotlineSettings()
    app = make_app(settings.app_id, fetch_max_wait_ms=settings.fetch_max_wait_ms)
    calls = app.topic(
        HOTLINE_CALLS, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    state: dict[str, Any] = {}

    @app.agent(calls, concurrency=1)
    async def hotline(stream: Any) -> None:
        if "p" not in state:
            state["p"] = await asyncio.to_thread(build_processor, settings)
        proc: Processor = state["p"]
        producer = app.producer
        last_log = time.monotonic()
        async for batch in record_batches(
            stream,
            max_records=settings.max_records,
            max_bytes=settings.max_flush_bytes,
            every_s=settings.flush_s,
        ):
            records = batch.records
            try:
                flush = await asyncio.to_thread(proc.ingest, records)
                await asyncio.to_thread(proc.write, flush)
                await publish(producer, flush)
                await asyncio.to_thread(proc.written, flush)
                await batch.ack()  # only now may Faust commit their offsets
            except Exception:
                # Memory may be ahead of ClickHouse: stop; the restart restores from call_events.
                log.exception("hotline.flush_failed")
                os._exit(3)
            if settings.log_flushes:
                ends: dict[str, int] = {}
                for r in records:
                    ends[str(r.partition)] = max(ends.get(str(r.partition), 0), r.offset + 1)
                log.info("hotline.flushed", written_through=ends, watermark=proc.watermark)
            if time.monotonic() - last_log >= settings.log_every_s:
                log.info("hotline.progress", **proc.totals, anomalies=proc.anomaly_totals)
                last_log = time.monotonic()

    return app


def run_worker(settings: HotlineSettings | None = None) -> None:
    import sys
    import warnings

    from faust.exceptions import AlreadyConfiguredWarning

    warnings.filterwarnings("ignore", category=AlreadyConfiguredWarning)
    settings = settings or HotlineSettings()
    caller_privacy(settings)  # a bad key stops here, with a message, before Faust starts
    app = create_app(settings)
    sys.argv = [sys.argv[0], "worker", "-l", "warn", "--web-port", str(app.conf.web_port)]
    app.main()
