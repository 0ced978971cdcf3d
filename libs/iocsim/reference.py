"""What the simulator reads from contracts/: units, fields, focal points, hospitals, the reported indicators,
the event schemas and examples, and its own traffic model (catalog/simulation.yaml).

A small private reader (the shared catalog loader is built elsewhere); everything is read once.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TYPE_PREFIX = "vn.binhduong."


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

    events_dir = contracts_dir / "events"
    schemas: dict[str, dict[str, Any]] = {}
    for path in sorted(events_dir.glob("*/*.schema.json")):
        name = f"{TYPE_PREFIX}{path.parent.name}.{path.name.removesuffix('.schema.json')}"
        schemas[name] = json.loads(path.read_text(encoding="utf-8"))
    examples: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(events_dir.glob("*/examples/*.json")):
        ev = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(ev, dict) and "type" in ev:
            examples.setdefault(ev["type"], []).append(ev)

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
        reported=reported_indicators(contracts_dir),
    )


# -- reported indicators: the catalog's expansion rules (scripts/catalog_expand.py), reduced to what is needed
_WHOLE = re.compile(r"^\{([a-zA-Z_][a-zA-Z0-9_]*)\}$")


def _slug(value: Any) -> str:
    return re.sub(r"[^a-z0-9_]", "_", str(value).lower().replace("-", "_").replace(" ", "_")).strip("_")


def _subst(obj: Any, item: dict[str, Any]) -> Any:
    if isinstance(obj, str):
        m = _WHOLE.match(obj)
        if m and m.group(1) in item:
            return copy.deepcopy(item[m.group(1)])
        return obj.format_map(item)
    if isinstance(obj, list):
        return [_subst(x, item) for x in obj]
    if isinstance(obj, dict):
        return {k: _subst(v, item) for k, v in obj.items()}
    return obj


def _family_items(family: dict[str, Any], contracts_dir: Path) -> list[dict[str, Any]]:
    if "each_product" in family:
        items: list[dict[str, Any]] = [{}]
        for part in family["each_product"]:
            prefix = part["as"]
            new = []
            for base in items:
                for it in _family_items(part, contracts_dir):
                    merged = dict(base)
                    merged.update({f"{prefix}_{k}": v for k, v in it.items()})
                    merged["key"] = f"{base['key']}_{it['key']}" if "key" in base else it["key"]
                    new.append(merged)
            items = new
        return items
    if "each" in family:
        return list(family["each"])
    spec = family["each_from"]
    doc = _yaml(contracts_dir / spec["file"])
    where = spec.get("where") or {}
    out = []
    for rec in doc[spec["list"]]:
        if any(rec.get(k) != v for k, v in where.items()):
            continue
        out.append({**rec, "key": _slug(rec[spec["key"]])})
    return out


def _reported(ind: dict[str, Any], field_code: str, defaults: dict[str, Any]) -> dict[str, Any] | None:
    out = {**copy.deepcopy(defaults), **ind, "field": field_code}
    reported = out.pop("reported", False)
    if "source" in out:
        return None
    if out.get("measure") == "last" or (reported and out.get("measure") == "sum"):
        return out
    return None


def reported_indicators(contracts_dir: Path) -> list[dict[str, Any]]:
    """Indicators whose values departments report as vn.binhduong.<field>.figure.reported."""
    out: list[dict[str, Any]] = []
    for path in sorted((contracts_dir / "catalog" / "indicators").glob("*.yaml")):
        doc = _yaml(path)
        field_code = doc["field"]
        defaults = doc.get("defaults") or {}
        for ind in doc.get("indicators") or []:
            r = _reported(ind, field_code, defaults)
            if r:
                out.append(r)
        for fam in doc.get("families") or []:
            for item in _family_items(fam, contracts_dir):
                for tpl in fam["indicators"]:
                    r = _reported(_subst(copy.deepcopy(tpl), item), field_code, defaults)
                    if r:
                        out.append(r)
    return out
