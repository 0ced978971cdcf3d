"""Exact quantiles are stored in segments (Quantile.persist, table indicator_segments): a flush writes what it
added to a series, not the series' whole array, and a partition restored from ClickHouse holds exactly the
values of the worker before it, which then goes on alike (ClickHouse 18.16 and current ClickHouse)."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest

from ioccore.archive import RecordRef
from ioccore.contracts import encode_event
from ioccore.settings import REPO_ROOT
from ioccore.topics import EVENTS
from services.indicators.model import CADENCE_RANK
from services.indicators.state import Quantile
from tests.indicators.test_eviction import START, one_partition_processor

pytestmark = pytest.mark.clickhouse

EXAMPLE = json.loads(
    (REPO_ROOT / "contracts/events/data_sharing/examples/exchange.summarized.json").read_text()
)
YEAR = ("data_sharing.latency_p95", CADENCE_RANK["year"], "74", "2026")


def _exchange(i: int, when: dt.datetime, latency: float) -> bytes:
    data = {**EXAMPLE["data"], "avg_latency_ms": latency}
    return encode_event({**EXAMPLE, "id": f"x-{i}", "time": when.isoformat(), "data": data})


def _flushes(proc, first: int, count: int, rng: random.Random) -> int:
    """`count` flushes of 1-4 exchange summaries each, an hour apart; returns the next offset."""
    offset = first
    for _ in range(count):
        when = START + dt.timedelta(hours=offset)
        n = rng.randint(1, 4)
        records = [
            RecordRef(
                EVENTS, 0, offset + i, b"74", _exchange(offset + i, when, round(rng.uniform(50, 900), 1))
            )
            for i in range(n)
        ]
        offset += n
        proc.process(records)
    return offset


def _quantiles(proc) -> dict:
    return {k: st.values.tolist() for k, st in proc.parts[0].series.items() if isinstance(st, Quantile)}


def test_flushes_write_what_they_added_and_a_restart_restores_every_value(clickhouse):
    rng = random.Random(11)
    first = one_partition_processor(clickhouse)
    offset = _flushes(first, 0, 60, rng)
    year = first.parts[0].series[YEAR]
    assert year.count() == offset

    rows = clickhouse.execute(
        "SELECT next_offset, through, length(points) FROM indicator_segments FINAL "
        "WHERE indicator = %(i)s AND cadence = 'year' AND unit = '74' ORDER BY next_offset",
        {"i": YEAR[0]},
    )
    assert len(rows) == 60, "a segment row per flush that changed the series"
    stored_values = sum(n // 4 * 3 // 8 for _, _, n in rows)  # base64 of 8 bytes a value
    whole_each_flush = sum(through for _, through, _ in rows)
    assert rows[-1][1] == offset
    assert stored_values < whole_each_flush / 3, (stored_values, whole_each_flush)
    assert len(year.segments) <= offset.bit_length() + 1

    second = one_partition_processor(clickhouse)  # a restart: the partition restored from ClickHouse
    second.own(0)
    assert _quantiles(second) == _quantiles(first)
    assert second.parts[0].series[YEAR].value() == year.value()

    # Both go on with the same records: the restored one stores and values them as the first does.
    again = _flushes(first, offset, 25, random.Random(5))
    assert _flushes(second, offset, 25, random.Random(5)) == again
    assert _quantiles(second) == _quantiles(first)
    third = one_partition_processor(clickhouse)
    third.own(0)  # restores the closed days the others evicted too
    restored = _quantiles(third)
    assert {k: restored.get(k) for k in _quantiles(first)} == _quantiles(first)
    value = clickhouse.execute(
        "SELECT argMax(value, version) FROM indicator_values WHERE indicator = %(i)s AND cadence = 'year' "
        "AND unit = '74'",
        {"i": YEAR[0]},
    )[0][0]
    assert value == first.parts[0].series[YEAR].value()


def test_a_manifest_naming_a_missing_segment_is_refused_not_read_as_fewer_values(clickhouse):
    first = one_partition_processor(clickhouse)
    _flushes(first, 0, 5, random.Random(3))
    clickhouse.execute("TRUNCATE TABLE indicator_segments")  # synchronous, where a DELETE mutation is not
    second = one_partition_processor(clickhouse)
    with pytest.raises(ValueError, match="indicator_segments"):
        second.own(0)
