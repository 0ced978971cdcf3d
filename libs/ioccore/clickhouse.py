"""One ClickHouse helper for two engines.

- `clickhouse://user:pass@host:port/db`: a ClickHouse server over the native protocol (clickhouse-driver).
  Locally that is Debian's 18.16; in production a current server.
- `chdb:///path/to/dir` (or `chdb://` for a temporary one): current ClickHouse in-process (chdb-core),
  used by the tests to prove every migration and query on a modern engine as well.

Queries take `%(name)s` parameters (bound by ioccore.sql); inserts are columnar batches.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote, urlparse

from ioccore.errors import OperationalError
from ioccore.logging import get_logger
from ioccore.sql import identifier, literal, render

log = get_logger("ioccore.clickhouse")
T = TypeVar("T")

Rows = list[tuple]


class ClickHouse(Protocol):
    url: str
    database: str

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> Rows: ...
    def execute_with_columns(
        self, sql: str, params: Mapping[str, Any] | None = None
    ) -> tuple[list[str], Rows]: ...
    def insert(self, table: str, columns: Mapping[str, Sequence[Any]]) -> int: ...
    def version(self) -> str: ...
    def ensure_database(self) -> None: ...
    def close(self) -> None: ...


class Inserter(Protocol):
    """What writes columnar batches: a ClickHouse, or OrderedInserts in front of one."""

    def insert(self, table: str, columns: Mapping[str, Sequence[Any]]) -> Any: ...


def with_retries(
    fn: Callable[[], T],
    *,
    what: str,
    retryable: tuple[type[BaseException], ...],
    attempts: int = 5,
    base_delay_s: float = 0.2,
    max_delay_s: float = 5.0,
    ride_out_s: float = 0.0,
) -> T:
    """Call fn, retrying transient failures with exponential backoff and jitter: `attempts` times, or, when
    `ride_out_s` > 0, for as long as that many seconds have not passed since the first failure (an outage
    of the server is waited out instead of failing the caller)."""
    first_failure: float | None = None
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except retryable as exc:
            now = time.monotonic()
            first_failure = first_failure if first_failure is not None else now
            if (ride_out_s <= 0 and attempt >= attempts) or (
                ride_out_s > 0 and now - first_failure >= ride_out_s
            ):
                raise
            delay = min(max_delay_s, base_delay_s * 2 ** min(attempt - 1, 16)) * (0.5 + random.random())
            log.warning(
                "clickhouse.retry", what=what, attempt=attempt, delay_s=round(delay, 2), error=str(exc)
            )
            time.sleep(delay)


class NativeClickHouse:
    """ClickHouse server over the native protocol."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout_s: float = 5.0,
        send_receive_timeout_s: float = 300.0,
        ride_out_s: float = 0.0,
    ):
        from clickhouse_driver import Client, errors

        parsed = urlparse(url)
        self.url = url
        self.database = (parsed.path or "/default").lstrip("/") or "default"
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 9000
        self._client_kwargs = dict(
            host=self.host,
            port=self.port,
            user=unquote(parsed.username or "default"),
            password=unquote(parsed.password or ""),
            connect_timeout=connect_timeout_s,
            send_receive_timeout=send_receive_timeout_s,
            settings={"strings_encoding": "utf-8"},
        )
        self._client = Client(database=self.database, **self._client_kwargs)
        self._lock = threading.Lock()
        self.ride_out_s = ride_out_s
        self._retryable = (errors.NetworkError, errors.SocketTimeoutError, EOFError, ConnectionError, OSError)

    def _run(self, what: str, fn: Callable[[], T]) -> T:
        def attempt() -> T:
            with self._lock:
                return fn()

        try:
            return with_retries(attempt, what=what, retryable=self._retryable, ride_out_s=self.ride_out_s)
        except self._retryable as exc:
            raise OperationalError(
                "clickhouse",
                f"cannot reach the server at {self.host}:{self.port} ({exc})",
                "start it with `ioc stack up`, or point IOC_CLICKHOUSE_URL at a running server",
            ) from exc

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> Rows:
        query = render(sql, params)
        return self._run("execute", lambda: self._client.execute(query))

    def execute_with_columns(
        self, sql: str, params: Mapping[str, Any] | None = None
    ) -> tuple[list[str], Rows]:
        """The rows and the result's column names (for checks of queries written elsewhere, e.g. boards)."""
        query = render(sql, params)
        rows, types = self._run("execute", lambda: self._client.execute(query, with_column_types=True))
        return [name for name, _ in types], rows

    def insert(self, table: str, columns: Mapping[str, Sequence[Any]]) -> int:
        names = [identifier(c) for c in columns]
        data = [list(v) for v in columns.values()]
        if not data or not data[0]:
            return 0
        sql = f"INSERT INTO {identifier(table)} ({', '.join(names)}) VALUES"
        self._run("insert", lambda: self._client.execute(sql, data, columnar=True, types_check=False))
        return len(data[0])

    def version(self) -> str:
        return str(self.execute("SELECT version()")[0][0])

    def ensure_database(self) -> None:
        from clickhouse_driver import Client

        def create() -> None:
            client = Client(database="default", **self._client_kwargs)
            try:
                client.execute(f"CREATE DATABASE IF NOT EXISTS {identifier(self.database)}")
            finally:
                client.disconnect()

        self._run("create database", create)

    def close(self) -> None:
        self._client.disconnect()


