"""Gateway fixtures: the app over a fresh migrated database (server and chdb), tokens for every role, and a
live gateway (uvicorn on a free port) for the stream, commands and browser tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from ioccore.stack import free_port
from services.gateway.app import create_app
from services.gateway.auth.models import Principal, Role
from services.gateway.settings import GatewaySettings


def make_settings(tmp_path: Path, **kw) -> GatewaySettings:
    return GatewaySettings(key_dir=tmp_path / "keys", **kw)


class Tokens:
    def __init__(self, app):
        self.tokens = app.state.gw.tokens

    def __call__(self, role: str, **kw) -> str:
        sub = kw.pop("sub", f"{role}-{kw.get('district') or kw.get('commune') or kw.get('source') or 'x'}")
        return self.tokens.issue(Principal(sub=sub, role=Role(role), **kw))

    def headers(self, role: str, **kw) -> dict[str, str]:
        return {"Authorization": f"Bearer {self(role, **kw)}"}


@pytest.fixture
def reads_app(clickhouse, tmp_path):
    """The app without its Kafka parts, over a fresh database (ClickHouse 18.16 and chdb)."""
    app = create_app(make_settings(tmp_path, kafka=False, dedup_archive=True), ch=clickhouse)
    with TestClient(app) as client:
        yield app, client, Tokens(app)


@pytest.fixture
def server_ch(stack_env, tmp_path):
    from ioccore.testing import fresh_clickhouse

    with fresh_clickhouse("server", tmp_path) as ch:
        yield ch


@pytest.fixture
def kafka_app(server_ch, clean_topics, tmp_path):
    """The whole app (producer, stream hub, command results) on the real broker and ClickHouse 18.16."""
    app = create_app(make_settings(tmp_path, command_timeout_s=3.0), ch=server_ch)
    with TestClient(app) as client:
        yield app, client, Tokens(app)


class LiveGateway:
    def __init__(self, app, port: int):
        self.app = app
        self.url = f"http://127.0.0.1:{port}"
        self.tokens = Tokens(app)


@pytest.fixture
def live_gateway(server_ch, clean_topics, tmp_path) -> Iterator[LiveGateway]:
    import uvicorn

    app = create_app(make_settings(tmp_path, command_timeout_s=5.0), ch=server_ch)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the gateway did not start")
        time.sleep(0.05)
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    try:
        yield LiveGateway(app, port)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
