"""Kafka plumbing: topic provisioning (kafka-python admin), the aiokafka producer and consumer.

Client settings that matter against the local Tansu broker (group join speed) live here, once;
ioccore.streams derives the Faust settings from the same values.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterable
from typing import Any

from ioccore.errors import OperationalError
from ioccore.logging import get_logger
from ioccore.settings import get_settings
from ioccore.topics import Topic, load_topics

log = get_logger("ioccore.kafka")

# Consumer-group timing, the one place it is set (ioccore.streams derives Faust's from it).
# Tansu holds every JoinGroup until half the group's session timeout has passed (and a follower's
# SyncGroup up to 0.8x), so the session timeout *is* the join time: Faust's default 60 s means a
# 30 s join; 6 s means ~3 s, with heartbeats every second (< session/3). Shorter than ~4 s risks
# evictions on a GC or CPU stall of this 2-core machine. The first member to create a group fixes
# its timeout for the broker's lifetime, so every member of a group must use these values.
GROUP_TIMING: dict[str, int] = {
    "session_timeout_ms": 6_000,
    "heartbeat_interval_ms": 1_000,
}


def bootstrap() -> str:
    return get_settings().effective_kafka_bootstrap


def _split(bootstrap_servers: str) -> tuple[str, int]:
    host, _, port = bootstrap_servers.split(",")[0].rpartition(":")
    return host or "127.0.0.1", int(port)


def reachable(bootstrap_servers: str, timeout_s: float = 2.0) -> bool:
    host, port = _split(bootstrap_servers)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _admin(bootstrap_servers: str, timeout_s: float):
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    # kafka-python retries a refused bootstrap for 30 s; a refused TCP connect is answer enough.
    if not reachable(bootstrap_servers, min(timeout_s, 3.0)):
        raise OperationalError(
            "kafka",
            f"no broker answers at {bootstrap_servers} (connection refused or timed out)",
            "start it with `ioc stack up`, or point IOC_KAFKA_BOOTSTRAP at a running broker",
        )
    try:
        return KafkaAdminClient(
            bootstrap_servers=bootstrap_servers,
            client_id="ioc-admin",
            request_timeout_ms=int(timeout_s * 1000),
        )
    except (KafkaError, OSError, ValueError) as exc:
        raise OperationalError(
            "kafka",
            f"no broker answers at {bootstrap_servers} ({exc})",
            "start it with `ioc stack up`, or point IOC_KAFKA_BOOTSTRAP at a running broker",
        ) from exc


def existing_topics(bootstrap_servers: str, timeout_s: float = 10.0) -> dict[str, int]:
    """Topic name -> partition count, as the broker sees it."""
    admin = _admin(bootstrap_servers, timeout_s)
    try:
        described = admin.describe_topics()
        # kafka-python 3 names the topic "name", older releases "topic".
        return {
            t.get("name") or t["topic"]: len(t.get("partitions") or [])
            for t in described
            if not t.get("error_code")
        }
    except (OSError, ValueError) as exc:
        raise OperationalError(
            "kafka", f"the broker at {bootstrap_servers} did not list its topics ({exc})"
        ) from exc
    finally:
        admin.close()


def ensure_topics(
    bootstrap_servers: str | None = None, topics: Iterable[Topic] | None = None, timeout_s: float = 10.0
) -> list[str]:
    """Create the topics of topics.yaml that the broker lacks. Returns the names created."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    bootstrap_servers = bootstrap_servers or bootstrap()
    wanted = list(topics if topics is not None else load_topics().values())
    have = existing_topics(bootstrap_servers, timeout_s)
    missing = [t for t in wanted if t.name not in have]
    for t in wanted:
        if t.name in have and have[t.name] < t.partitions:
            log.warning(
                "kafka.topic_has_fewer_partitions", topic=t.name, have=have[t.name], want=t.partitions
            )
    if not missing:
        return []
    admin = _admin(bootstrap_servers, timeout_s)
    try:
        new = [
            NewTopic(
                name=t.name,
                num_partitions=t.partitions,
                replication_factor=1,
                topic_configs=t.kafka_configs(),
            )
            for t in missing
        ]
        try:
            admin.create_topics(new, timeout_ms=int(timeout_s * 1000))
        except TopicAlreadyExistsError:
            pass
    finally:
        admin.close()
    log.info("kafka.topics_created", topics=[t.name for t in missing])
    return [t.name for t in missing]


