"""Catalog (fields, indicators) and administrative units."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel

from services.gateway.auth.models import READERS, Role
from services.gateway.auth.permissions import Caller, require
from services.gateway.geo import catalog, unit_tree

router = APIRouter(prefix="/v1", tags=["catalog"])
ANYONE = (*READERS, Role.department_system)


class FieldOut(BaseModel):
    code: str
    name_vi: str
    name_en: str
    group: str


class IndicatorOut(BaseModel):
    id: str
    name_vi: str
    name_en: str
    unit: str
    field: str
    measure: str
    cadences: list[str]
    scopes: list[str]
    direction: str
    target: float | None = None
    target_comparison: str | None = None


class UnitOut(BaseModel):
    code: str
    level: str
    name_vi: str
    short_name: str
    parent: str | None
    district: str | None
    lat: float
    lon: float


def indicator_out(ind) -> IndicatorOut:  # noqa: ANN001
    return IndicatorOut(
        id=ind.id,
        name_vi=ind.name_vi,
        name_en=ind.name_en,
        unit=ind.unit,
        field=ind.field,
        measure=ind.measure,
        cadences=list(ind.cadences),
        scopes=list(ind.scopes),
        direction=ind.direction,
        target=ind.target.value if ind.target else None,
        target_comparison=ind.target.comparison if ind.target else None,
    )


@router.get("/catalog/fields", response_model=list[FieldOut], summary="27 lĩnh vực / the 27 fields")
def fields(caller: Caller = Depends(require(*ANYONE))) -> list[FieldOut]:
    return [
        FieldOut(code=f.code, name_vi=f.name_vi, name_en=f.name_en, group=f.group) for f in catalog().fields
    ]


@router.get("/catalog/indicators", response_model=list[IndicatorOut], summary="Chỉ tiêu / indicators")
def indicators(
    field: str | None = None,
    scope: Literal["commune", "district", "province"] | None = None,
    limit: int = 2000,
    caller: Caller = Depends(require(*ANYONE)),
) -> list[IndicatorOut]:
    out = [
        indicator_out(i)
        for i in catalog().indicators
        if (field is None or i.field == field) and (scope is None or scope in i.scopes)
    ]
    return out[: max(0, limit)]


@router.get("/catalog/indicators/{indicator_id}", response_model=IndicatorOut, responses={404: {}})
def indicator(indicator_id: str, caller: Caller = Depends(require(*ANYONE))) -> IndicatorOut:
    try:
        return indicator_out(catalog().indicator(indicator_id))
    except KeyError:
        raise HTTPException(404, f"Không có chỉ tiêu / unknown indicator {indicator_id}") from None


@router.get(
    "/units",
    response_model=list[UnitOut],
    summary="Đơn vị hành chính trong phạm vi / administrative units in the caller's scope",
)
def units(
    level: Literal["province", "district", "commune"] | None = None,
    parent: str | None = None,
    caller: Caller = Depends(require()),
) -> list[UnitOut]:
    tree = unit_tree()
    return [
        UnitOut(**u.__dict__)
        for u in tree.units.values()
        if u.code in caller.units
        and (level is None or u.level == level)
        and (parent is None or u.parent == parent)
    ]
