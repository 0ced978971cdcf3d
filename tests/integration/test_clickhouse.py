"""Migrations and the ClickHouse helper on ClickHouse 18.16 (server) and current ClickHouse (chdb)."""

import datetime as dt
import subprocess
import sys
import time

import pytest

from ioccore.errors import ContractError
from ioccore.migrations import load_migrations, migrate
from ioccore.settings import get_settings

pytestmark = pytest.mark.clickhouse
MIGRATIONS = get_settings().contracts_dir / "clickhouse"


def _columns(ch, table):
    return [(name, typ) for name, typ, *_ in ch.execute(f"DESCRIBE TABLE {table}")]


def test_every_migration_applied_and_recorded(clickhouse):
    recorded = clickhouse.execute("SELECT version, name FROM schema_migrations FINAL ORDER BY version")
    assert recorded == [(m.version, m.name) for m in load_migrations(MIGRATIONS)]
    assert ("id", "String") in _columns(clickhouse, "events_archive")
    assert ("raw", "String") in _columns(clickhouse, "dead_letters")


def test_migrate_twice_applies_nothing_and_changes_nothing(clickhouse):
    before = {t: _columns(clickhouse, t) for t in ("events_archive", "dead_letters")}
    assert migrate(clickhouse, MIGRATIONS) == []
    assert {t: _columns(clickhouse, t) for t in before} == before
    assert clickhouse.execute("SELECT count() FROM schema_migrations FINAL")[0][0] == len(
        load_migrations(MIGRATIONS)
    )


def test_a_changed_applied_migration_is_refused(clickhouse, tmp_path):
    for m in load_migrations(MIGRATIONS):
        body = m.sql + ("\n-- edited after it was applied\n" if m.version == 1 else "")
        (tmp_path / m.path.name).write_text(body)
    with pytest.raises(ContractError, match="changed after it was applied"):
        migrate(clickhouse, tmp_path)


def test_a_new_migration_is_applied_once(clickhouse, tmp_path):
    migs = load_migrations(MIGRATIONS)
    for m in migs:
        (tmp_path / m.path.name).write_text(m.sql)
    nxt = len(migs) + 1
    (tmp_path / f"{nxt:04d}_probe.sql").write_text(
        "CREATE TABLE IF NOT EXISTS probe (x UInt8) ENGINE = MergeTree ORDER BY x;\n"
    )
    assert [m.version for m in migrate(clickhouse, tmp_path)] == [nxt]
    assert migrate(clickhouse, tmp_path) == []


def test_insert_and_read_back_tricky_values(clickhouse):
    t = dt.datetime(2026, 1, 5, 1, 15, 0, tzinfo=dt.UTC)
    texts = ["Thủ Dầu Một", "it's", "back\\slash", "new\nline", "'; DROP TABLE events_archive; --"]
    n = len(texts)
    clickhouse.insert(
        "events_archive",
        {
            "source": ["/s"] * n,
            "id": [f"e{i}" for i in range(n)],
            "type": ["vn.binhduong.x.y"] * n,
            "subject": texts,
            "time": [t] * n,
            "time_ms": [7] * n,
            "received_at": [t] * n,
            "topic": ["ioc.events"] * n,
            "partition": [0] * n,
            "offset": [2**40 + i for i in range(n)],
            "data": ["{}"] * n,
        },
    )
    rows = clickhouse.execute("SELECT subject, time, offset FROM events_archive ORDER BY id")
    assert [r[0] for r in rows] == texts
    assert {r[1] for r in rows} == {t.replace(tzinfo=None)}
    assert rows[0][2] == 2**40
    for text in texts:
        found = clickhouse.execute("SELECT count() FROM events_archive WHERE subject = %(s)s", {"s": text})
        assert found == [(1,)]


def test_raw_bytes_survive_in_dead_letters(clickhouse):
    raw = bytes(range(256))
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    clickhouse.insert(
        "dead_letters",
        {
            "received_at": [now],
            "topic": ["ioc.events"],
            "partition": [0],
            "offset": [1],
            "position": [0],
            "key": [""],
            "raw": [raw],
            "reason": ["not JSON"],
            "source": [""],
            "type": [""],
        },
    )
    assert clickhouse.execute("SELECT hex(raw) FROM dead_letters") == [(raw.hex().upper(),)]


