"""Load the whole catalog (fields, indicators with families expanded, event types, geo, boards),
validate it, and print its counts as JSON.

    python scripts/catalog_stats.py          # prints {"fields": 27, "indicators": N, ...}; exit 1 on problems
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from catalog_expand import CONTRACTS, board_indicator_ids, expand_file, load_boards, load_indicator_files  # noqa: E402

TYPE_PREFIX = "vn.binhduong."


def load_yaml(rel: str) -> Any:
    return yaml.safe_load((CONTRACTS / rel).read_text(encoding="utf-8"))


def event_schemas(contracts: Path = CONTRACTS) -> dict[str, dict]:
    out = {}
    for path in sorted((contracts / "events").glob("*/*.schema.json")):
        out[f"{TYPE_PREFIX}{path.parent.name}.{path.name.removesuffix('.schema.json')}"] = json.loads(
            path.read_text(encoding="utf-8")
        )
    return out


def check_indicators(indicators: list[dict], schemas: dict[str, dict], ind_schema: dict) -> list[str]:
    """Every problem found, as a sentence naming the indicator."""
    problems: list[str] = []
    validator = jsonschema.Draft7Validator({**ind_schema, **ind_schema["definitions"]["indicator"]})
    ids: dict[str, int] = {}
    for ind in indicators:
        ids[ind.get("id", "?")] = ids.get(ind.get("id", "?"), 0) + 1
    for i, n in ids.items():
        if n > 1:
            problems.append(f"{i}: duplicate id ({n} times)")
    for ind in indicators:
        iid = ind.get("id", "?")
        for err in validator.iter_errors(ind):
            problems.append(f"{iid}: {'/'.join(map(str, err.path))}: {err.message}")
        if not iid.startswith(ind.get("field", "") + "."):
            problems.append(f"{iid}: id must start with its field '{ind.get('field')}.'")
        if ind.get("measure") == "ratio":
            for k in ("numerator", "denominator"):
                if ind.get(k) not in ids:
                    problems.append(f"{iid}: {k} {ind.get(k)!r} is not an indicator")
        src = ind.get("source") or {}
        for et in src.get("event_types", []):
            sch = schemas.get(et)
            if sch is None:
                problems.append(f"{iid}: event type {et} has no schema")
                continue
            props = sch.get("properties", {})
            for key, val in (src.get("filter") or {}).items():
                if key not in props:
                    problems.append(f"{iid}: filter field {key!r} not in {et}")
                    continue
                allowed = props[key].get("enum")
                vals = val if isinstance(val, list) else [val]
                if allowed is not None and any(v not in allowed for v in vals):
                    problems.append(f"{iid}: filter {key}={val!r} outside the enum of {et}")
            vf = ind.get("value_field")
            if vf and vf not in props:
                problems.append(f"{iid}: value_field {vf!r} not in {et}")
            elif vf and ind["measure"] in ("sum", "avg", "min", "max", "quantile", "last"):
                if props[vf].get("type") not in ("number", "integer"):
                    problems.append(f"{iid}: value_field {vf!r} of {et} is not numeric")
            ot = ind.get("on_time")
            if ot:
                for k in ("done_field", "due_field"):
                    if props.get(ot[k], {}).get("format") != "date-time":
                        problems.append(f"{iid}: on_time {k} {ot[k]!r} is not a date-time field of {et}")
    return problems


def build() -> tuple[dict[str, int], list[str]]:
    problems: list[str] = []
    fields = load_yaml("catalog/fields.yaml")["fields"]
    field_codes = {f["code"] for f in fields}
    schemas = event_schemas()
    ind_schema = json.loads((CONTRACTS / "catalog" / "indicator.schema.json").read_text(encoding="utf-8"))
    file_validator = jsonschema.Draft7Validator(ind_schema)
    indicators: list[dict] = []
    for name, doc in load_indicator_files().items():
        for err in file_validator.iter_errors(doc):
            problems.append(f"indicators/{name}.yaml: {'/'.join(map(str, err.path))}: {err.message}")
        if doc.get("field") != name:
            problems.append(f"indicators/{name}.yaml: field must be {name!r}")
        indicators.extend(expand_file(doc))
    problems += check_indicators(indicators, schemas, ind_schema)
    missing = field_codes - {i["field"] for i in indicators}
    if missing:
        problems.append(f"fields without indicators: {sorted(missing)}")
    units = load_yaml("geo/units@2024.yaml")["units"]
    boards = load_boards()
    ind_ids = {i["id"] for i in indicators}
    board_ids: set[str] = set()
    for b in boards:
        if b["id"] in board_ids:
            problems.append(f"board {b['id']}: duplicate id")
        board_ids.add(b["id"])
        for iid in b.get("indicators", []):
            if iid not in ind_ids:
                problems.append(f"board {b['id']}: unknown indicator {iid}")
        if not board_indicator_ids(b, indicators):
            problems.append(f"board {b['id']}: shows no indicator")
    counts = {
        "fields": len(fields),
        "indicators": len(indicators),
        "event_types": len(schemas),
        "districts": sum(1 for u in units if u["level"] == "district"),
        "communes": sum(1 for u in units if u["level"] == "commune"),
        "boards": len(boards),
        "focal_points": len(load_yaml("geo/focal_points.yaml")["focal_points"]),
        "hospitals": len(load_yaml("geo/hospitals.yaml")["hospitals"]),
    }
    return counts, problems


def main() -> int:
    counts, problems = build()
    for p in problems:
        print(p, file=sys.stderr)
    print(json.dumps(counts))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
