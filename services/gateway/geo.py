"""The unit hierarchy (contracts/geo, boundary set 2024) and what a scope covers."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ioccore.catalog import Catalog, load_catalog

PROVINCE = "74"


@dataclass(frozen=True)
class UnitInfo:
    code: str
    level: str
    name_vi: str
    short_name: str
    parent: str | None
    district: str | None  # the district the unit lies in (itself for a district), None for the province
    lat: float
    lon: float


class UnitTree:
    def __init__(self, catalog: Catalog):
        self.units: dict[str, UnitInfo] = {}
        for u in catalog.units:
            district = u.code if u.level == "district" else (u.parent if u.level == "commune" else None)
            self.units[u.code] = UnitInfo(
                u.code, u.level, u.name_vi, u.short_name, u.parent, district, u.lat, u.lon
            )
        self.children: dict[str, list[str]] = {}
        for u in self.units.values():
            if u.parent:
                self.children.setdefault(u.parent, []).append(u.code)

    @property
    def districts(self) -> list[UnitInfo]:
        return [u for u in self.units.values() if u.level == "district"]

    def subtree(self, code: str) -> frozenset[str]:
        """The unit and every unit below it."""
        out = {code}
        stack = [code]
        while stack:
            for child in self.children.get(stack.pop(), []):
                out.add(child)
                stack.append(child)
        return frozenset(out)

    def district_of(self, code: str) -> str | None:
        u = self.units.get(code)
        return u.district if u else None


@lru_cache(maxsize=1)
def catalog() -> Catalog:
    return load_catalog()


@lru_cache(maxsize=1)
def unit_tree() -> UnitTree:
    return UnitTree(catalog())
