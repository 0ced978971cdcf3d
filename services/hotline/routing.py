"""Routing suggestions (pure): 1022 requests to the focal point for their field and unit
(contracts/geo/focal_points.yaml), 115 calls to the nearest available hospital or medical centre
(contracts/geo/hospitals.yaml) by straight-line distance from the caller's location, or from the centroid of
the call's unit when the location is missing."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ioccore.catalog import Catalog


@dataclass(frozen=True)
class Suggestion:
    code: str
    distance_km: float | None = None


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine, Earth radius 6,371 km)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))


class Router:
    def __init__(self, catalog: Catalog, boundary_set: str = "2024"):
        units = catalog.units_by_set[boundary_set]
        self.units = {u.code: u for u in units}
        self.district_of: dict[str, str] = {}
        for u in units:
            if u.level == "commune":
                self.district_of[u.code] = u.parent or "74"
            elif u.level == "district":
                self.district_of[u.code] = u.code
            else:
                self.district_of[u.code] = "74"
        self.local_fp: dict[tuple[str, str], str] = {}
        self.province_fp: dict[str, str] = {}
        for fp in catalog.focal_points:
            for f in fp.fields:
                if fp.level == "district":
                    self.local_fp.setdefault((fp.unit, f), fp.code)
                else:
                    self.province_fp.setdefault(f, fp.code)  # the first listed body for the field leads
        self.hospitals = [h for h in catalog.hospitals if h.receives_115]
        self.hospital_codes = {h.code for h in catalog.hospitals}
        self.fallback_fp = "FP-VPUBND"

    def district(self, unit: str) -> str:
        return self.district_of.get(unit, "74")

    def focal_point(self, field: str, unit: str) -> Suggestion:
        """The district's people's committee when it handles the field locally, else the provincial body."""
        district = self.district(unit)
        code = self.local_fp.get((district, field)) or self.province_fp.get(field) or self.fallback_fp
        return Suggestion(code)

    def origin(self, unit: str, lat: float | None, lon: float | None) -> tuple[float, float] | None:
        if lat is not None and lon is not None:
            return lat, lon
        u = self.units.get(unit)
        return (u.lat, u.lon) if u else None

    def nearest_hospital(
        self,
        unit: str,
        lat: float | None,
        lon: float | None,
        unavailable: frozenset[str] | set[str] = frozenset(),
    ) -> Suggestion | None:
        """The nearest facility receiving 115 patients and not marked unavailable (ties: the code decides)."""
        origin = self.origin(unit, lat, lon)
        if origin is None:
            return None
        best: tuple[float, str] | None = None
        for h in self.hospitals:
            if h.code in unavailable:
                continue
            km = distance_km(origin[0], origin[1], h.lat, h.lon)
            if best is None or (km, h.code) < best:
                best = (km, h.code)
        return Suggestion(best[1], round(best[0], 2)) if best else None
