"""The spine end to end: produce events, consume them as a group, archive them, read them back.

Redelivery of the same events leaves one row each; bad records land in the dead letters (table and
topic) with the reason and the original bytes. On ClickHouse 18.16 and on current ClickHouse.
"""

import asyncio
import copy
import json

import pytest

from ioccore.archive import run_archiver
from ioccore.contracts import load_contracts
from ioccore.kafka import consumer, producer
from ioccore.topics import DEADLETTER, EVENTS

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def _events(n: int) -> list[dict]:
    contracts = load_contracts()
    base = next(e for p, e in contracts.examples() if p.name == "dossier.received.json")
    out = []
    for i in range(n):
        e = copy.deepcopy(base)
        e["id"] = f"smoke-{i}"
        e["subject"] = ["25747", "25750", "718", "74"][i % 4]
        e["data"]["dossier_id"] = f"D-{i}"
        out.append(e)
    return out


BAD = [b"{not json", json.dumps({"specversion": "1.0", "id": "x"}).encode()]


async def _produce(records: list[bytes]) -> None:
    async with producer() as prod:
        futures = [await prod.send(EVENTS, value=r, key=b"k") for r in records]
        await asyncio.gather(*futures)


async def _archive_until(ch, expected_records: int, group_id: str) -> dict:
    """Run the archiver until it has committed `expected_records` Kafka records."""
    stop = asyncio.Event()
    counters: dict[str, int] = {}
    task = asyncio.create_task(
        run_archiver(ch, load_contracts(), group_id=group_id, stop=stop, counters=counters)
    )
    for _ in range(600):
        await asyncio.sleep(0.05)
        if counters.get("records", 0) >= expected_records or task.done():
            break
    stop.set()
    return await task


def test_events_are_archived_once_and_bad_records_dead_lettered(clickhouse, clean_topics):
    events = _events(200)
    # 150 single-event records, then the remaining 50 as one batch record, then two bad records.
    records = [json.dumps(e).encode() for e in events[:150]] + [json.dumps(events[150:]).encode()] + BAD

    async def scenario() -> None:
        await _produce(records)
        counters = await _archive_until(clickhouse, 151 + len(BAD), "smoke-1")
        assert counters["archived"] == 200
        assert counters["dead_lettered"] == len(BAD)

        # The same events again, as a redelivery would bring them: still one row each.
        await _produce([json.dumps(e).encode() for e in events])
        counters = await _archive_until(clickhouse, 200, "smoke-1")
        assert counters["archived"] == 200

        # The dead-letter topic holds the original bytes with the reason in a header.
        async with consumer(DEADLETTER, group_id="smoke-dlq") as cons:
            got = []
            for _ in range(50):
                batch = await cons.getmany(timeout_ms=200)
                got += [m for msgs in batch.values() for m in msgs]
                if len(got) >= len(BAD):
                    break
        assert sorted(m.value for m in got) == sorted(BAD)
        assert all(dict(m.headers)["reason"] for m in got)

    asyncio.run(scenario())

    ids = clickhouse.execute("SELECT id FROM events_archive FINAL ORDER BY id")
    assert sorted(i for (i,) in ids) == sorted(e["id"] for e in events)
    by_subject = dict(
        clickhouse.execute("SELECT subject, count() FROM events_archive FINAL GROUP BY subject")
    )
    assert by_subject == {"25747": 50, "25750": 50, "718": 50, "74": 50}
    row = clickhouse.execute(
        "SELECT type, data, time FROM events_archive FINAL WHERE id = %(id)s", {"id": "smoke-7"}
    )[0]
    assert row[0] == "vn.binhduong.admin_procedures.dossier.received"
    assert json.loads(row[1])["dossier_id"] == "D-7"
    assert row[2].isoformat() == "2026-01-05T01:15:00"  # 08:15 +07:00 stored as UTC
    dead = clickhouse.execute("SELECT hex(raw), reason FROM dead_letters FINAL ORDER BY offset")
    assert [bytes.fromhex(h) for h, _ in dead] == BAD
    assert "not valid UTF-8 JSON" in dead[0][1]
    assert "lacks required" in dead[1][1]
