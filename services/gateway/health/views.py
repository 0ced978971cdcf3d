"""/healthz (the process answers), /readyz (broker and ClickHouse reachable), /metrics (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ioccore.kafka import reachable

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Tiến trình đang chạy / liveness")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Kafka và ClickHouse trả lời / readiness", responses={503: {}})
async def readyz(request: Request) -> JSONResponse:
    gw = request.app.state.gw

    def clickhouse_ok() -> tuple[bool, str]:
        try:
            gw.ch.execute("SELECT 1")
            return True, ""
        except Exception as exc:
            return False, str(exc)

    ch_ok, ch_err = await run_in_threadpool(clickhouse_ok)
    kafka_ok = (
        await run_in_threadpool(reachable, gw.bootstrap, 1.0) if gw.settings.kafka else False
    ) and gw.producer is not None
    body = {
        "clickhouse": {"ok": ch_ok, **({"error": ch_err} if ch_err else {})},
        "kafka": {"ok": kafka_ok, "bootstrap": gw.bootstrap},
    }
    return JSONResponse(status_code=200 if ch_ok and kafka_ok else 503, content=body)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def prometheus_metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
