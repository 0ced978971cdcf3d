"""The raw event archive and the dead letters: the generic consumer from ioc.events into ClickHouse.

Every record of ioc.events is decoded against the contracts. Valid events go to `events_archive`
(deduplicated by (source, id), so a redelivered batch changes nothing); everything else goes, with the
original bytes and the reason, to the `dead_letters` table and the dead-letter topic. Offsets are
committed only after both writes succeeded: at-least-once delivery, exactly-once rows.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import msgspec

from ioccore.clickhouse import ClickHouse, Inserter
from ioccore.contracts import CloudEvent, Contracts, Rejection, parse_json
from ioccore.logging import bind_event, get_logger, unbind_event
from ioccore.topics import DEADLETTER, EVENTS

log = get_logger("ioccore.archive")

ARCHIVE_TABLE = "events_archive"
DEADLETTER_TABLE = "dead_letters"


@dataclass
class RecordRef:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


@dataclass
class Batch:
    """Columns for one write, built from a set of Kafka records."""

    archive: dict[str, list[Any]] = field(
        default_factory=lambda: {
            c: []
            for c in (
                "source",
                "id",
                "type",
                "subject",
                "time",
                "time_ms",
                "received_at",
                "topic",
                "partition",
                "offset",
                "data",
            )
        }
    )
    dead: dict[str, list[Any]] = field(
        default_factory=lambda: {
            c: []
            for c in (
                "received_at",
                "topic",
                "partition",
                "offset",
                "position",
                "key",
                "raw",
                "reason",
                "source",
                "type",
            )
        }
    )
    dead_records: list[tuple[bytes | None, bytes, str]] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return len(self.archive["id"])

    @property
    def rejected(self) -> int:
        return len(self.dead["reason"])


def build_batch(contracts: Contracts, records: Iterable[RecordRef], now: dt.datetime | None = None) -> Batch:
    now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    batch = Batch()
    for rec in records:
        for item in contracts.decode(rec.value):
            if isinstance(item, CloudEvent):
                add_archived(batch, rec, item, now)
            else:
                add_dead_letter(batch, rec, item, now)
    return batch


def add_archived(batch: Batch, rec: RecordRef, item: CloudEvent, now: dt.datetime) -> None:
    a = batch.archive
    # DateTime columns take epoch seconds: no per-row time-zone conversion in the driver.
    a["source"].append(item.source)
    a["id"].append(item.id)
    a["type"].append(item.type)
    a["subject"].append(item.subject)
    a["time"].append(int(item.time.timestamp()))
    a["time_ms"].append(item.time.microsecond // 1000)
    a["received_at"].append(int(now.timestamp()))
    a["topic"].append(rec.topic)
    a["partition"].append(rec.partition)
    a["offset"].append(rec.offset)
    a["data"].append(_json(item.data))  # UTF-8 bytes: the driver writes them as they are


_json = msgspec.json.Encoder().encode


def add_archived_many(
    batch: Batch,
    topic: str,
    partition: int,
    offsets: Sequence[int],
    events: Sequence[CloudEvent],
    now: dt.datetime,
    epochs: Sequence[float] | None = None,
) -> None:
    """add_archived for many events of one partition (offsets[i] is the offset of events[i]), column by column:
    the same rows, with the per-event work in C (map, attrgetter, zip). `epochs`: the events' times as epoch
    seconds, when the caller has them already."""
    if not events:
        return
    a = batch.archive
    n = len(events)
    source, ids, types, subject, times = zip(*map(_ENVELOPE, events), strict=True)
    a["source"] += source
    a["id"] += ids
    a["type"] += types
    a["subject"] += subject
    a["time"] += map(int, epochs if epochs is not None else map(dt.datetime.timestamp, times))
    a["time_ms"] += map((1000).__rfloordiv__, map(_MICROSECOND, times))
    a["received_at"] += [int(now.timestamp())] * n
    a["topic"] += [topic] * n
    a["partition"] += [partition] * n
    a["offset"] += offsets
    a["data"] += map(_json, map(_DATA, events))


_ENVELOPE = attrgetter("source", "id", "type", "subject", "time")
_MICROSECOND = attrgetter("microsecond")
_DATA = attrgetter("data")


def add_dead_letter(batch: Batch, rec: RecordRef, rej: Rejection, now: dt.datetime) -> None:
    event_id = _event_id(rej.raw)
    bind_event(event_id, rej.type or None)
    log.warning(
        "event.dead_lettered",
        reason=rej.reason,
        source=rej.source,
        topic=rec.topic,
        partition=rec.partition,
        offset=rec.offset,
        position=rej.position,
    )
    unbind_event()
    d = batch.dead
    d["received_at"].append(now)
    d["topic"].append(rec.topic)
    d["partition"].append(rec.partition)
    d["offset"].append(rec.offset)
    d["position"].append(rej.position)
    d["key"].append((rec.key or b"").decode("utf-8", "replace"))
    d["raw"].append(rej.raw)
    d["reason"].append(rej.reason)
    d["source"].append(rej.source)
    d["type"].append(rej.type)
    batch.dead_records.append((rec.key, rej.raw, rej.reason))


def _event_id(raw: bytes) -> str:
    try:
        obj = parse_json(raw)
    except msgspec.DecodeError:
        return ""
    return str(obj.get("id", "")) if isinstance(obj, dict) else ""


def write_batch(ch: Inserter, batch: Batch) -> None:
    if batch.accepted:
        ch.insert(ARCHIVE_TABLE, batch.archive)
    if batch.rejected:
        ch.insert(DEADLETTER_TABLE, batch.dead)


async def publish_dead_letters(producer: Any, batch: Batch) -> None:
    futures = [
        await producer.send(DEADLETTER, value=raw, key=key, headers=[("reason", reason.encode()[:4000])])
        for key, raw, reason in batch.dead_records
    ]
    if futures:
        await asyncio.gather(*futures)


def records_from(messages: dict[Any, Sequence[Any]]) -> list[RecordRef]:
    """aiokafka getmany() output -> records in partition order."""
    out: list[RecordRef] = []
    for tp, msgs in messages.items():
        for m in msgs:
            out.append(RecordRef(tp.topic, tp.partition, m.offset, m.key, m.value or b""))
    return out


async def run_archiver(
    ch: ClickHouse,
    contracts: Contracts,
    *,
    group_id: str = "ioc-archiver",
    stop: asyncio.Event | None = None,
    max_records: int = 20_000,
    bootstrap_servers: str | None = None,
    counters: dict[str, int] | None = None,
) -> dict[str, int]:
    """Consume ioc.events into the archive until `stop` is set. Returns the counters (updated live)."""
    from ioccore.kafka import consumer, producer

    stop = stop or asyncio.Event()
    counters = counters if counters is not None else {}
    for name in ("records", "archived", "dead_lettered", "batches"):
        counters.setdefault(name, 0)
    async with (
        producer(bootstrap_servers) as prod,
        consumer(EVENTS, group_id=group_id, bootstrap_servers=bootstrap_servers) as cons,
    ):
        log.info("archiver.started", group_id=group_id)
        last_report = time.monotonic()
        while not stop.is_set():
            messages = await cons.getmany(timeout_ms=500, max_records=max_records)
            records = records_from(messages)
            if not records:
                continue
            batch = build_batch(contracts, records)
            await asyncio.to_thread(write_batch, ch, batch)  # retries inside; raises only when it gave up
            await publish_dead_letters(prod, batch)
            await cons.commit()
            counters["records"] += len(records)
            counters["archived"] += batch.accepted
            counters["dead_lettered"] += batch.rejected
            counters["batches"] += 1
            log.debug(
                "archiver.batch", records=len(records), archived=batch.accepted, dead_lettered=batch.rejected
            )
            if time.monotonic() - last_report >= 30:
                log.info("archiver.progress", **counters)
                last_report = time.monotonic()
    return counters