_CHDB_TYPE = re.compile(r"^(Nullable|LowCardinality)\((.*)\)$")


def _chdb_value(type_name: str, value: Any) -> Any:
    m = _CHDB_TYPE.match(type_name)
    if m:
        return None if value is None else _chdb_value(m.group(2), value)
    if value is None:
        return None
    if type_name.startswith(("UInt", "Int")) and isinstance(value, str):
        return int(value)
    if type_name.startswith("DateTime") and isinstance(value, str):
        # chdb sessions run in UTC (set below): naive UTC datetimes, as clickhouse-driver returns.
        return dt.datetime.fromisoformat(value.split(".")[0]) if "(" not in type_name else value
    if type_name == "Date" and isinstance(value, str):
        return dt.date.fromisoformat(value)
    if type_name.startswith("Array(") and isinstance(value, list):
        inner = type_name[6:-1]
        return [_chdb_value(inner, v) for v in value]
    return value


class ChdbClickHouse:
    """Current ClickHouse in-process (chdb-core). One session per directory."""

    def __init__(self, url: str):
        from chdb import session

        parsed = urlparse(url)
        path = unquote(parsed.path) if parsed.path not in ("", "/") else tempfile.mkdtemp(prefix="ioc-chdb-")
        self.url = url
        self.path = path
        self.database = "ioc"
        self._session = session.Session(path)
        self._lock = threading.Lock()
        # Session settings persist: UTC like the local server, 64-bit integers as JSON numbers.
        self._session.query("SET session_timezone = 'UTC'")
        self._session.query("SET output_format_json_quote_64bit_integers = 0")
        self.ensure_database()

    def _query(self, sql: str, fmt: str = "JSONCompact") -> Any:
        with self._lock:
            return self._session.query(sql, fmt)

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> Rows:
        res = self._query(render(sql, params))
        text = res.bytes().decode("utf-8") if hasattr(res, "bytes") else str(res)
        if not text.strip():
            return []
        payload = json.loads(text)
        types = [m["type"] for m in payload.get("meta", [])]
        return [tuple(_chdb_value(t, v) for t, v in zip(types, row, strict=True)) for row in payload["data"]]

    def execute_with_columns(
        self, sql: str, params: Mapping[str, Any] | None = None
    ) -> tuple[list[str], Rows]:
        res = self._query(render(sql, params))
        text = res.bytes().decode("utf-8") if hasattr(res, "bytes") else str(res)
        if not text.strip():
            return [], []
        payload = json.loads(text)
        meta = payload.get("meta", [])
        types = [m["type"] for m in meta]
        rows = [tuple(_chdb_value(t, v) for t, v in zip(types, row, strict=True)) for row in payload["data"]]
        return [m["name"] for m in meta], rows

    def insert(self, table: str, columns: Mapping[str, Sequence[Any]]) -> int:
        names = [identifier(c) for c in columns]
        rows = list(zip(*columns.values(), strict=True))
        if not rows:
            return 0
        step = 5000
        for start in range(0, len(rows), step):
            values = ",".join(
                "(" + ",".join(literal(v) for v in row) + ")" for row in rows[start : start + step]
            )
            # Values bound by literal(), names checked by identifier(): the one binding path.
            self._query(f"INSERT INTO {identifier(table)} ({', '.join(names)}) VALUES {values}", "CSV")  # noqa: S608
        return len(rows)

    def version(self) -> str:
        return str(self.execute("SELECT version()")[0][0])

    def ensure_database(self) -> None:
        self._query(f"CREATE DATABASE IF NOT EXISTS {identifier(self.database)}", "CSV")
        self._query(f"USE {identifier(self.database)}", "CSV")

    def close(self) -> None:
        self._session.close()