@contextlib.asynccontextmanager
async def producer(bootstrap_servers: str | None = None, **overrides: Any) -> AsyncIterator[Any]:
    """An aiokafka producer that confirms a send only once the broker has the record (acks=all)."""
    from aiokafka import AIOKafkaProducer

    kwargs: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers or bootstrap(),
        "acks": "all",
        "linger_ms": 5,
        "max_request_size": 8 * 1024 * 1024,
        "request_timeout_ms": 30_000,
        "retry_backoff_ms": 100,
        "client_id": "ioc",
    }
    kwargs.update(overrides)
    prod = AIOKafkaProducer(**kwargs)
    try:
        await prod.start()
    except Exception as exc:
        await prod.stop()
        raise OperationalError(
            "kafka",
            f"cannot connect a producer to {kwargs['bootstrap_servers']} ({exc})",
            "is the broker up?",
        ) from exc
    try:
        yield prod
    finally:
        await prod.stop()


@contextlib.asynccontextmanager
async def consumer(
    *topics: str, group_id: str, bootstrap_servers: str | None = None, **overrides: Any
) -> AsyncIterator[Any]:
    """An aiokafka group consumer. Offsets are committed by the caller, after its write succeeded."""
    from aiokafka import AIOKafkaConsumer

    kwargs: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers or bootstrap(),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_partition_fetch_bytes": 8 * 1024 * 1024,
        "fetch_max_bytes": 32 * 1024 * 1024,
        "client_id": group_id,
        **GROUP_TIMING,
    }
    kwargs.update(overrides)
    cons = AIOKafkaConsumer(*topics, **kwargs)
    try:
        await cons.start()
    except Exception as exc:
        await cons.stop()
        raise OperationalError(
            "kafka",
            f"cannot connect a consumer to {kwargs['bootstrap_servers']} ({exc})",
            "is the broker up?",
        ) from exc
    try:
        yield cons
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(cons.stop(), timeout=10)


