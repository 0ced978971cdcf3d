"""`IOC_KAFKA_STORAGE=durable ioc stack up` from a fresh home: the broker keeps its records, topics and committed
offsets on disk across `ioc stack down` / `up` (the broker and its object store both restarted)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from ioccore.kafka import consumer, producer
from ioccore.testing import local_stack_env
from ioccore.topics import EVENTS, load_topics
from tests.integration.test_stack_cli import processes_of

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]
IOC = [sys.executable, "-m", "ioccore.cli"]


def _ioc(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*IOC, *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def durable_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    env.update(local_stack_env(tmp_path / "home"))
    env["IOC_KAFKA_STORAGE"] = "durable"
    yield env
    _ioc(env, "stack", "down")
    assert processes_of(env["IOC_HOME"]) == [], "a test left processes behind"


async def _produce(bootstrap: str, n: int) -> None:
    async with producer(bootstrap) as prod:
        futures = [await prod.send(EVENTS, f"event-{i}".encode(), key=str(i % 9).encode()) for i in range(n)]
        await asyncio.gather(*futures)
    async with consumer(group_id="durable-check", bootstrap_servers=bootstrap) as c:
        from aiokafka.structs import OffsetAndMetadata, TopicPartition

        tp = TopicPartition(EVENTS, 0)
        c.assign([tp])
        await c.commit({tp: OffsetAndMetadata(3, "")})


async def _read(bootstrap: str, n: int) -> tuple[list[str], int | None]:
    from aiokafka.structs import TopicPartition

    async with consumer(group_id="durable-check", bootstrap_servers=bootstrap) as c:
        tps = [TopicPartition(EVENTS, p) for p in range(load_topics()[EVENTS].partitions)]
        c.assign(tps)
        committed = await c.committed(tps[0])
        await c.seek_to_beginning(*tps)
        out: list[str] = []
        for _ in range(60):
            batch = await c.getmany(timeout_ms=500)
            out += [r.value.decode() for recs in batch.values() for r in recs]
            if len(out) >= n and not batch:
                break
    return out, committed


def test_durable_stack_keeps_records_topics_and_offsets_across_down_and_up(durable_env):
    env = durable_env
    r = _ioc(env, "stack", "up")
    assert r.returncode == 0, r.stderr
    assert "durable storage" in r.stdout
    bootstrap = f"127.0.0.1:{env['IOC_KAFKA_PORT']}"
    asyncio.run(_produce(bootstrap, 200))

    r = _ioc(env, "stack", "down")
    assert r.returncode == 0 and "objects" in r.stdout, r.stdout + r.stderr
    assert processes_of(env["IOC_HOME"]) == []

    r = _ioc(env, "stack", "up")
    assert r.returncode == 0, r.stderr
    events, committed = asyncio.run(_read(bootstrap, 200))
    assert sorted(events) == sorted(f"event-{i}" for i in range(200))
    assert committed == 3

    # A running durable broker is not silently reused with other settings.
    r = _ioc({**env, "IOC_KAFKA_STORAGE": "memory"}, "stack", "up")
    assert r.returncode == 2 and "ioc stack down" in r.stderr
