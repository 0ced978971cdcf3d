"""Indicator series, latest values, rankings, and the wall's tiles."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel

from services.gateway.auth.permissions import Caller, require
from services.gateway.geo import PROVINCE, catalog, unit_tree
from services.gateway.indicators import service

router = APIRouter(prefix="/v1", tags=["indicators"])
Cadence = Literal["day", "week", "month", "quarter", "year"]


class Point(BaseModel):
    period: str
    period_start: dt.date
    value: float
    n: int
    version: int
    updated_at: dt.datetime


class Series(BaseModel):
    indicator: str
    unit: str
    cadence: str
    points: list[Point]


class Latest(BaseModel):
    indicator: str
    field: str
    unit: str
    cadence: str
    period: str
    period_start: dt.date
    value: float
    n: int
    updated_at: dt.datetime


class Ranked(BaseModel):
    unit: str
    name_vi: str
    value: float
    n: int


class Ranking(BaseModel):
    indicator: str
    cadence: str
    level: str
    period: str | None
    order: str
    units: list[Ranked]


def _indicator(indicator: str):  # noqa: ANN202
    try:
        return catalog().indicator(indicator)
    except KeyError:
        raise HTTPException(404, f"Không có chỉ tiêu / unknown indicator {indicator}") from None


@router.get("/indicators/{indicator}/series", response_model=Series, responses={403: {}, 404: {}})
def get_series(
    indicator: str,
    unit: str = Query(..., pattern=r"^[0-9]{2,5}$"),
    cadence: Cadence = "day",
    since: dt.date | None = None,
    until: dt.date | None = None,
    limit: int = Query(400, ge=1, le=5000),
    caller: Caller = Depends(require()),
) -> Series:
    """Chuỗi giá trị / a series of one indicator for one unit and cadence, oldest first."""
    _indicator(indicator)
    caller.ensure_unit(unit, "read indicators", indicator)
    points = service.series(caller.ch, indicator, unit, cadence, since, until, limit)
    return Series(indicator=indicator, unit=unit, cadence=cadence, points=[Point(**p) for p in points])


@router.get("/indicators/latest", response_model=list[Latest], responses={403: {}, 404: {}})
def get_latest(
    indicator: list[str] | None = Query(None),
    field: str | None = None,
    unit: str | None = Query(None, pattern=r"^[0-9]{2,5}$"),
    cadence: Cadence | None = None,
    subtree: bool = Query(False, description="Include every unit below `unit`"),
    limit: int = Query(2000, ge=1, le=20000),
    caller: Caller = Depends(require()),
) -> list[Latest]:
    """Giá trị mới nhất / the latest value per indicator, unit and cadence within the caller's scope."""
    for i in indicator or []:
        _indicator(i)
    if unit and not subtree:
        caller.ensure_unit(unit, "read indicators")
        units = [unit]
    else:
        units = caller.units_filter(unit, "read indicators")
    rows = service.latest(caller.ch, units, indicators=indicator, field=field, cadence=cadence, limit=limit)
    return [Latest(**r) for r in rows]


@router.get("/indicators/{indicator}/ranking", response_model=Ranking, responses={403: {}, 404: {}})
def get_ranking(
    indicator: str,
    cadence: Cadence = "day",
    level: Literal["district", "commune"] = "district",
    period: str | None = Query(None, max_length=16),
    order: Literal["top", "bottom"] = "top",
    within: str | None = Query(
        None, pattern=r"^[0-9]{2,5}$", description="Rank only the units under this one"
    ),
    limit: int = Query(10, ge=1, le=100),
    caller: Caller = Depends(require()),
) -> Ranking:
    """Đơn vị dẫn đầu / cuối bảng / top or bottom units for an indicator."""
    _indicator(indicator)
    units = caller.units_filter(within, "read indicators")
    tree = unit_tree()
    units = [u for u in units if tree.units[u].level == level]
    period, rows = service.ranking(caller.ch, indicator, cadence, level, units, period, order, limit)
    return Ranking(
        indicator=indicator,
        cadence=cadence,
        level=level,
        period=period,
        order=order,
        units=[Ranked(name_vi=tree.units[r["unit"]].name_vi, **r) for r in rows],
    )


class Tile(BaseModel):
    field: str
    name_vi: str
    name_en: str
    indicator: str | None
    indicator_name_vi: str | None = None
    indicator_name_en: str | None = None
    unit_of_measure: str | None = None
    cadence: str | None = None
    period: str | None = None
    value: float | None = None
    trend: list[float] = []
    target: float | None = None
    direction: str | None = None
    status: str = "neutral"


@router.get("/wall/tiles", response_model=list[Tile], responses={403: {}})
def wall_tiles(
    unit: str = Query(PROVINCE, pattern=r"^[0-9]{2,5}$"), caller: Caller = Depends(require())
) -> list[Tile]:
    """27 ô lĩnh vực / the wall's 27 field tiles for a unit: key indicator, latest value, trend, status."""
    caller.ensure_unit(unit, "read indicators")
    level = unit_tree().units[unit].level
    return [Tile(**t) for t in service.tiles(caller.ch, unit, level)]