def _archive_rows(ids, data):
    n = len(ids)
    t = dt.datetime(2026, 1, 5, 1, 15, 0, tzinfo=dt.UTC)
    return {
        "source": ["/s"] * n,
        "id": list(ids),
        "type": ["vn.binhduong.x.y"] * n,
        "subject": ["74"] * n,
        "time": [t] * n,
        "time_ms": [0] * n,
        "received_at": [t] * n,
        "topic": ["ioc.events"] * n,
        "partition": [0] * n,
        "offset": list(range(n)),
        "data": list(data),
    }


def test_ordered_inserts_land_in_order_and_nothing_after_a_failure(clickhouse):
    """The indicators worker writes archive rows, then checkpoints, then values, in the background: a write
    that fails must keep every later one out (a checkpoint never lands without the rows before it)."""
    from ioccore.clickhouse import OrderedInserts

    inserts = OrderedInserts(clickhouse)
    try:
        # UTF-8 bytes (as the worker passes JSON) and str land as the same text
        inserts.insert(
            "events_archive", _archive_rows(["a1", "a2"], [b'{"t\xc3\xaan":"M\xe1\xbb\x99t"}', "{}"])
        )
        inserts.insert("no_such_table", {"x": [1]})
        inserts.insert("events_archive", _archive_rows(["after"], ["{}"]))
        with pytest.raises(Exception, match="no_such_table"):
            inserts.wait()
        inserts.insert("events_archive", _archive_rows(["later"], ["{}"]))
        with pytest.raises(Exception, match="no_such_table"):  # and it stays failed
            inserts.wait()
    finally:
        inserts.close()
    rows = clickhouse.execute("SELECT id, data FROM events_archive ORDER BY id")
    assert rows == [("a1", '{"tên":"Một"}'), ("a2", "{}")]


@pytest.mark.parametrize("clickhouse", ["server"], indirect=True)  # chdb inserts in-process: no child
def test_ordered_inserts_fail_when_their_process_dies_and_it_dies_with_its_parent(clickhouse, tmp_path):
    """The inserts run in a child process: a worker waiting on it must not hang if it dies, and it must not
    outlive a worker killed with kill -9."""
    from ioccore.clickhouse import InsertFailed, OrderedInserts

    inserts = OrderedInserts(clickhouse)
    inserts.insert("events_archive", _archive_rows(["b1"], ["{}"]))
    inserts.wait()
    inserts._channel._proc.kill()
    inserts.insert("events_archive", _archive_rows(["b2"], ["{}"]))
    with pytest.raises(InsertFailed, match="insert process"):
        inserts.wait()
    assert clickhouse.execute("SELECT id FROM events_archive")[0] == ("b1",)

    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, time\n"
        "from ioccore.clickhouse import OrderedInserts, connect\n"
        "inserts = OrderedInserts(connect(sys.argv[1]))\n"
        "inserts.insert('no_such_table', {'x': [1]})\n"
        "print(inserts._channel._proc.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, str(script), clickhouse.url], stdout=subprocess.PIPE, text=True
    )
    try:
        child = int(parent.stdout.readline())
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _alive(child):
            time.sleep(0.05)
        assert not _alive(child), "the insert process outlived its parent"
    finally:
        parent.kill()


@pytest.mark.parametrize("clickhouse", ["server"], indirect=True)  # chdb inserts in-process: no child
def test_ordered_inserts_outlast_a_ctrl_c_to_the_process_group(clickhouse):
    """Ctrl-C in a terminal reaches the worker and its insert process alike: the worker stops on its own terms,
    so the insert process must not quit first and fail the flush being written."""
    import os
    import signal

    from ioccore.clickhouse import OrderedInserts

    inserts = OrderedInserts(clickhouse)
    try:
        inserts.insert("events_archive", _archive_rows(["c1"], ["{}"]))
        inserts.wait()
        os.kill(inserts._channel._proc.pid, signal.SIGINT)
        time.sleep(0.5)
        inserts.insert("events_archive", _archive_rows(["c2"], ["{}"]))
        inserts.wait()
        assert sorted(r[0] for r in clickhouse.execute("SELECT id FROM events_archive")) == ["c1", "c2"]
    finally:
        inserts.close()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
