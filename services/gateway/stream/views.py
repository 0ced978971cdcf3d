"""GET /v1/stream: Server-Sent Events of indicator updates, alert events and hotline calls in scope."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from services.gateway.auth.permissions import Caller, require
from services.gateway.geo import unit_tree
from services.gateway.stream.hub import KINDS

router = APIRouter(prefix="/v1", tags=["stream"])


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "SSE: events `indicators`, `alerts`, `calls`",
        },
        403: {},
        503: {},
    },
)
async def stream(
    request: Request,
    kinds: str = Query("indicators,alerts,calls", description="Comma-separated: indicators, alerts, calls"),
    unit: str | None = Query(None, pattern=r"^[0-9]{2,5}$", description="Only this unit and those below it"),
    last_event_id: str | None = Header(None, alias="Last-Event-ID"),
    caller: Caller = Depends(require(allow_query_token=True)),
) -> StreamingResponse:
    """Luồng trực tiếp / live stream. Each message's data is a JSON array of CloudEvents of one subject.
    Resumable with Last-Event-ID (header, or `last_event_id` query); `reset` means: reload via REST.
    Browsers' EventSource may pass the token as `access_token`."""
    gw = request.app.state.gw
    wanted = frozenset(k.strip() for k in kinds.split(",") if k.strip())
    if not wanted or not wanted <= KINDS:
        raise HTTPException(422, f"kinds: a comma-separated subset of {sorted(KINDS)}")
    units = caller.units
    if unit:
        await run_in_threadpool(caller.ensure_unit, unit, "stream")
        units = unit_tree().subtree(unit) & caller.units
    if gw.hub is None:
        raise HTTPException(503, "Chưa kết nối Kafka / the live stream is not available; retry later")
    last_event_id = last_event_id or request.query_params.get("last_event_id")
    client, reset = gw.hub.subscribe(frozenset(units), wanted, last_event_id)
    keepalive = gw.settings.stream_keepalive_s

    async def frames():
        try:
            yield b"retry: 3000\n" + (b"event: reset\ndata: {}\n\n" if reset else b": connected\n\n")
            while not client.dropped:
                try:
                    m = await asyncio.wait_for(client.queue.get(), timeout=keepalive)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield b": keepalive\n\n"
                    continue
                chunk = [m.frame]
                while not client.queue.empty() and len(chunk) < 256:
                    chunk.append(client.queue.get_nowait().frame)
                yield b"".join(chunk)
        finally:
            gw.hub.unsubscribe(client)

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
