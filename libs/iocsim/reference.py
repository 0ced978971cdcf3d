"""What the simulator reads from contracts/: units, fields, focal points, hospitals, the reported indicators,
the event schemas and examples, and its own traffic model (catalog/simulation.yaml).

Indicators come from the shared catalog loader (ioccore.catalog) and event schemas and examples from
ioccore.contracts, so the expansion rules and the schema reading exist once; everything is read once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import yaml


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Unit:
    code: str
    level: str
    parent: str | None
    lat: float
    lon: float
    bbox: tuple[float, float, float, float]
    sim_weight: float


@dataclass
class Reference:
    contracts_dir: Path
    units: dict[str, Unit]
    districts: list[str]
    communes: list[str]
    fields: list[str]
    focal_points: list[dict[str, Any]]
    hospitals: list[dict[str, Any]]
    model: dict[str, Any]
    schemas: dict[str, dict[str, Any]]  # type name -> data schema
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # type name -> example events
    reported: list[dict[str, Any]] = field(default_factory=list)  # expanded reported indicators

    def commune_weights(self) -> dict[str, float]:
        """Commune code -> activity weight: the district weight shared out by the communes' sim_weight."""
        dw = {str(k): float(v) for k, v in self.model["district_weights"].items()}
        per_district: dict[str, float] = {}
        for c in self.communes:
            u = self.units[c]
            per_district[u.parent or ""] = per_district.get(u.parent or "", 0.0) + u.sim_weight
        return {
            c: dw[self.units[c].parent or ""]
            * self.units[c].sim_weight
            / per_district[self.units[c].parent or ""]
            for c in self.communes
        }

    def district_weights(self) -> dict[str, float]:
        return {str(k): float(v) for k, v in self.model["district_weights"].items()}


def load_reference(contracts_dir: Path) -> Reference:
    units_doc = _yaml(contracts_dir / "geo" / "units@2024.yaml")
    units: dict[str, Unit] = {}
    for u in units_doc["units"]:
        units[str(u["code"])] = Unit(
            code=str(u["code"]),
            level=u["level"],
            parent=str(u["parent"]) if u.get("parent") is not None else None,
            lat=float(u["lat"]),
            lon=float(u["lon"]),
            bbox=tuple(u.get("bbox") or (u["lat"], u["lon"], u["lat"], u["lon"])),  # type: ignore[arg-type]
            sim_weight=float(u.get("sim_weight", 1)),
        )
    districts = [c for c, u in units.items() if u.level == "district"]
    communes = [c for c, u in units.items() if u.level == "commune"]
    fields = [f["code"] for f in _yaml(contracts_dir / "catalog" / "fields.yaml")["fields"]]
    focal_points = _yaml(contracts_dir / "geo" / "focal_points.yaml")["focal_points"]
    hospitals = [
        h for h in _yaml(contracts_dir / "geo" / "hospitals.yaml")["hospitals"] if h.get("receives_115")
    ]
    model = _yaml(contracts_dir / "catalog" / "simulation.yaml")

    from ioccore.catalog import load_catalog

    catalog = load_catalog(contracts_dir)
    contracts = catalog.contracts
    schemas = {name: et.schema for name, et in contracts.types.items()}
    examples: dict[str, list[dict[str, Any]]] = {}
    for _path, ev in contracts.examples():
        if isinstance(ev, dict) and "type" in ev:
            examples.setdefault(ev["type"], []).append(ev)
    reported = [
        _present(msgspec.to_builtins(ind))
        for ind in catalog.indicators
        if ind.is_reported and ind.measure in ("last", "sum")
    ]

    return Reference(
        contracts_dir=contracts_dir,
        units=units,
        districts=districts,
        communes=communes,
        fields=fields,
        focal_points=focal_points,
        hospitals=hospitals,
        model=model,
        schemas=schemas,
        examples=examples,
        reported=reported,
    )


def _present(obj: Any) -> Any:
    """The record as its YAML had it: keys that are set, lists for sequences."""
    if isinstance(obj, dict):
        return {k: _present(v) for k, v in obj.items() if v is not None and v != () and v != []}
    if isinstance(obj, list | tuple):
        return [_present(v) for v in obj]
    return obj
