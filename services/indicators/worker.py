"""The indicators worker: a Faust app consuming ioc.events.

    ioc indicators worker          # one worker; start more to share the partitions

Records are taken in batches (ioccore.streams.record_batches: up to `max_records` records or `max_flush_bytes`,
else one batch per `flush_s`, which coalesces the updates of a busy series into one), processed by
services.indicators.processor, and acknowledged only after the flush wrote everything and sent its updates;
Faust then commits their offsets. A flush's wait for ClickHouse, its updates and acknowledgements overlap the
next batch's decoding and computing. Agent concurrency is 1 (offsets matter).
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from typing import Any

from ioccore.catalog import load_catalog
from ioccore.clickhouse import connect
from ioccore.logging import get_logger, json_records
from ioccore.memory import one_heap, trim_heap
from ioccore.settings import get_settings
from ioccore.streams import RecordBatch, make_app, record_batches
from ioccore.topics import DEADLETTER, EVENTS, INDICATORS, load_topics
from services.indicators import store
from services.indicators.engine import Engine, Lateness
from services.indicators.model import boundaries, compile_model
from services.indicators.processor import Flush, Processor
from services.indicators.settings import IndicatorSettings

log = get_logger("services.indicators")
FULL_GC_S = 600.0  # how often the cycle collector walks everything, frozen states included
TRIM_EVERY_BYTES = 16 << 20  # records processed between two returns of freed memory (ioccore.memory)


def build_processor(settings: IndicatorSettings, ch: Any | None = None) -> Processor:
    catalog = load_catalog()
    model = compile_model(catalog)
    ch = ch or connect(ride_out_s=get_settings().worker_clickhouse_ride_out_s)
    version = store.ensure_active_version(ch, settings.boundary_set, model.catalog_hash)
    if version["catalog_hash"] != model.catalog_hash:
        log.warning(
            "indicators.catalog_changed",
            active=version["version_set"],
            hint="run `ioc replay` to build the values under the new catalog, then it becomes active",
        )
    bounds = boundaries(catalog, version["boundary_set"])
    engine = Engine(
        model, bounds, Lateness(settings.lateness_days * 86400, settings.figure_lateness_days * 86400)
    )
    partitions = load_topics()[EVENTS].partitions
    return Processor(ch, catalog.contracts, engine, version["version_set"], partitions, EVENTS)


def values_through(log_text: str) -> dict[int, int]:
    """From the JSON log lines of workers run with IOC_INDICATORS_LOG_FLUSHES=true: partition -> the offset
    below which every record's values are written (the most any worker reported)."""
    out: dict[int, int] = {}
    for doc in json_records(log_text, "values_through"):
        for p, off in doc.get("values_through", {}).items():
            out[int(p)] = max(out.get(int(p), 0), int(off))
    return out


def _version_switched(proc: Processor) -> bool:
    """Whether `ioc replay` switched reads to another version set than the one this worker writes."""
    active = store.active_version(proc.ch)
    return active is not None and active["version_set"] != proc.version_set


def _follow_active_version(proc: Processor, settings: IndicatorSettings) -> Processor:
    """Once `ioc replay` switched reads to another version set (_version_switched), go on live under it:
    restore its checkpoints and catch up from the archive the records between them and this worker's
    position. Every write of the processor must be settled."""
    from services.indicators.replay import catch_up

    new = build_processor(settings, proc.ch)
    proc.close()
    for p in sorted(proc.parts):
        n = catch_up(new, p)
        log.info("indicators.version_switched", version_set=new.version_set, partition=p, caught_up_events=n)
    return new


async def _finish(proc: Processor, producer: Any, flush: Flush, batch: RecordBatch) -> Flush:
    """Once the flush's writes are in ClickHouse, send its updates, then acknowledge its records (Faust then
    commits their offsets). Runs while the next batch is decoded and computed; the caller starts it only once
    the previous flush's finished, so updates and acknowledgements keep the order of the flushes."""
    await asyncio.to_thread(proc.settle, flush)
    t = time.perf_counter()
    futures = [
        await producer.send(INDICATORS, unit.encode(), record, None, None, None)
        for unit, records in flush.updates.items()
        for record in records
    ]
    if futures:
        await asyncio.gather(*futures)
    await producer.flush()
    flush.timed("send_updates", t)
    await batch.ack()
    return flush