def connect(url: str | None = None, *, ride_out_s: float = 0.0) -> ClickHouse:
    """A ClickHouse client for the configured (or given) URL.

    ride_out_s > 0 (stream workers: `Settings.worker_clickhouse_ride_out_s`): each statement is retried through a
    server outage of up to that long, so a worker waits for ClickHouse instead of stopping. Safe because every
    table that receives stream output is keyed so that writing a row twice changes nothing (DESIGN.md).
    Commands and the gateway keep the default: a few quick retries, then a clear error."""
    if url is None:
        from ioccore.settings import get_settings

        url = get_settings().effective_clickhouse_url
    scheme = urlparse(url).scheme
    if scheme == "clickhouse":
        return NativeClickHouse(url, ride_out_s=ride_out_s)
    if scheme == "chdb":
        return ChdbClickHouse(url)
    raise OperationalError(
        "clickhouse", f"unsupported URL scheme in {url!r}", "use clickhouse://host:9000/db"
    )


def probe(url: str, timeout_s: float = 2.0) -> str:
    """One quick attempt: the server's version, or OperationalError saying what is wrong."""
    scheme = urlparse(url).scheme
    if scheme == "chdb":
        return connect(url).version()
    from clickhouse_driver import Client, errors

    parsed = urlparse(url)
    client = Client(
        host=parsed.hostname or "127.0.0.1",
        port=parsed.port or 9000,
        user=unquote(parsed.username or "default"),
        password=unquote(parsed.password or ""),
        database="default",
        connect_timeout=timeout_s,
        send_receive_timeout=timeout_s * 2,
    )
    try:
        return str(client.execute("SELECT version()")[0][0])
    except (errors.Error, OSError, EOFError) as exc:
        raise OperationalError(
            "clickhouse",
            f"no ClickHouse answers at {parsed.hostname}:{parsed.port or 9000} ({type(exc).__name__}: {exc})",
            "start it with `ioc stack up`, or point IOC_CLICKHOUSE_URL at a running server",
        ) from exc
    finally:
        client.disconnect()


class OrderedInserts:
    """INSERTs run in submission order on a second connection, in a background thread, while the caller goes
    on computing (the server parses and writes on the other core; the driver waits without the GIL).

    A failed insert (after the connection's own retries) stops the queue: the inserts submitted after it are
    not run, and `wait()` raises the first failure (every later `wait()` too). So a later write never lands
    without an earlier one (a checkpoint without its archive rows, say). On chdb (in-process, one session)
    inserts run at once."""

    def __init__(self, ch: ClickHouse):
        from concurrent.futures import ThreadPoolExecutor

        self._inline = not isinstance(ch, NativeClickHouse)
        self._ch: ClickHouse = ch if self._inline else NativeClickHouse(ch.url, ride_out_s=ch.ride_out_s)
        self._pool = None if self._inline else ThreadPoolExecutor(1, thread_name_prefix="ch-inserts")
        # One thread runs the inserts in submission order: when the last submitted is done, all are.
        self._last: Any = None
        self._failure: BaseException | None = None

    def insert(self, table: str, columns: Mapping[str, Sequence[Any]]) -> None:
        """Queue an insert (on chdb: run it now). Failures surface in `wait()`."""
        if self._pool is None:
            self._run(table, columns)
        else:
            self._last = self._pool.submit(self._run, table, columns)

    def _run(self, table: str, columns: Mapping[str, Sequence[Any]]) -> None:
        if self._failure is not None:
            return  # an earlier insert failed: run nothing after it
        try:
            self._ch.insert(table, columns)
        except Exception as exc:
            self._failure = exc

    def mark(self) -> Any:
        """A mark of the inserts submitted so far, for `wait(mark)` (another thread may go on submitting)."""
        return self._last

    def wait(self, mark: Any = None) -> None:
        """Block until every insert submitted (before `mark`, when given) is written; raise the first failure
        (of any insert run so far)."""
        last = self._last if mark is None else mark
        if last is not None:
            last.exception()
        if self._failure is not None:
            raise self._failure

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if not self._inline:
            self._ch.close()
