"""`ioc simulate --out kafka`: JSON-array records on ioc.events (by subject) and ioc.hotline.calls (by call id)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ioccore.cli import app
from ioccore.kafka import consumer
from ioccore.topics import EVENTS as EVENTS_TOPIC
from ioccore.topics import HOTLINE_CALLS as HOTLINE_TOPIC


async def _count(topic: str, expected: int, timeout_s: float = 60.0) -> tuple[int, int]:
    records = events = 0
    async with consumer(topic, group_id=f"sim-test-{topic}") as cons:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while records < expected and asyncio.get_running_loop().time() < deadline:
            batch = await cons.getmany(timeout_ms=1000)
            for msgs in batch.values():
                for m in msgs:
                    records += 1
                    events += len(json.loads(m.value))
    return records, events


@pytest.mark.kafka
@pytest.mark.timeout(120)
def test_simulation_reaches_kafka(clean_topics: None, tmp_path: Path) -> None:
    stats = tmp_path / "stats.json"
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            "--start",
            "2026-03-28",
            "--days",
            "1",
            "--seed",
            "5",
            "--out",
            "kafka",
            "--stats",
            str(stats),
            "--no-progress",
        ],  # fmt: skip
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(stats.read_text())
    by_topic = figures["records_by_topic"]
    hot_records, hot_events = asyncio.run(_count(HOTLINE_TOPIC, by_topic[HOTLINE_TOPIC]))
    ev_records, ev_events = asyncio.run(_count(EVENTS_TOPIC, by_topic[EVENTS_TOPIC]))
    assert (hot_records, ev_records) == (by_topic[HOTLINE_TOPIC], by_topic[EVENTS_TOPIC])
    assert hot_events + ev_events == figures["events"]
    calls = sum(v for k, v in figures["by_type"].items() if k.startswith("vn.binhduong.hotline."))
    assert hot_events == calls
