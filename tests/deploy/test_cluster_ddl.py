"""Cluster mode of the migrations (prod): each table Replicated on every node with a Distributed table of the
same name over it, sharded by its natural key; the DDL parses on current ClickHouse (chdb)."""

from __future__ import annotations

from ioccore.clickhouse import connect
from ioccore.migrations import LEDGER_DDL, load_migrations, on_cluster
from ioccore.settings import get_settings


def test_every_migration_becomes_replicated_and_distributed_ddl_that_parses(tmp_path):
    ch = connect(f"chdb://{tmp_path / 'chdb'}")
    try:
        statements = [LEDGER_DDL] + [
            s for m in load_migrations(get_settings().contracts_dir / "clickhouse") for s in m.statements()
        ]
        assert len(statements) > 5
        for stmt in statements:
            local, distributed = on_cluster(stmt, "ioc", "ioc")
            name = distributed.split()[5]
            assert local.startswith(f"CREATE TABLE IF NOT EXISTS {name}_local ON CLUSTER ioc ")
            assert "ENGINE = Replicated" in local and "'/clickhouse/ioc/tables/{shard}/ioc/" in local
            assert f"Distributed(ioc, ioc, {name}_local, cityHash64(" in distributed
            for sql in (local, distributed):
                assert ch.execute("EXPLAIN AST " + sql), sql
    finally:
        ch.close()


def test_rows_of_one_flush_stay_on_one_shard_and_values_shard_by_their_key():
    stmts = {
        s.split()[5]: s
        for m in load_migrations(get_settings().contracts_dir / "clickhouse")
        for s in m.statements()
    }
    assert on_cluster(stmts["indicator_partials"], "ioc", "ioc")[1].endswith(
        "cityHash64((version_set, partition)))"
    )
    assert on_cluster(stmts["indicator_values"], "ioc", "ioc")[1].endswith(
        "cityHash64((version_set, indicator, cadence, unit, period)))"
    )
    assert (
        "ReplicatedReplacingMergeTree('/clickhouse/ioc/tables/{shard}/ioc/indicator_values_local', '{replica}', version)"
        in on_cluster(stmts["indicator_values"], "ioc", "ioc")[0]
    )