async def end_offsets(topic: str, bootstrap_servers: str | None = None) -> dict[int, int]:
    """Partition -> the offset the next record of `topic` will get (its record count on a fresh topic)."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    c = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers or bootstrap())
    await c.start()
    try:
        await c.topics()
        parts = c.partitions_for_topic(topic) or set()
        ends = await c.end_offsets([TopicPartition(topic, p) for p in parts])
        return {tp.partition: off for tp, off in ends.items()}
    finally:
        await c.stop()


def delete_topics(
    names: Iterable[str], bootstrap_servers: str | None = None, timeout_s: float = 10.0
) -> None:
    """Delete topics (tests clean the broker with this; never used on a production path)."""
    bootstrap_servers = bootstrap_servers or bootstrap()
    present = set(existing_topics(bootstrap_servers, timeout_s))
    names = [n for n in names if n in present]
    if not names:
        return
    admin = _admin(bootstrap_servers, timeout_s)
    try:
        admin.delete_topics(names, timeout_ms=int(timeout_s * 1000))
    finally:
        admin.close()


def committed_offsets(
    group_id: str, bootstrap_servers: str | None = None, timeout_s: float = 10.0
) -> dict[tuple[str, int], int]:
    """(topic, partition) -> the offset a consumer group committed (empty for an unknown group)."""
    admin = _admin(bootstrap_servers or bootstrap(), timeout_s)
    try:
        done = admin.list_group_offsets(group_id)
    finally:
        admin.close()
    offsets = done.get(group_id, done) if isinstance(done, dict) else {}
    return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


GAP_RETRY_S = 5.0  # how long a gap is fetched again before it is taken as records truly gone
GAP_OUTAGE_S = 120.0  # how long fetching a gap rides out an unreachable broker before it fails


class OffsetGaps:
    """Finds the records a consumer skipped and fetches them from the broker.

    A partition's offsets are consecutive; a consumer handed offset N+k when it expected N was moved past
    N..N+k-1. Tansu 0.6 (the local broker) does this to records that are on the topic: a produce takes its
    offsets before it stores its batch, and a fetch in between returns another producer's later batch, so the
    consumer moves past the batch still being stored (measured here: 1-2 records of 12,000 sent by 4 concurrent
    producers; 2 events of 270,002 in a 30-minute soak). Kafka leaves a gap only where records are gone
    (compaction, transaction markers, retention): those are looked for for `retry_s`, then let go with a
    warning.

    `check(records)` takes records in their arrival order (any topics and partitions) and returns them with the
    skipped ones put back in place. The first record of a partition is checked against the group's committed
    offset (the log start for a new group). Offsets below the expected one (a re-delivery after a rebalance)
    are no gap, nor are offsets the group committed meanwhile (done by another owner of the partition). A broker
    that cannot be reached is asked again every second for `outage_s`; then the error is raised."""

    def __init__(
        self,
        group_id: str | None,
        *,
        bootstrap_servers: str | None = None,
        retry_s: float = GAP_RETRY_S,
        outage_s: float = GAP_OUTAGE_S,
    ):
        self.group_id = group_id
        self.bootstrap_servers = bootstrap_servers
        self.retry_s = retry_s
        self.outage_s = outage_s
        self.expected: dict[tuple[str, int], int] = {}
        self.filled = 0  # records put back, since the start
        self.lost = 0  # offsets the broker no longer has
        self._stack = contextlib.AsyncExitStack()
        self._cons: Any = None

    async def close(self) -> None:
        await self._stack.aclose()
        self._cons = None

    async def check(self, records: list[Any]) -> list[Any]:
        expected = self.expected
        suspects: list[tuple[int, tuple[str, int], int | None]] = []
        for i, r in enumerate(records):
            key = (r.topic, r.partition)
            exp = expected.get(key)
            if exp != r.offset and (exp is not None or r.offset):  # nothing comes before offset 0
                suspects.append((i, key, exp))
            expected[key] = r.offset + 1
        if not suspects:
            return records
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.outage_s
        while True:
            try:
                return await self._fill(records, suspects)
            except Exception as exc:  # the broker unreachable a moment: the records are needed, ask again
                if loop.time() >= deadline:
                    raise
                log.warning("kafka.gap_fetch_failed", error=str(exc), hint="asking the broker again in 1 s")
                await self.close()
                await asyncio.sleep(1.0)

    async def _fill(
        self, records: list[Any], suspects: list[tuple[int, tuple[str, int], int | None]]
    ) -> list[Any]:
        committed: dict[tuple[str, int], int] | None = None
        out = list(records)
        for i, key, exp in reversed(suspects):  # from the end: earlier indices stay valid
            offset = records[i].offset
            if exp is not None and offset < exp:
                continue  # re-delivered: the consumer was moved back
            if committed is None:
                committed = await self._committed()
            # Below the group's committed offset a record was done (by this worker or the partition's previous
            # owner, if it moved meanwhile): not a gap.
            start = max(exp or 0, committed.get(key, 0))
            if exp is None and key not in committed:
                start = await self._log_start(*key)
            if start >= offset:
                continue
            out[i:i] = await self.fetch(key[0], key[1], start, offset)
        return out

    async def _committed(self) -> dict[tuple[str, int], int]:
        if self.group_id is None:
            return {}
        return await asyncio.to_thread(committed_offsets, self.group_id, self.bootstrap_servers)

    async def _consumer(self) -> Any:
        if self._cons is None:
            self._cons = await self._stack.enter_async_context(
                consumer(group_id=None, bootstrap_servers=self.bootstrap_servers, client_id="ioc-gaps")
            )
        return self._cons

    async def _log_start(self, topic: str, partition: int) -> int:
        from aiokafka.structs import TopicPartition

        cons = await self._consumer()
        tp = TopicPartition(topic, partition)
        return (await cons.beginning_offsets([tp]))[tp]

    async def fetch(self, topic: str, partition: int, start: int, end: int) -> list[Any]:
        """The records of offsets start..end-1 the broker has, in order (RecordRef)."""
        from aiokafka.structs import TopicPartition

        from ioccore.archive import RecordRef

        cons = await self._consumer()
        tp = TopicPartition(topic, partition)
        cons.assign([tp])
        got: dict[int, RecordRef] = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_s
        while True:
            log_start = (await cons.beginning_offsets([tp]))[tp]
            first = max(start, log_start)  # below the log start: gone (retention)
            cons.seek(tp, first)
            while await cons.position(tp) < end:
                batch = await cons.getmany(tp, timeout_ms=200, max_records=10_000)
                if not batch:
                    break
                for m in batch.get(tp, ()):
                    if first <= m.offset < end:
                        got[m.offset] = RecordRef(m.topic, m.partition, m.offset, m.key, m.value)
            if len(got) == end - first or loop.time() >= deadline:
                break
            await asyncio.sleep(0.05)  # a batch still being stored
        missing = end - start - len(got)
        self.filled += len(got)
        self.lost += missing
        log.warning(
            "kafka.gap_filled" if not missing else "kafka.gap_unfilled",
            topic=topic,
            partition=partition,
            offsets=f"{start}..{end - 1}",
            filled=len(got),
            missing=missing,
            **({"hint": "records the broker no longer has (compaction, retention)"} if missing else {}),
        )
        return [got[o] for o in sorted(got)]