def create_app(settings: IndicatorSettings | None = None) -> Any:
    settings = settings or IndicatorSettings()
    app = make_app(settings.app_id, stream_buffer_maxsize=settings.stream_buffer_records)
    events = app.topic(EVENTS, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    state: dict[str, Any] = {}

    def processor() -> Processor:
        if "p" not in state:
            state["p"] = build_processor(settings)
        return state["p"]

    @app.on_partitions_assigned.connect
    async def _assigned(sender: Any, assigned: set, **kwargs: Any) -> None:
        log.info(
            "indicators.partitions_assigned",
            partitions=sorted(tp.partition for tp in assigned if tp.topic == EVENTS),
        )

    @app.on_partitions_revoked.connect
    async def _revoked(sender: Any, revoked: set, **kwargs: Any) -> None:
        if "p" in state:
            state["p"].release(tp.partition for tp in revoked if tp.topic == EVENTS)

    @app.agent(events, concurrency=1)
    async def indicators(stream: Any) -> None:
        proc = await asyncio.to_thread(processor)
        producer = app.producer
        totals = {"records": 0, "events": 0, "dead_lettered": 0, "late": 0, "duplicates": 0, "values": 0}
        last_log = time.monotonic()
        last_version_check = time.monotonic()
        last_full_gc = time.monotonic()
        since_trim = 0  # bytes of records
        # The previous flush, still settling, sending its updates and acknowledging its records. The next one
        # is computed and committed meanwhile (the writes land in order); one at most: memory stays bounded.
        tail: asyncio.Future | None = None

        def finished(task: asyncio.Task) -> None:
            nonlocal last_log
            if task.cancelled():
                return
            if task.exception() is not None:
                # ClickHouse statements wait out an outage (worker_clickhouse_ride_out_s); past that, or on any
                # other failure, state in memory may be ahead of ClickHouse: stop, restart from the checkpoints.
                log.error("indicators.flush_failed", exc_info=task.exception())
                os._exit(3)
            flush = task.result()
            for k in totals:
                totals[k] += getattr(flush, k)
            if settings.log_flushes:
                log.info(
                    "indicators.flushed",
                    values_through=flush.through,
                    phases_s={k: round(v, 3) for k, v in flush.phases.items()},
                )
            if time.monotonic() - last_log >= settings.log_every_s:
                log.info("indicators.progress", **totals)
                last_log = time.monotonic()

        try:
            async for batch in record_batches(
                stream,
                max_records=settings.max_records,
                max_bytes=settings.max_flush_bytes,
                every_s=settings.flush_s,
            ):
                if time.monotonic() - last_version_check >= settings.version_check_s:
                    last_version_check = time.monotonic()
                    if await asyncio.to_thread(_version_switched, proc):
                        if tail is not None:
                            await tail
                            tail = None
                        proc = await asyncio.to_thread(_follow_active_version, proc, settings)
                        state["p"] = proc
                try:
                    records = batch.take_records()  # freed after decoding; the batch keeps what ack() needs
                    since_trim += batch.size
                    flush, changed = await asyncio.to_thread(proc.ingest, records, consume=True)
                    del records
                    for key, raw, reason in flush.dead_records:
                        await producer.send(
                            DEADLETTER, key, raw, None, None, [("reason", reason.encode()[:4000])]
                        )
                    flush = await asyncio.to_thread(proc.commit, flush, changed, settle=False)
                    del changed
                    if since_trim >= TRIM_EVERY_BYTES:
                        since_trim = 0
                        await asyncio.to_thread(trim_heap)  # the flush's garbage, back to the system
                    if tail is not None and not tail.done():
                        # the previous flush's updates go first (a failure: finished)
                        await asyncio.wait([tail])
                except Exception:
                    log.exception("indicators.flush_failed")
                    os._exit(3)
                flush.through = {str(p): s.next_offset for p, s in proc.parts.items()}
                tail = asyncio.ensure_future(_finish(proc, producer, flush, batch))
                tail.add_done_callback(finished)
                # What the flush kept (series states, mostly) leaves the collector's generations: collections
                # between flushes walk only new objects. States are freed by reference counting when evicted; a
                # full collection now and then catches any cyclic garbage among the frozen ones.
                if time.monotonic() - last_full_gc >= FULL_GC_S:
                    last_full_gc = time.monotonic()
                    gc.unfreeze()
                    gc.collect()
                    since_trim = TRIM_EVERY_BYTES  # what it freed goes back after the next flush
                gc.freeze()
        finally:
            if tail is not None and not tail.done():
                tail.cancel()  # a stopping worker: its records are not acknowledged, the next owner redoes them

    return app


def run_worker(settings: IndicatorSettings | None = None) -> None:
    import sys
    import warnings

    from faust.exceptions import AlreadyConfiguredWarning

    warnings.filterwarnings("ignore", category=AlreadyConfiguredWarning)  # --web-port repeats conf.web_port
    one_heap()  # before any thread starts (the flushes run in threads): see ioccore.memory
    app = create_app(settings)
    sys.argv = [sys.argv[0], "worker", "-l", "warn", "--web-port", str(app.conf.web_port)]
    app.main()
