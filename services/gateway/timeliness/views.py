"""Data timeliness per department system: how soon after the fact its events reach the IOC."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from services.gateway.auth.models import Role
from services.gateway.auth.permissions import Caller, require

router = APIRouter(prefix="/v1", tags=["timeliness"])


class Timeliness(BaseModel):
    source: str
    events: int
    on_time: int
    score: float
    median_lag_s: float
    p95_lag_s: float
    last_received_at: dt.datetime


@router.get("/timeliness", response_model=list[Timeliness])
def timeliness(
    hours: int = Query(24, ge=1, le=24 * 90, description="Window: events received in the last N hours"),
    on_time_s: int = Query(3600, ge=1, le=7 * 86400, description="A lag up to this counts as on time"),
    caller: Caller = Depends(require(Role.province_admin, Role.province_viewer)),
) -> list[Timeliness]:
    """Điểm kịp thời của dữ liệu theo nguồn / share of each source's events received within `on_time_s` of
    their event time (score 0–100), with median and p95 lag. Province roles only (departments are province-wide)."""
    since = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0) - dt.timedelta(hours=hours)
    rows = caller.ch.execute(
        "SELECT source, count() AS events, "
        "sum(toInt64(received_at) - toInt64(time) <= %(on_time)s) AS on_time, "
        "quantileExact(0.5)(toInt64(received_at) - toInt64(time)) AS p50, "
        "quantileExact(0.95)(toInt64(received_at) - toInt64(time)) AS p95, "
        "max(received_at) AS last "
        "FROM events_archive WHERE received_at >= %(since)s GROUP BY source ORDER BY source",
        {"on_time": on_time_s, "since": since},
    )
    return [
        Timeliness(
            source=s,
            events=n,
            on_time=ok,
            score=round(100.0 * ok / n, 1) if n else 0.0,
            median_lag_s=float(p50),
            p95_lag_s=float(p95),
            last_received_at=last,
        )
        for s, n, ok, p50, p95, last in rows
    ]
