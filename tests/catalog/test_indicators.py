import re
from collections import Counter

import pytest

from .conftest import catalog_expand, catalog_stats, read_yaml

FIELDS = [f["code"] for f in read_yaml("catalog/fields.yaml")["fields"]]
VI_DIACRITICS = re.compile(r"[àáạảãâầấậẩẫăằắặẳẵèéẹẻẽêềếệểễìíịỉĩòóọỏõôồốộổỗơờớợởỡùúụủũưừứựửữỳýỵỷỹđ]", re.I)


def test_catalog_has_no_problems(indicators, schemas, indicator_schema):
    problems = catalog_stats.check_indicators(indicators, schemas, indicator_schema)
    assert problems == []


def test_files_validate_against_the_file_schema(indicator_schema):
    import jsonschema

    v = jsonschema.Draft7Validator(indicator_schema)
    for name, doc in catalog_expand.load_indicator_files().items():
        assert doc["field"] == name
        assert list(v.iter_errors(doc)) == [], name


def test_at_least_1000_indicators_in_every_field(indicators):
    assert len(indicators) >= 1000
    per_field = Counter(i["field"] for i in indicators)
    assert set(per_field) == set(FIELDS)


def test_no_duplicate_ids(indicators):
    dupes = [k for k, n in Counter(i["id"] for i in indicators).items() if n > 1]
    assert dupes == []


def test_ratios_reference_existing_indicators(indicators):
    ids = {i["id"] for i in indicators}
    for i in (x for x in indicators if x["measure"] == "ratio"):
        assert i["numerator"] in ids and i["denominator"] in ids, i["id"]
        assert i["numerator"] != i["denominator"], i["id"]


def test_source_event_types_exist(indicators, schemas):
    for i in indicators:
        for et in i.get("source", {}).get("event_types", []):
            assert et in schemas, (i["id"], et)


def test_names_are_real_vietnamese_and_unique(indicators):
    for i in indicators:
        assert VI_DIACRITICS.search(i["name_vi"]), i["id"]
        assert "{" not in i["name_vi"] + i["name_en"] + i["id"], i["id"]
    names = Counter((i["name_vi"]) for i in indicators)
    assert [n for n, c in names.items() if c > 1] == []


def test_domain_figures_have_sources(indicators):
    with_ref = [i for i in indicators if "baseline" in i or "target" in i]
    assert len(with_ref) >= 60
    for i in with_ref:
        for k in ("baseline", "target"):
            if k in i:
                assert "DOMAIN.md" in i[k]["source"] or "ours" in i[k]["source"], i["id"]


@pytest.mark.parametrize(
    "iid,kind,value",
    [
        ("admin_procedures.procedures_total", "baseline", 1886),
        ("admin_procedures.online_dossier_rate", "target", 50),
        ("admin_procedures.satisfaction_rate", "target", 90),
        ("digital_economy.grdp_share", "target", 16),
        ("digital_society.tech_team_members", "target", 4500),
        ("hotline_1022.calls_received", "baseline", 400),
        ("emergency_115.requests_received", "baseline", 900),
        ("hotline_1022.focal_points", "baseline", 47),
        ("documents.work_file_online_rate.level_district", "target", 75),
    ],
)
def test_named_domain_figures(indicators, iid, kind, value):
    ind = {i["id"]: i for i in indicators}[iid]
    assert ind[kind]["value"] == value


def test_last_reported_province_figures_read_their_own_id(indicators):
    for i in indicators:
        if i["measure"] == "last":
            assert i["source"]["filter"]["indicator_id"] == i["id"]
            assert i["source"]["event_types"] == [f"vn.binhduong.{i['field']}.figure.reported"]


def test_family_expansion_rules():
    doc = {
        "field": "land",
        "defaults": {"cadences": ["day"], "scopes": ["province"], "direction": "neutral"},
        "indicators": [{"id": "land.x", "name_vi": "X", "name_en": "X", "unit": "%", "measure": "last"}],
        "families": [
            {
                "family": "land.f",
                "each": [{"key": "a", "name_vi": "á", "name_en": "a", "match": ["p", "q"], "n": 5}],
                "indicators": [
                    {
                        "id": "land.y.{key}",
                        "name_vi": "Y {name_vi}",
                        "name_en": "Y {name_en}",
                        "unit": "vụ",
                        "source": {"event_types": ["t"], "filter": {"k": "{match}"}},
                        "measure": "count",
                        "target": {"value": "{n}", "source": "ours"},
                    }
                ],
            }
        ],
    }
    out = {i["id"]: i for i in catalog_expand.expand_file(doc)}
    assert out["land.x"]["source"] == {
        "event_types": ["vn.binhduong.land.figure.reported"],
        "filter": {"indicator_id": "land.x"},
    }
    assert out["land.x"]["value_field"] == "value"
    y = out["land.y.a"]
    assert y["source"]["filter"] == {"k": ["p", "q"]} and y["target"]["value"] == 5
    assert (
        y["name_vi"] == "Y á"
        and y["family"] == "land.f"
        and y["field"] == "land"
        and y["cadences"] == ["day"]
    )
