"""The indicators worker: a Faust app consuming ioc.events.

    ioc indicators worker          # one worker; start more to share the partitions

Records are taken in batches (up to `max_records` or `flush_s` seconds, which also coalesces bursts of
updates of a busy series into one), processed by services.indicators.processor, and acknowledged only after
the flush wrote everything; Faust then commits their offsets. Agent concurrency is 1 (offsets matter).
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from typing import Any

from ioccore.archive import RecordRef
from ioccore.catalog import load_catalog
from ioccore.clickhouse import connect
from ioccore.logging import get_logger, json_records
from ioccore.settings import get_settings
from ioccore.streams import make_app
from ioccore.topics import DEADLETTER, EVENTS, INDICATORS, load_topics
from services.indicators import store
from services.indicators.engine import Engine, Lateness
from services.indicators.model import boundaries, compile_model
from services.indicators.processor import Flush, Processor, flush_chunks
from services.indicators.settings import IndicatorSettings

log = get_logger("services.indicators")
FULL_GC_S = 600.0  # how often the cycle collector walks everything, frozen states included


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


def _follow_active_version(proc: Processor, settings: IndicatorSettings) -> Processor:
    """When `ioc replay` switched reads to another version set, go on live under it: restore its checkpoints
    and catch up from the archive the records between them and this worker's position."""
    from services.indicators.replay import catch_up

    active = store.active_version(proc.ch)
    if active is None or active["version_set"] == proc.version_set:
        return proc
    new = build_processor(settings, proc.ch)
    proc.close()
    for p in sorted(proc.parts):
        n = catch_up(new, p)
        log.info("indicators.version_switched", version_set=new.version_set, partition=p, caught_up_events=n)
    return new


async def _flush(proc: Processor, producer: Any, records: list[RecordRef], max_bytes: int) -> list[Flush]:
    """The flushes of a batch of records (see services.indicators.processor), in runs of at most `max_bytes`:
    the dead letters are sent once in their table, the updates once the values are in ClickHouse. Each run's
    wait for ClickHouse and sending of its updates overlap the next run's decoding and computing; the caller
    acknowledges the records after this returns (every run written and sent)."""
    done: list[Flush] = []
    tail: asyncio.Task | None = None
    try:
        for chunk in flush_chunks(records, max_bytes):
            flush, changed = await asyncio.to_thread(proc.ingest, chunk)
            if tail is not None:  # the previous run's updates go before this run's
                done.append(await tail)
                tail = None
            for key, raw, reason in flush.dead_records:
                await producer.send(DEADLETTER, key, raw, None, None, [("reason", reason.encode()[:4000])])
            flush = await asyncio.to_thread(proc.commit, flush, changed, settle=False)
            tail = asyncio.create_task(_publish(proc, producer, flush))
        if tail is not None:
            done.append(await tail)
            tail = None
    finally:
        if (
            tail is not None
        ):  # a failure in the next run: the caller stops the worker; do not leave it dangling
            tail.cancel()
    return done


async def _publish(proc: Processor, producer: Any, flush: Flush) -> Flush:
    """Once the flush's writes are in ClickHouse, send its updates."""
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
    return flush


def create_app(settings: IndicatorSettings | None = None) -> Any:
    settings = settings or IndicatorSettings()
    app = make_app(settings.app_id)
    events = app.topic(EVENTS, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    state: dict[str, Any] = {}

    def processor() -> Processor:
        if "p" not in state:
            state["p"] = build_processor(settings)
        return state["p"]

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
        async for batch in stream.take_events(settings.max_records, within=settings.flush_s):
            if time.monotonic() - last_version_check >= settings.version_check_s:
                last_version_check = time.monotonic()
                proc = await asyncio.to_thread(_follow_active_version, proc, settings)
                state["p"] = proc
            records = [
                RecordRef(
                    e.message.topic, e.message.partition, e.message.offset, e.message.key, e.message.value
                )
                for e in batch
            ]
            phases: dict[str, float] = {}
            try:
                flushes = await _flush(proc, producer, records, settings.max_flush_bytes)
            except Exception:
                # ClickHouse statements wait out an outage (worker_clickhouse_ride_out_s); past that, or on any
                # other failure, state in memory may be ahead of ClickHouse: stop, restart from the checkpoints.
                log.exception("indicators.flush_failed")
                os._exit(3)
            for flush in flushes:
                for k in totals:
                    totals[k] += getattr(flush, k)
                for k, v in flush.phases.items():
                    phases[k] = phases.get(k, 0.0) + v
            # What the flush kept (series states, mostly) leaves the collector's generations: collections
            # between flushes walk only new objects. States are freed by reference counting when evicted; a
            # full collection now and then catches any cyclic garbage among the frozen ones.
            if time.monotonic() - last_full_gc >= FULL_GC_S:
                last_full_gc = time.monotonic()
                gc.unfreeze()
                gc.collect()
            gc.freeze()
            if settings.log_flushes:
                log.info(
                    "indicators.flushed",
                    values_through={str(p): s.next_offset for p, s in proc.parts.items()},
                    phases_s={k: round(v, 3) for k, v in phases.items()},
                )
            if time.monotonic() - last_log >= settings.log_every_s:
                log.info("indicators.progress", **totals)
                last_log = time.monotonic()

    return app


def run_worker(settings: IndicatorSettings | None = None) -> None:
    import sys
    import warnings

    from faust.exceptions import AlreadyConfiguredWarning

    warnings.filterwarnings("ignore", category=AlreadyConfiguredWarning)  # --web-port repeats conf.web_port
    app = create_app(settings)
    sys.argv = [sys.argv[0], "worker", "-l", "warn", "--web-port", str(app.conf.web_port)]
    app.main()
