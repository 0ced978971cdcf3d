"""Helpers for tests against the real broker and ClickHouse (used by tests/conftest.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse, urlunparse

from ioccore.clickhouse import ClickHouse, connect
from ioccore.kafka import delete_topics, ensure_topics
from ioccore.migrations import migrate
from ioccore.settings import REPO_ROOT, get_settings
from ioccore.stack import free_port
from ioccore.topics import load_topics


def local_stack_env(home: Path) -> dict[str, str]:
    """Environment for a private local stack on free ports (real servers from IOC_* are kept)."""
    env = {"IOC_HOME": str(home)}
    if not os.environ.get("IOC_KAFKA_BOOTSTRAP"):
        env["IOC_KAFKA_PORT"] = str(free_port())
        env["IOC_OBJECTS_PORT"] = str(free_port())
    if not os.environ.get("IOC_CLICKHOUSE_URL"):
        env["IOC_CLICKHOUSE_TCP_PORT"] = str(free_port())
        env["IOC_CLICKHOUSE_HTTP_PORT"] = str(free_port())
    return env


def with_database(url: str, database: str) -> str:
    parsed = urlparse(url)
    return urlunparse(parsed._replace(path="/" + database))


@contextmanager
def fresh_clickhouse(engine: str, tmp_dir: Path) -> Iterator[ClickHouse]:
    """A migrated, empty database on the server (`server`) or in chdb (`chdb`), dropped afterwards."""
    settings = get_settings()
    if engine == "server":
        name = f"test_{uuid.uuid4().hex[:12]}"
        ch = connect(with_database(settings.effective_clickhouse_url, name))
    elif engine == "chdb":
        ch = connect(f"chdb://{tmp_dir / 'chdb'}")
    else:
        raise ValueError(engine)
    migrate(ch, settings.contracts_dir / "clickhouse")
    try:
        yield ch
    finally:
        if engine == "server":
            ch.execute(f"DROP DATABASE IF EXISTS {ch.database}")
        ch.close()


def recreate_topics() -> None:
    """Empty the broker's IOC topics: delete and create them again from topics.yaml."""
    topics = load_topics()
    delete_topics(list(topics))
    for _ in range(50):
        try:
            ensure_topics(topics=topics.values())
            return
        except Exception:  # a topic still being deleted
            asyncio.run(asyncio.sleep(0.1))
    ensure_topics(topics=topics.values())


@contextmanager
def private_stack(home: Path, *, start: bool = True) -> Iterator[dict[str, str]]:
    """A local stack on free ports under `home` for the duration (tests, benchmarks); stopped after."""
    from ioccore import stack

    env = local_stack_env(home)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        if start:
            stack.up()
        yield env
    finally:
        stack.down()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()


def spawn_ioc(args: list[str], log_path: Path, **env: str) -> subprocess.Popen:
    """`ioc <args>` as a child process (a worker under test), its output appended to `log_path`."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "ioccore.cli", *args],
            cwd=REPO_ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def stop_processes(procs: list[subprocess.Popen], timeout_s: float = 20) -> None:
    """SIGTERM every process still running, then wait; kill what does not stop in time."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
