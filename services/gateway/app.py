"""The gateway application: REST (/v1, OpenAPI), SSE, health, and the wall and console pages."""

from __future__ import annotations

import contextlib
import gc
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from ioccore.clickhouse import ClickHouse, connect
from ioccore.contracts import Contracts, load_contracts
from ioccore.errors import OperationalError
from ioccore.logging import get_logger
from ioccore.settings import get_settings
from services.gateway import metrics
from services.gateway.alerts.commands import CommandBus
from services.gateway.auth.service import TokenService
from services.gateway.geo import unit_tree
from services.gateway.ingest.limits import RateLimiter
from services.gateway.ingest.service import Dedup
from services.gateway.settings import GatewaySettings, get_gateway_settings
from services.gateway.stream.hub import Hub

log = get_logger("gateway")


@dataclass
class Gateway:
    settings: GatewaySettings
    ch: ClickHouse
    bootstrap: str
    tokens: TokenService
    contracts: Contracts
    limiter: RateLimiter
    dedup: Dedup
    producer: Any = None
    hub: Hub | None = None
    commands: CommandBus | None = None


class MetricsMiddleware:
    """Counts and times requests by route template (pure ASGI: no per-request task overhead)."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            if path != "/v1/stream":
                metrics.LATENCY.labels(path).observe(time.perf_counter() - t0)
            metrics.REQUESTS.labels(scope["method"], path, str(status["code"])).inc()


class HeaderLimit:
    """431 for a request whose header section is over `limit` bytes. uvicorn's httptools parser sets no limit
    of its own, so a 200 kB header would otherwise reach the routes (and the token verifier)."""

    def __init__(self, app: Any, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            size = sum(len(k) + len(v) + 4 for k, v in scope.get("headers", ()))
            if size > self.limit:
                detail = (
                    f"Phần đầu yêu cầu quá lớn / request headers of {size} bytes are over the "
                    f"{self.limit}-byte limit"
                )
                body = json.dumps({"detail": detail}, ensure_ascii=False).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 431,
                        "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def create_app(
    settings: GatewaySettings | None = None, ch: ClickHouse | None = None, bootstrap: str | None = None
) -> FastAPI:
    settings = settings or get_gateway_settings()
    ch = ch or connect()
    bootstrap = bootstrap or get_settings().effective_kafka_bootstrap
    unit_tree()  # load the catalog now, not on the first request
    gw = Gateway(
        settings=settings,
        ch=ch,
        bootstrap=bootstrap,
        tokens=TokenService(settings),
        contracts=load_contracts(),
        limiter=RateLimiter(
            settings.requests_per_s, settings.request_burst, settings.events_per_s, settings.event_burst
        ),
        dedup=Dedup(ch, settings.dedup_memory, settings.dedup_archive),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if settings.kafka:
                from ioccore.kafka import producer

                try:
                    gw.producer = await stack.enter_async_context(
                        producer(bootstrap, client_id="ioc-gateway", linger_ms=0)
                    )
                    hub = Hub(
                        settings.stream_buffer, settings.stream_client_queue, settings.stream_buffer_bytes
                    )
                    await hub.start(bootstrap)
                    stack.push_async_callback(hub.stop)
                    gw.hub = hub
                    commands = CommandBus(gw.producer, bootstrap)
                    await commands.start()
                    stack.push_async_callback(commands.stop)
                    gw.commands = commands
                except (OperationalError, TimeoutError) as exc:
                    log.error("gateway.kafka_unavailable", error=str(exc))
            # The catalog and contracts live as long as the process: keep them out of the collector's passes.
            gc.collect()
            gc.freeze()
            log.info("gateway.ready", kafka=gw.producer is not None)
            yield

    app = FastAPI(
        title="IOC Bình Dương — Gateway",
        version="1.0.0",
        description="Cổng API của Trung tâm IOC / the IOC gateway: ingest CloudEvents, query indicators, alerts "
        "and hotline data, act on alerts, follow the live stream. Bearer JWT; every read, stream and action is "
        "limited to the caller's scope (province, district or commune).",
        lifespan=lifespan,
        openapi_url="/v1/openapi.json",
        docs_url="/v1/docs",
        redoc_url=None,
    )
    app.state.gw = gw
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(HeaderLimit, limit=settings.max_header_bytes)

    from services.gateway.alerts.views import router as alerts
    from services.gateway.catalog.views import router as catalog
    from services.gateway.health.views import router as health
    from services.gateway.hotline.views import router as hotline
    from services.gateway.indicators.views import router as indicators
    from services.gateway.ingest.views import router as ingest
    from services.gateway.pages.views import router as pages
    from services.gateway.stream.views import router as stream
    from services.gateway.timeliness.views import router as timeliness

    for r in (health, ingest, catalog, indicators, alerts, hotline, timeliness, stream, pages):
        app.include_router(r)
    return app
