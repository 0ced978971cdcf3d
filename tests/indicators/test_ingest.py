"""A flush that consumes its records (the worker's, ingest(consume=True)) frees each record's bytes once
decoded, and loses nothing by it: the same events archived, the same dead letters with their raw bytes and
reasons (ClickHouse 18.16 and current ClickHouse)."""

from __future__ import annotations

import datetime as dt

import pytest

from ioccore.archive import RecordRef
from ioccore.topics import EVENTS
from tests.indicators.test_eviction import START, _dossier, one_partition_processor

pytestmark = pytest.mark.clickhouse


def test_a_consumed_flush_frees_the_record_bytes_and_keeps_every_event_and_dead_letter(clickhouse):
    proc = one_partition_processor(clickhouse)
    when = START + dt.timedelta(hours=1)
    batch = b"[" + b",".join(_dossier(i, when) for i in range(5)) + b"]"  # valid: the typed fast path
    bad_event = _dossier(5, when).replace(b'"25747"', b'"Thu Dau Mot"')  # a subject that is no unit code
    mixed = b"[" + _dossier(6, when) + b"," + bad_event + b"]"  # the schema path: one taken, one refused
    garbage = b"{not json"
    values = [batch, mixed, garbage]
    records = [RecordRef(EVENTS, 0, i, b"25747", v) for i, v in enumerate(values)]

    flush, changed = proc.ingest(records, consume=True)
    proc.commit(flush, changed)

    assert [r.value for r in records] == [b""] * 3, "each record's bytes are dropped once decoded"
    assert (flush.archived, flush.dead_lettered) == (6, 2)
    archived = clickhouse.execute("SELECT id FROM events_archive FINAL ORDER BY id")
    assert [r[0] for r in archived] == [f"d-{i}" for i in (0, 1, 2, 3, 4, 6)]
    dead = clickhouse.execute("SELECT offset, position, raw, reason FROM dead_letters ORDER BY offset")
    assert [(o, p) for o, p, _, _ in dead] == [(1, 1), (2, 0)]
    assert dead[1][2] == garbage.decode() and "JSON" in dead[1][3]
    assert b"Thu Dau Mot" in dead[0][2].encode() and "subject" in dead[0][3]
