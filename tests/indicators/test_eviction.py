"""A worker that runs for months keeps only the series that can still change in memory (ClickHouse 18.16 and
current ClickHouse): periods that ended before every partition's lateness window leave memory, their values
stay as they were, and an event for them is dead-lettered as too late."""

from __future__ import annotations

import datetime as dt

import pytest

from ioccore.archive import RecordRef
from ioccore.catalog import load_catalog
from ioccore.contracts import encode_event
from ioccore.topics import EVENTS
from services.indicators import store
from services.indicators.engine import Engine
from services.indicators.model import CADENCE_RANK, boundaries, compile_model
from services.indicators.processor import Processor

pytestmark = pytest.mark.clickhouse
VN = dt.timezone(dt.timedelta(hours=7))
START = dt.datetime(2026, 3, 2, 9, tzinfo=VN)  # a Monday


def _dossier(i: int, when: dt.datetime) -> bytes:
    return encode_event(
        {
            "specversion": "1.0",
            "id": f"d-{i}",
            "source": "/so-tttt/mot-cua",
            "type": "vn.binhduong.admin_procedures.dossier.received",
            "time": when.isoformat(),
            "subject": "25747",
            "datacontenttype": "application/json",
            "data": {
                "dossier_id": f"D{i}",
                "procedure_code": "1.001234",
                "procedure_group": "dat-dai",
                "level": "commune",
                "channel": "counter",
                "due_at": (when + dt.timedelta(days=3)).isoformat(),
            },
        }
    )


def one_partition_processor(clickhouse) -> Processor:
    """A new processor of partition 0 of ioc.events, under the active version set (units@2024)."""
    catalog = load_catalog()
    model = compile_model(catalog)
    version = store.ensure_active_version(clickhouse, "2024", model.catalog_hash)["version_set"]
    return Processor(
        clickhouse, catalog.contracts, Engine(model, boundaries(catalog, "2024")), version, 1, EVENTS
    )


def test_closed_periods_leave_memory_and_keep_their_values(clickhouse):
    proc = one_partition_processor(clickhouse)
    version = proc.version_set
    day_key = ("admin_procedures.dossiers_received", CADENCE_RANK["day"], "74", "2026-03-02")
    month_key = ("admin_procedures.dossiers_received", CADENCE_RANK["month"], "74", "2026-03")
    offset = 0
    sizes = []
    for day in range(30):  # three dossiers a day for 30 days, one flush a day
        when = START + dt.timedelta(days=day)
        records = [RecordRef(EVENTS, 0, offset + i, b"25747", _dossier(offset + i, when)) for i in range(3)]
        offset += 3
        proc.process(records)
        sizes.append(len(proc.engine.series_of(proc.parts[0])))
        if day == 0:
            assert day_key in proc.engine.series_of(proc.parts[0])
    values = store.read_values(clickhouse, version)
    assert day_key not in proc.engine.series_of(proc.parts[0]), "the first day closed 3 weeks ago"
    assert values[day_key[0], "day", "74", "2026-03-02"] == 3.0  # still in ClickHouse
    assert values[month_key[0], "month", "74", "2026-03"] == 90.0  # the month is open: kept and complete
    assert month_key in proc.engine.series_of(proc.parts[0])
    per_day = sizes[1] - sizes[0]  # the series a new day opens
    assert max(sizes[10:]) <= sizes[9] + per_day, f"memory should stop growing once days close: {sizes}"
    # an event for the evicted day is too late: dead-lettered, and the day keeps its value
    flush = proc.process([RecordRef(EVENTS, 0, offset, b"25747", _dossier(offset, START))])
    assert flush.dead_lettered == 1
    assert store.read_values(clickhouse, version)[day_key[0], "day", "74", "2026-03-02"] == 3.0


def test_series_restored_after_a_restart_leave_memory_when_their_periods_close(clickhouse):
    """A worker restarted from its checkpoints holds series of any age: after a gap in the traffic, the first
    events weeks later still close (and drop) them, though every new event is recent."""
    day_key = ("admin_procedures.dossiers_received", CADENCE_RANK["day"], "74", "2026-03-02")
    first = one_partition_processor(clickhouse)
    for day in range(3):
        when = START + dt.timedelta(days=day)
        first.process(
            [RecordRef(EVENTS, 0, day * 3 + i, b"25747", _dossier(day * 3 + i, when)) for i in range(3)]
        )
    restarted = one_partition_processor(clickhouse)
    restarted.own(0)
    assert day_key in restarted.engine.series_of(restarted.parts[0])  # restored from the checkpoint
    when = START + dt.timedelta(days=30)
    restarted.process([RecordRef(EVENTS, 0, 9 + i, b"25747", _dossier(9 + i, when)) for i in range(3)])
    assert day_key not in restarted.engine.series_of(restarted.parts[0])
    assert store.read_values(clickhouse, first.version_set)[day_key[0], "day", "74", "2026-03-02"] == 3.0
