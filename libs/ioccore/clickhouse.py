"""One ClickHouse helper for two engines.

- `clickhouse://user:pass@host:port/db`: a ClickHouse server over the native protocol (clickhouse-driver).
  Locally that is Debian's 18.16; in production a current server.
- `chdb:///path/to/dir` (or `chdb://` for a temporary one): current ClickHouse in-process (chdb-core),
  used by the tests to prove every migration and query on a modern engine as well.

Queries take `%(name)s` parameters (bound by ioccore.sql); inserts are columnar batches.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import random
import re
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote, urlparse

import msgspec

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


class InsertFailed(Exception):
    """An INSERT of OrderedInserts failed for good (after the connection's own retries), or its process died."""


class OrderedInserts:
    """INSERTs run in submission order by a child process with its own connection, while the caller goes on
    computing. The driver's per-value Python work (a third of an indicators flush's CPU) then runs on the
    other core instead of contending for the caller's GIL, and the server parses and writes meanwhile. The
    columns travel to the child as msgpack over a pipe (C-speed both ways; a writer thread does the blocking
    writes, a reader thread takes the child's answers).

    A failed insert (after the connection's own retries) stops the queue: the inserts submitted after it are
    not run, and `wait()` raises the first failure (every later `wait()` too). So a later write never lands
    without an earlier one (a checkpoint without its archive rows, say). The child exits when its input
    closes (`close()`, the object collected, or this process gone, even by kill -9): what it already took
    lands in order, which the sinks' keys make harmless. On chdb (in-process, one session) inserts run at
    once."""

    def __init__(self, ch: ClickHouse):
        self._inline: ClickHouse | None = None if isinstance(ch, NativeClickHouse) else ch
        self._channel: _InsertChannel | None = None
        if self._inline is None:  # started now: its start-up is over by the first flush
            self._channel = _InsertChannel(ch.url, getattr(ch, "ride_out_s", 0.0))
            weakref.finalize(self, self._channel.close)
        self._lock = threading.Lock()
        self._submitted = 0
        self._failure: BaseException | None = None  # inline mode

    def insert(self, table: str, columns: Mapping[str, Sequence[Any]]) -> None:
        """Queue an insert (on chdb: run it now). Failures surface in `wait()`."""
        if self._inline is not None:
            if self._failure is None:
                try:
                    self._inline.insert(table, columns)
                except Exception as exc:
                    self._failure = exc
            return
        frame = _insert_frame(table, columns)
        assert self._channel is not None
        with self._lock:
            self._submitted += 1
            self._channel.send(self._submitted, frame)

    def mark(self) -> int:
        """A mark of the inserts submitted so far, for `wait(mark)` (another thread may go on submitting)."""
        return self._submitted

    def wait(self, mark: int | None = None) -> None:
        """Block until every insert submitted (up to `mark`, when given) is written; raise the first failure
        (of any insert run so far)."""
        if self._inline is not None:
            if self._failure is not None:
                raise self._failure
            return
        if self._channel is not None:
            self._channel.wait(self._submitted if mark is None else mark)

    def close(self) -> None:
        """Let the child finish what it was given, then stop it."""
        if self._channel is not None:
            self._channel.close()


class _InsertChannel:
    """The child process of an OrderedInserts and the two threads that talk to it. Frames both ways are a
    4-byte big-endian length and a body: to the child an 8-byte sequence number and the msgpack of [table,
    names, columns, date columns]; back the msgpack of [sequence number, failure or None]."""

    def __init__(self, url: str, ride_out_s: float):
        import queue
        import subprocess
        import sys

        self._proc = subprocess.Popen(
            [sys.executable, "-c", "from ioccore.clickhouse import serve_inserts; serve_inserts()", url,
             str(ride_out_s)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )  # fmt: skip
        self._outbox: queue.SimpleQueue[tuple[int, bytes] | None] = queue.SimpleQueue()
        self._done = 0
        self._failure: BaseException | None = None
        self._closing = False
        self._cond = threading.Condition()
        threading.Thread(target=self._write, name="ch-inserts-out", daemon=True).start()
        threading.Thread(target=self._read, name="ch-inserts-in", daemon=True).start()

    def send(self, seq: int, frame: bytes) -> None:
        self._outbox.put((seq, frame))

    def _write(self) -> None:
        pipe = self._proc.stdin
        assert pipe is not None
        try:
            while (item := self._outbox.get()) is not None:
                seq, frame = item
                pipe.write((8 + len(frame)).to_bytes(4, "big") + seq.to_bytes(8, "big"))
                pipe.write(frame)
                pipe.flush()
        except OSError as exc:
            self._fail(InsertFailed(f"the insert process stopped taking inserts ({exc})"))
        finally:
            with contextlib.suppress(OSError):
                pipe.close()

    def _read(self) -> None:
        pipe = self._proc.stdout
        assert pipe is not None
        decode = msgspec.msgpack.Decoder(tuple[int, str | None]).decode
        try:
            while len(head := pipe.read(4)) == 4:
                size = int.from_bytes(head, "big")
                body = pipe.read(size)
                if len(body) < size:
                    break  # the child died mid-answer: reported below, like any exit
                seq, failure = decode(body)
                with self._cond:
                    self._done = seq
                    if failure is not None and self._failure is None:
                        self._failure = InsertFailed(failure)
                    self._cond.notify_all()
        except Exception as exc:  # a garbled answer must not leave a waiter hanging
            self._fail(InsertFailed(f"unreadable answer from the insert process ({exc})"))
        code = self._proc.wait()
        if not self._closing:
            self._fail(InsertFailed(f"the insert process exited with code {code}"))

    def _fail(self, exc: BaseException) -> None:
        with self._cond:
            if self._failure is None:
                self._failure = exc
            self._cond.notify_all()

    def wait(self, seq: int) -> None:
        with self._cond:
            while self._done < seq and self._failure is None:
                self._cond.wait()
            if self._failure is not None:
                raise self._failure

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            self._outbox.put(None)
            with contextlib.suppress(Exception):
                self._proc.wait(timeout=600)


_DATE_KINDS = {"date": dt.date.fromisoformat, "datetime": dt.datetime.fromisoformat}


def _plain(o: Any) -> Any:
    """numpy scalars and arrays as Python values; anything else msgpack cannot carry is the caller's bug."""
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"an insert value of type {type(o).__name__} cannot be sent to the insert process")


_frames = msgspec.msgpack.Encoder(enc_hook=_plain)


def _insert_frame(table: str, columns: Mapping[str, Sequence[Any]]) -> bytes:
    """An insert as msgpack. Dates and naive datetimes travel as ISO text and are read back by the child
    (aware datetimes travel as msgpack timestamps; the rest as they are)."""
    names = list(columns)
    data = [v.tolist() if hasattr(v, "tolist") else list(v) for v in columns.values()]
    kinds = []
    for i, col in enumerate(data):
        first = next((x for x in col if x is not None), None)
        if type(first) is dt.date or (isinstance(first, dt.datetime) and first.tzinfo is None):
            kinds.append((i, "date" if type(first) is dt.date else "datetime"))
    return _frames.encode((table, names, data, kinds))


def serve_inserts() -> None:
    """The child of OrderedInserts: run the inserts read from stdin in order, answer each on stdout."""
    import os
    import signal
    import sys

    # Ctrl-C reaches the whole process group: the parent finishes or drops its flush and then closes stdin,
    # which ends this process; stopping here first would fail the parent's last flush.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    url, ride_out_s = sys.argv[1], float(sys.argv[2])
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to the log (stderr), not into the answers
    from ioccore.logging import configure_logging

    configure_logging()  # the retries' warnings as the parent logs them
    inp = sys.stdin.buffer
    parent = os.getppid()
    ch = NativeClickHouse(url, ride_out_s=ride_out_s)
    decode = msgspec.msgpack.Decoder(tuple[str, list[str], list[list[Any]], list[tuple[int, str]]]).decode
    answer = msgspec.msgpack.Encoder().encode
    failure: str | None = None
    try:
        while len(head := inp.read(4)) == 4:
            size = int.from_bytes(head, "big")
            body = inp.read(size)
            if len(body) < size:
                break  # the parent died mid-frame: nothing half-read is inserted
            seq = int.from_bytes(body[:8], "big")
            if failure is None and os.getppid() != parent:
                break  # orphaned (its parent was killed): take nothing more
            if failure is None:
                try:
                    table, names, data, kinds = decode(memoryview(body)[8:])
                    del body
                    for i, kind in kinds:
                        parse = _DATE_KINDS[kind]
                        data[i] = [None if x is None else parse(x) for x in data[i]]
                    ch.insert(table, dict(zip(names, data, strict=True)))
                    del data  # before the next frame is read: one insert's columns in memory at a time
                except Exception as exc:
                    failure = f"{type(exc).__name__}: {exc}"
            reply = answer((seq, failure))
            answers.write(len(reply).to_bytes(4, "big") + reply)
            answers.flush()
    except BrokenPipeError:
        pass
    finally:
        ch.close()
