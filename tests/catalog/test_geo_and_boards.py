import subprocess
import sys
from collections import Counter

from .conftest import ROOT, read_yaml

FIELDS = {f["code"] for f in read_yaml("catalog/fields.yaml")["fields"]}


def test_unit_counts_and_hierarchy(units_2024):
    by_level = Counter(u["level"] for u in units_2024)
    assert by_level == {"province": 1, "district": 9, "commune": 91}
    codes = {u["code"]: u for u in units_2024}
    assert {c for c, u in codes.items() if u["level"] == "district"} == {str(c) for c in range(718, 727)}
    for u in units_2024:
        if u["level"] == "district":
            assert u["parent"] == "74" and u["type"] in {"thành phố", "thị xã", "huyện"}
        if u["level"] == "commune":
            assert codes[u["parent"]]["level"] == "district" and len(u["code"]) == 5
            assert u["type"] in {"xã", "phường", "thị trấn"}
            assert 10.8 < u["lat"] < 11.6 and 106.3 < u["lon"] < 107.0
            assert u["sim_weight"] > 0


def test_commune_type_counts_as_the_package_has_them(units_2024):
    # DOMAIN.md says 42 xã / 45 phường / 4 thị trấn; vietnamadminunits 1.0.4 has 39 / 47 / 5 (reported).
    types = Counter(u["type"] for u in units_2024 if u["level"] == "commune")
    assert sum(types.values()) == 91
    assert types == {"xã": 39, "phường": 47, "thị trấn": 5}


def test_2025_mapping_covers_every_old_commune(units_2024):
    mapping = read_yaml("geo/units@2024-to-2025.yaml")["mapping"]
    new_codes = {u["code"] for u in read_yaml("geo/units@2025.yaml")["units"]}
    old = {u["code"] for u in units_2024 if u["level"] == "commune"}
    assert {m["old_code"] for m in mapping} == old
    for m in mapping:
        assert m["default_new_code"] in {n["code"] for n in m["new"]}
        assert {n["code"] for n in m["new"]} <= new_codes
        assert sum(n["default"] for n in m["new"]) == 1


def test_geo_files_are_reproducible():
    # vietnamadminunits is a dev dependency: without it this fails rather than skips.
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_geo.py"), "--check"], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr


def test_focal_points(units_2024):
    fps = read_yaml("geo/focal_points.yaml")["focal_points"]
    assert len(fps) == 47
    assert len({f["code"] for f in fps}) == 47
    codes = {u["code"] for u in units_2024}
    for f in fps:
        assert f["unit"] in codes and set(f["fields"]) <= FIELDS and f["name_vi"] and f["name_en"]
    assert sorted(f["unit"] for f in fps if f["level"] == "district") == [str(c) for c in range(718, 727)]
    assert FIELDS - {"hotline_1022"} <= {x for f in fps for x in f["fields"]} | {"hotline_1022"}


def test_hospitals(units_2024):
    doc = read_yaml("geo/hospitals.yaml")
    assert doc["metadata"]["editable"] is True and "APPROXIMATE" in doc["metadata"]["coordinates"]
    units = {u["code"]: u for u in units_2024}
    hs = doc["hospitals"]
    assert {h["district"] for h in hs} >= {str(c) for c in range(718, 727)}
    assert {h["serves_district"] for h in hs if h["serves_district"]} == {str(c) for c in range(718, 727)}
    for h in hs:
        assert units[h["commune"]]["parent"] == h["district"]
        if h["coordinates_approximate"]:
            assert (h["lat"], h["lon"]) == (units[h["commune"]]["lat"], units[h["commune"]]["lon"])


def test_fields_file():
    doc = read_yaml("catalog/fields.yaml")
    fields = doc["fields"]
    assert len(fields) == 27 and len(FIELDS) == 27
    assert Counter(f["cadence_group"] for f in fields) == {"daily-weekly-monthly": 15, "quarterly-yearly": 12}
    assert Counter(f["group"] for f in fields) == {
        "socio_economic": 5,
        "digital_government": 7,
        "economic_sectors": 9,
        "culture_social": 6,
    }
    for f in fields:
        assert f["departments"] and f["name_vi"] and f["name_en"]


def test_boards(catalog, boards, indicators):
    assert len(boards) == 146
    assert len({b.id for b in boards}) == 146
    ids = {i.id for i in indicators}
    kinds = Counter(b.kind for b in boards)
    assert kinds["overview"] == 10 and kinds["field"] == 27 + 81
    for b in boards:
        shown = catalog.board_indicator_ids(b)
        assert shown, b.id
        assert set(shown) <= ids, b.id
        assert "{" not in b.id + b.title_vi, b.id


def test_catalog_counts(catalog):
    assert catalog.problems == []
    counts = catalog.stats()
    assert counts["fields"] == 27 and counts["districts"] == 9 and counts["communes"] == 91
    assert counts["focal_points"] == 47 and counts["boards"] == 146 and counts["indicators"] >= 1000
