"""The shipped alert rules (contracts/rules) as data: every field has rules, every DOMAIN.md target has one,
and `ioc catalog check` names a broken rule by file and line."""

from __future__ import annotations

import shutil

import pytest

from ioccore.catalog import load_catalog
from ioccore.settings import get_settings
from services.alerts.rules import load_rules


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_every_field_has_rules_and_every_target_a_target_rule(catalog):
    assert catalog.problems == []
    rules = load_rules(catalog)
    assert {r.field for r in rules} == {f.code for f in catalog.fields}
    targeted = {i.id for i in catalog.indicators if (i.target or i.targets_by_scope) and not i.family}
    assert targeted <= {r.indicator for r in rules if r.kind == "target"}
    assert {r.kind for r in rules} >= {"above", "change", "target", "no_data"}
    assert any(r.overrides for r in rules)
    assert all(r.escalate_after_s > 0 and r.sop_vi for r in rules)
    assert catalog.silences and all(
        s["district"] in {"74", *map(str, range(718, 727))} for s in catalog.silences
    )


def test_timeliness_indicators_exist_for_every_field(catalog):
    ids = {i.id for i in catalog.indicators}
    assert {f"data_sharing.reporting_timeliness.{f.code}" for f in catalog.fields} <= ids


BROKEN = """field: environment
rules:
  - id: environment.broken
    indicator: environment.no_such_indicator
    levels: [district]
    cadence: day
    condition: {kind: above, threshold: 10, clear: 5}
    for: {windows: 1}
    severity: warning
    routing: {escalate_after_min: 30}
    title_vi: "Tăng bất thường"
    title_en: "High"
    sop_vi: "1. Kiểm tra số liệu trên bảng điều hành."
  - id: environment.no_hysteresis
    indicator: environment.wastewater_results
    levels: [district]
    cadence: day
    condition: {kind: above, threshold: 10, clear: 50}
    overrides: {"999": {threshold: 20, clear: 10}}
    for: {windows: 1}
    severity: loud
    routing: {escalate_after_min: 30}
    title_vi: "Tăng bất thường"
    title_en: "High"
    sop_vi: "1. Kiểm tra số liệu trên bảng điều hành."
"""


def test_catalog_check_names_broken_rules_by_file_and_line(tmp_path):
    contracts = tmp_path / "contracts"
    shutil.copytree(get_settings().contracts_dir, contracts)
    (contracts / "rules" / "environment.yaml").write_text(BROKEN, encoding="utf-8")
    problems = [str(p) for p in load_catalog(contracts, strict=False).problems]
    assert any("rules/environment.yaml:" in p and "severity" in p for p in problems), problems
    (contracts / "rules" / "environment.yaml").write_text(BROKEN.replace("loud", "warning"), encoding="utf-8")
    problems = [str(p) for p in load_catalog(contracts, strict=False).problems]
    assert (
        "contracts/rules/environment.yaml:3: rule environment.broken: indicator environment.no_such_indicator is not in the catalog"
        in problems
    )
    assert any(p.startswith("contracts/rules/environment.yaml:14:") and "hysteresis" in p for p in problems)
    assert any(
        p.startswith("contracts/rules/environment.yaml:14:") and "unknown unit 999" in p for p in problems
    )
