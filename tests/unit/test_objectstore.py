"""The local S3-compatible store behind the durable broker: the conditional writes, reads and listings Tansu's
object_store client relies on (HTTP end to end with Tansu: tests/faults/test_broker_restart.py)."""

from __future__ import annotations

from ioccore.objectstore import TMP_PREFIX, S3App, Store, etag_of


def _app(tmp_path) -> S3App:
    return S3App(Store(tmp_path / "objects"))


def test_create_only_put_refuses_an_existing_key(tmp_path):
    app = _app(tmp_path)
    status, headers, _ = app.handle("PUT", "/tansu/a/b.json", {}, {"if-none-match": "*"}, b"one")
    assert (status, headers["etag"]) == (200, etag_of(b"one"))
    status, _, body = app.handle("PUT", "/tansu/a/b.json", {}, {"if-none-match": "*"}, b"two")
    assert status == 412 and b"PreconditionFailed" in body
    assert app.handle("GET", "/tansu/a/b.json", {}, {}, b"")[2] == b"one"


def test_compare_and_swap_put_needs_the_current_etag(tmp_path):
    app = _app(tmp_path)
    assert app.handle("PUT", "/tansu/meta.json", {}, {"if-match": etag_of(b"x")}, b"v1")[0] == 404
    etag = app.handle("PUT", "/tansu/meta.json", {}, {}, b"v1")[1]["etag"]
    assert app.handle("PUT", "/tansu/meta.json", {}, {"if-match": etag_of(b"other")}, b"v2")[0] == 412
    status, headers, _ = app.handle("PUT", "/tansu/meta.json", {}, {"if-match": etag}, b"v2")
    assert (status, headers["etag"]) == (200, etag_of(b"v2"))
    # A cached copy is answered 304 while it is current, the object once it changed.
    assert app.handle("GET", "/tansu/meta.json", {}, {"if-none-match": etag_of(b"v2")}, b"")[0] == 304
    assert app.handle("GET", "/tansu/meta.json", {}, {"if-none-match": etag}, b"")[:3:2] == (200, b"v2")


def test_listing_by_prefix_and_delimiter_in_key_order(tmp_path):
    app = _app(tmp_path)
    for key in (
        "t/p0/records/00000000000000000002.batch",
        "t/p0/records/00000000000000000000.batch",
        "t/p1/w",
    ):
        app.handle("PUT", f"/tansu/{key}", {}, {}, b"x")
    (tmp_path / "objects/tansu/t/p0/records" / f"{TMP_PREFIX}half-written").write_bytes(b"")
    body = app.handle("GET", "/tansu", {"list-type": ["2"], "prefix": ["t/p0/records/"]}, {}, b"")[2].decode()
    assert body.index("00000000000000000000.batch") < body.index("00000000000000000002.batch")
    assert "p1" not in body and TMP_PREFIX not in body
    body = app.handle("GET", "/tansu", {"prefix": ["t/"], "delimiter": ["/"]}, {}, b"")[2].decode()
    assert "<Prefix>t/p0/</Prefix>" in body and "<Prefix>t/p1/</Prefix>" in body and "<Contents>" not in body


def test_writes_survive_a_restart_of_the_store_and_keys_stay_in_their_bucket(tmp_path):
    _app(tmp_path).handle("PUT", "/tansu/k", {}, {}, b"kept")
    again = _app(tmp_path)
    assert again.handle("GET", "/tansu/k", {}, {}, b"")[2] == b"kept"
    assert again.handle("PUT", "/tansu/../escape", {}, {}, b"x")[0] == 400
    assert again.handle("DELETE", "/tansu/k", {}, {}, b"")[0] == 204
    assert again.handle("GET", "/tansu/k", {}, {}, b"")[0] == 404
