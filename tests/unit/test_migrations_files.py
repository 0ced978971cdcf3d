"""The migration files themselves: numbered without gaps, re-runnable, statements split right."""

from pathlib import Path

import pytest

from ioccore.errors import ContractError
from ioccore.migrations import load_migrations, split_statements
from ioccore.settings import get_settings


def test_project_migrations_load():
    migs = load_migrations(get_settings().contracts_dir / "clickhouse")
    assert [m.version for m in migs] == list(range(1, len(migs) + 1))
    assert {"events_archive", "dead_letters"} <= {m.name for m in migs}


def test_split_ignores_comments_and_blank_statements():
    sql = "-- a comment; with a semicolon\nCREATE TABLE IF NOT EXISTS a (x UInt8) ENGINE = Memory;\n\nSELECT 1;\n"
    assert split_statements(sql) == ["CREATE TABLE IF NOT EXISTS a (x UInt8) ENGINE = Memory", "SELECT 1"]


def _dir(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, body in files.items():
        (tmp_path / name).write_text(body)
    return tmp_path


def test_gaps_in_numbering_are_refused(tmp_path):
    d = _dir(tmp_path, {"0001_a.sql": "SELECT 1;", "0003_c.sql": "SELECT 1;"})
    with pytest.raises(ContractError, match="without gaps"):
        load_migrations(d)


def test_create_without_if_not_exists_is_refused(tmp_path):
    d = _dir(tmp_path, {"0001_a.sql": "CREATE TABLE a (x UInt8) ENGINE = Memory;"})
    with pytest.raises(ContractError, match="IF NOT EXISTS"):
        load_migrations(d)


def test_badly_named_file_is_refused(tmp_path):
    d = _dir(tmp_path, {"1_a.sql": "SELECT 1;"})
    with pytest.raises(ContractError, match="NNNN_name.sql"):
        load_migrations(d)
