from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from services.gateway.auth.permissions import Caller, require
from services.gateway.geo import PROVINCE, catalog
from services.gateway.hotline import service

router = APIRouter(prefix="/v1/hotline", tags=["hotline"])


class Kpi(BaseModel):
    indicator: str
    name_vi: str
    name_en: str
    field: str
    unit: str
    period: str
    period_start: dt.date
    value: float
    n: int


@router.get("/calls/live", response_model=list[dict[str, Any]], responses={403: {}})
def live_calls(
    unit: str | None = Query(None, pattern=r"^[0-9]{2,5}$"),
    limit: int = Query(100, ge=1, le=1000),
    caller: Caller = Depends(require()),
) -> list[dict[str, Any]]:
    """Cuộc gọi đang xử lý / live 1022 and 115 calls in scope (caller numbers masked)."""
    units = caller.units_filter(unit, "read hotline")
    return service.live_calls(caller.ch, units, limit)


@router.get("/kpis", response_model=list[Kpi], responses={403: {}})
def kpis(
    unit: str | None = Query(None, pattern=r"^[0-9]{2,5}$"), caller: Caller = Depends(require())
) -> list[Kpi]:
    """Chỉ số tổng đài hôm nay / hotline KPIs (the day's values of the hotline indicators)."""
    if unit is None:
        unit = PROVINCE if caller.is_province else caller.principal.scope_unit or PROVINCE
    caller.ensure_unit(unit, "read hotline")
    names = {i.id: i for i in catalog().indicators}
    out = []
    for r in service.kpis(caller.ch, unit):
        ind = names.get(r["indicator"])
        out.append(
            Kpi(
                indicator=r["indicator"],
                name_vi=ind.name_vi if ind else r["indicator"],
                name_en=ind.name_en if ind else r["indicator"],
                field=r["field"],
                unit=r["unit"],
                period=r["period"],
                period_start=r["period_start"],
                value=r["value"],
                n=r["n"],
            )
        )
    return out
