"""Fixtures: one real local stack (Tansu + ClickHouse 18.16) per test session, on free ports.

Tests marked `kafka` or `clickhouse` use it; pure unit tests need neither. Each test gets clean
topics (`clean_topics`) and a fresh, migrated database on the server or in chdb (`clickhouse`).
IOC_KAFKA_BOOTSTRAP / IOC_CLICKHOUSE_URL point the tests at real servers instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ioccore.settings import get_settings
from ioccore.testing import fresh_clickhouse, private_stack, recreate_topics

NEEDS_STACK = {"kafka", "clickhouse"}


@pytest.fixture(scope="session")
def stack_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Start the session's stack; yields the IOC_* environment that points at it."""
    with private_stack(tmp_path_factory.mktemp("ioc-home")) as env:
        yield env


@pytest.fixture(autouse=True)
def _stack_for_marked(request: pytest.FixtureRequest) -> None:
    if NEEDS_STACK & {m.name for m in request.node.iter_markers()}:
        request.getfixturevalue("stack_env")


@pytest.fixture
def clean_topics(stack_env: dict[str, str]) -> None:
    recreate_topics()


@pytest.fixture(params=["server", "chdb"])
def clickhouse(request: pytest.FixtureRequest, tmp_path: Path, stack_env: dict[str, str]):
    """A fresh migrated database: ClickHouse 18.16 (`server`) and current ClickHouse (`chdb`)."""
    with fresh_clickhouse(request.param, tmp_path) as ch:
        yield ch


@pytest.fixture
def contracts_dir() -> Path:
    return get_settings().contracts_dir
