"""POST /v1/events: one CloudEvent (structured mode) or a batch (application/cloudevents-batch+json)."""

from __future__ import annotations

import math

import msgspec
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ioccore.contracts import parse_json
from services.gateway import metrics
from services.gateway.auth.models import Role
from services.gateway.auth.permissions import Caller, require
from services.gateway.ingest import service
from services.gateway.ingest.models import IngestAccepted, IngestRejected

router = APIRouter(prefix="/v1", tags=["ingest"])

SINGLE = ("application/cloudevents+json", "application/json")
BATCH = "application/cloudevents-batch+json"


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    too_big = HTTPException(
        413, f"Yêu cầu quá lớn / request body over the {limit}-byte limit; split the batch"
    )
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/events",
    status_code=202,
    response_model=IngestAccepted,
    summary="Gửi sự kiện / ingest CloudEvents",
    description="One event in structured mode (`application/cloudevents+json`) or a batch "
    "(`application/cloudevents-batch+json`, a JSON array). Each is validated against its contract. "
    "All or nothing: when any event is invalid (422) or not the credential's own (403), none is taken and "
    "each rejected event is named with the reason. Re-sending an event id is harmless (listed as duplicate).",
    responses={
        400: {"description": "Not JSON"},
        403: {"model": IngestRejected},
        413: {"description": "Request too large"},
        415: {"description": "Unsupported content type or content encoding"},
        422: {"model": IngestRejected},
        429: {"description": "Rate limit; see Retry-After"},
        503: {"description": "Broker unavailable"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/cloudevents+json": {"schema": {"type": "object"}},
                "application/cloudevents-batch+json": {
                    "schema": {"type": "array", "items": {"type": "object"}}
                },
            },
        }
    },
)
async def ingest(
    request: Request, caller: Caller = Depends(require(Role.department_system, Role.province_admin))
):
    gw = request.app.state.gw
    s = gw.settings
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in (*SINGLE, BATCH):
        raise HTTPException(415, f"Dùng {SINGLE[0]} hoặc {BATCH} / use {SINGLE[0]} or {BATCH}")
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding != "identity":  # none is supported: a compressed body would be read as garbage
        raise HTTPException(
            415, f"Không hỗ trợ Content-Encoding {encoding!r} / send the body uncompressed (identity)"
        )
    body = await _body(request, s.max_request_bytes)
    try:
        doc = parse_json(body)
    except msgspec.DecodeError as exc:
        raise HTTPException(400, f"Không phải JSON / not valid JSON: {exc}") from exc
    if ctype == BATCH:
        if not isinstance(doc, list):
            raise HTTPException(400, "Lô phải là mảng JSON / a batch is a JSON array of events")
        events = doc
    else:
        if isinstance(doc, list):
            raise HTTPException(400, f"Một mảng sự kiện cần {BATCH} / an array of events needs {BATCH}")
        events = [doc]
    if len(events) > s.max_batch_events:
        raise HTTPException(
            413, f"Tối đa {s.max_batch_events} sự kiện mỗi lô / at most {s.max_batch_events} events"
        )
    wait = gw.limiter.check(caller.principal.sub, len(events))
    if wait:
        metrics.INGEST_LIMITED.inc()
        retry = 60 if math.isinf(wait) else max(1, math.ceil(wait))
        raise HTTPException(
            429,
            f"Vượt giới hạn tốc độ / rate limit for {caller.principal.sub}; retry after {retry} s",
            headers={"Retry-After": str(retry)},
        )
    ok, invalid, forbidden = service.validate(body, events, caller.principal, gw.contracts)
    if invalid or forbidden:
        metrics.INGEST_EVENTS.labels("rejected").inc(len(invalid) + len(forbidden))
        if forbidden:
            await run_in_threadpool(
                caller.deny_quietly,
                "ingest",
                "; ".join(f"#{r.position} {r.id}: {r.reason}" for r in forbidden[:20]),
            )
        status = 403 if forbidden and not invalid else 422
        rejected = sorted(invalid + forbidden, key=lambda r: r.position)
        return JSONResponse(
            status_code=status,
            content=IngestRejected(
                detail=f"{len(rejected)} sự kiện bị từ chối, không nhận sự kiện nào / {len(rejected)} of "
                f"{len(events)} events rejected; none taken",
                rejected=rejected,
            ).model_dump(),
        )
    if gw.producer is None:
        raise HTTPException(503, "Chưa kết nối Kafka / the broker is not reachable; retry later")
    if gw.settings.dedup_archive:
        fresh, dups = await run_in_threadpool(gw.dedup.split, ok)
    else:
        fresh, dups = gw.dedup.split(ok)
    if fresh:
        try:
            await service.publish(gw.producer, fresh)
        except Exception as exc:  # the broker refused or timed out: nothing acknowledged
            raise HTTPException(
                503, f"Kafka không nhận / the broker did not take the events ({exc})"
            ) from exc
        gw.dedup.remember(fresh)
    metrics.INGEST_EVENTS.labels("accepted").inc(len(fresh))
    metrics.INGEST_EVENTS.labels("duplicate").inc(len(dups))
    return JSONResponse(
        status_code=202,
        content={"accepted": [e["id"] for e in ok], "duplicates": [e["id"] for e in dups]},
    )
