from collections import Counter

import pytest

from ioccore.catalog import VI_DIACRITICS

from .conftest import read_yaml

FIELDS = [f["code"] for f in read_yaml("catalog/fields.yaml")["fields"]]


def test_catalog_has_no_problems(catalog):
    assert [str(p) for p in catalog.problems] == []


def test_every_file_is_its_field(catalog):
    for path in sorted((catalog.dir / "catalog" / "indicators").glob("*.yaml")):
        assert read_yaml(f"catalog/indicators/{path.name}")["field"] == path.stem


def test_at_least_1000_indicators_in_every_field(indicators):
    assert len(indicators) >= 1000
    per_field = Counter(i.field for i in indicators)
    assert set(per_field) == set(FIELDS)


def test_no_duplicate_ids(indicators):
    dupes = [k for k, n in Counter(i.id for i in indicators).items() if n > 1]
    assert dupes == []


def test_ratios_reference_existing_indicators(indicators):
    ids = {i.id for i in indicators}
    for i in (x for x in indicators if x.measure == "ratio"):
        assert i.numerator in ids and i.denominator in ids, i.id
        assert i.numerator != i.denominator, i.id


def test_source_event_types_exist(catalog, indicators):
    for i in indicators:
        for et in i.source.event_types if i.source else ():
            assert et in catalog.event_types, (i.id, et)


def test_names_are_real_vietnamese_and_unique(indicators):
    for i in indicators:
        assert VI_DIACRITICS.search(i.name_vi), i.id
        assert "{" not in i.name_vi + i.name_en + i.id, i.id
    names = Counter(i.name_vi for i in indicators)
    assert [n for n, c in names.items() if c > 1] == []


def test_domain_figures_have_sources(indicators):
    with_ref = [i for i in indicators if i.baseline is not None or i.target is not None]
    assert len(with_ref) >= 60
    for i in with_ref:
        for ref in (i.baseline, i.target):
            if ref is not None:
                assert "DOMAIN.md" in ref.source or "ours" in ref.source, i.id


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
def test_named_domain_figures(catalog, iid, kind, value):
    assert getattr(catalog.indicator(iid), kind).value == value


def test_last_reported_province_figures_read_their_own_id(indicators):
    for i in indicators:
        if i.measure == "last":
            assert i.source is not None and i.is_reported
            assert i.source.filter["indicator_id"] == i.id
            assert i.source.event_types == (f"vn.binhduong.{i.field}.figure.reported",)
