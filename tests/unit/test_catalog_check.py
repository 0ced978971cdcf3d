"""`ioc catalog check`: every check rejects a broken copy of the catalog, naming the file and line."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ioccore.catalog import load_catalog, substitute
from ioccore.cli import app
from ioccore.contracts import Contracts

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts"
LAND = "catalog/indicators/land.yaml"


@pytest.fixture(scope="module")
def events() -> Contracts:
    """The real event contracts, compiled once (the broken copies below never touch events/)."""
    return Contracts(CONTRACTS)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    dst = tmp_path / "contracts"
    shutil.copytree(CONTRACTS, dst, ignore=shutil.ignore_patterns("clickhouse", "examples"))
    return dst


def edit(root: Path, rel: str, old: str, new: str, *, near: str | None = None) -> int:
    """Replace the first `old` (on the first line containing `near`, when given); return that 1-based line."""
    path = root / rel
    lines = path.read_text(encoding="utf-8").split("\n")
    for i, line in enumerate(lines):
        if (near is None or near in line) and old in line:
            lines[i] = line.replace(old, new, 1)
            path.write_text("\n".join(lines), encoding="utf-8")
            return i + 1
    raise AssertionError(f"{old!r} (near {near!r}) not in {rel}")


def line_of(root: Path, rel: str, needle: str) -> int:
    for i, line in enumerate((root / rel).read_text(encoding="utf-8").split("\n")):
        if needle in line:
            return i + 1
    raise AssertionError(f"{needle!r} not in {rel}")


def problems(root: Path, events: Contracts) -> list[str]:
    return [str(p) for p in load_catalog(root, strict=False, contracts=events).problems]


def expect(found: list[str], rel: str, line: int, *fragments: str) -> None:
    prefix = f"contracts/{rel}:{line}: "
    hits = [p for p in found if p.startswith(prefix) and all(f in p for f in fragments)]
    assert hits, f"no problem {prefix}… with {fragments}; got:\n" + "\n".join(found)


def test_the_real_catalog_passes(events):
    catalog = load_catalog(CONTRACTS, contracts=events)
    assert catalog.problems == []
    assert catalog.stats()["indicators"] >= 1000


# -- schema violations ------------------------------------------------------------------------------------
def test_indicator_schema_violation(copy, events):
    line = edit(copy, LAND, "measure: count", "measure: counted", near="id: land.transactions,")
    expect(problems(copy, events), LAND, line, "indicator land.transactions:", "measure")


def test_schema_violation_in_a_family_points_at_the_template(copy, events):
    line = edit(copy, LAND, "measure: count", "measure: tally", near='id: "land.transactions.{key}"')
    found = problems(copy, events)
    expect(found, LAND, line, "indicator land.transactions.mortgage:", "measure")
    expect(found, LAND, line, "indicator land.transactions.lease:", "measure")


def test_board_schema_violation(copy, events):
    line = line_of(copy, "catalog/boards.yaml", "id: province.hotline_1022")
    edit(copy, "catalog/boards.yaml", "kind: hotline", "kind: hotlines")
    expect(problems(copy, events), "catalog/boards.yaml", line, "board province.hotline_1022:", "kind")


def test_fields_schema_violation(copy, events):
    line = line_of(copy, "catalog/fields.yaml", "- code: economy")
    edit(copy, "catalog/fields.yaml", "cadence_group: quarterly-yearly", "cadence_group: Quarterly")
    expect(problems(copy, events), "catalog/fields.yaml", line, "cadence_group")


def test_units_schema_violation(copy, events):
    rel = "geo/units@2024.yaml"
    line = line_of(copy, rel, "- code: '718'")
    edit(copy, rel, "level: district", "level: county")
    expect(problems(copy, events), rel, line, "level")


def test_invalid_yaml_names_the_line(copy, events):
    line = edit(copy, LAND, "measure: count}", "measure: [count}", near="id: land.transactions,")
    found = problems(copy, events)
    assert any(p.startswith(f"contracts/{LAND}:{line}: not valid YAML") for p in found), found


def test_template_naming_a_missing_item_attribute(copy, events):
    line = edit(copy, LAND, "{name_vi}", "{nam_vi}", near='id: "land.transactions.{key}"')
    expect(problems(copy, events), LAND, line, "family land.by_transaction_kind", "nam_vi")


# -- indicators ---------------------------------------------------------------------------------------------
def test_unknown_event_type(copy, events):
    line = edit(
        copy,
        LAND,
        "land_transaction.registered]",
        "land_transaction.recorded]",
        near="id: land.transactions,",
    )
    expect(
        problems(copy, events),
        LAND,
        line,
        "indicator land.transactions:",
        "vn.binhduong.land.land_transaction.recorded",
    )


def test_duplicate_ids_name_both_places(copy, events):
    first = line_of(copy, LAND, "id: land.transactions,")
    second = edit(copy, LAND, "id: land.violations,", "id: land.transactions,")
    found = problems(copy, events)
    expect(found, LAND, second, "indicator land.transactions: duplicate id", f"{LAND}:{first}")
    expect(found, LAND, first, "indicator land.transactions: duplicate id", f"{LAND}:{second}")


def test_ratio_numerator_missing(copy, events):
    line = edit(copy, LAND, "numerator: land.disputes_resolved", "numerator: land.disputes_settled")
    expect(
        problems(copy, events),
        LAND,
        line,
        "indicator land.dispute_resolution_rate: ratio numerator land.disputes_settled does not exist",
    )


def test_ratio_cycle(copy, events):
    path = copy / LAND
    text = path.read_text(encoding="utf-8").replace(
        "families:\n",
        '  - {id: land.cycle_a, name_vi: "Tỷ lệ vòng một", name_en: "Cycle a", unit: "%", measure: ratio, '
        "numerator: land.cycle_b, denominator: land.transactions}\n"
        '  - {id: land.cycle_b, name_vi: "Tỷ lệ vòng hai", name_en: "Cycle b", unit: "%", measure: ratio, '
        "numerator: land.cycle_a, denominator: land.transactions}\n"
        "families:\n",
        1,
    )
    path.write_text(text, encoding="utf-8")
    found = problems(copy, events)
    assert any(
        re.search(r"ratio cycle land\.cycle_[ab] → land\.cycle_[ab] → land\.cycle_[ab]", p) for p in found
    ), found
    assert any(p.startswith(f"contracts/{LAND}:{line_of(copy, LAND, 'id: land.cycle_')}") for p in found), (
        found
    )


def test_ratio_scopes_must_be_scopes_of_both_parts(copy, events):
    line = edit(copy, LAND, "denominator: land.disputes_received", "denominator: land.recovery_decisions")
    expect(
        problems(copy, events),
        LAND,
        line,
        "indicator land.dispute_resolution_rate: ratio scopes ['commune'] are not scopes of its denominator",
    )


def test_ratio_cadences_must_be_cadences_of_both_parts(copy, events):
    rel = "catalog/indicators/finance_budget.yaml"
    line = edit(copy, rel, "cadences: [year]", "cadences: [month, year]", near="revenue_plan_rate")
    expect(problems(copy, events), rel, line, "ratio cadences ['month']", "finance_budget.revenue_plan")


def test_last_cannot_be_declared_at_commune_scope(copy, events):
    line = edit(
        copy,
        LAND,
        "scopes: [province]",
        "scopes: [commune, district, province]",
        near="certificate_coverage_rate",
    )
    expect(
        problems(copy, events),
        LAND,
        line,
        "indicator land.certificate_coverage_rate: measure last",
        "commune",
    )


def test_quantile_of_reported_figures_cannot_roll_up(copy, events):
    rel = "catalog/indicators/hotline_1022.yaml"
    path = copy / rel
    text = path.read_text(encoding="utf-8").replace(
        "families:\n",
        '  - {id: hotline_1022.calls_median, name_vi: "Trung vị số cuộc gọi", name_en: "Median calls", unit: "cuộc gọi", '
        "measure: quantile, q: 0.5, value_field: value, source: {event_types: [vn.binhduong.hotline_1022.figure.reported]}}\n"
        "families:\n",
        1,
    )
    path.write_text(text, encoding="utf-8")
    line = line_of(copy, rel, "hotline_1022.calls_median")
    expect(problems(copy, events), rel, line, "quantile of reported figures cannot be rolled up")


def test_quantile_of_raw_events_rolls_up(copy, events):
    path = copy / LAND
    text = path.read_text(encoding="utf-8").replace(
        "families:\n",
        '  - {id: land.area_median, name_vi: "Trung vị diện tích được cấp", name_en: "Median area", unit: "m²", '
        "measure: quantile, q: 0.5, value_field: area_m2, source: {event_types: [vn.binhduong.land.land_use_certificate.issued]}}\n"
        "families:\n",
        1,
    )
    path.write_text(text, encoding="utf-8")
    assert problems(copy, events) == []


def test_filter_field_not_in_the_event_data(copy, events):
    line = edit(copy, LAND, "first_issuance: true", "first_issued: true")
    expect(
        problems(copy, events),
        LAND,
        line,
        "indicator land.certificates_first_issuance: filter field 'first_issued'",
    )


def test_value_field_must_be_numeric(copy, events):
    line = edit(copy, LAND, "value_field: value_vnd", "value_field: channel")
    expect(
        problems(copy, events),
        LAND,
        line,
        "indicator land.transaction_value: measure sum needs a number",
        "'channel'",
    )


def test_on_time_fields_must_be_date_time(copy, events):
    line = edit(
        copy, LAND, "due_field: due_at", "due_field: channel", near="id: land.certificate_on_time_rate,"
    )
    expect(
        problems(copy, events),
        LAND,
        line,
        "indicator land.certificate_on_time_rate: on_time due_field 'channel'",
        "date-time",
    )


def test_vietnamese_names_need_diacritics(copy, events):
    line = edit(copy, LAND, "Số hồ sơ đăng ký biến động đất đai", "So ho so dang ky bien dong dat dai")
    expect(problems(copy, events), LAND, line, "indicator land.transactions: name_vi", "diacritics")


# -- boards, geo ------------------------------------------------------------------------------------------
def test_board_with_unknown_indicator(copy, events):
    line = line_of(copy, "catalog/boards.yaml", "id: province.overview")
    edit(copy, "catalog/boards.yaml", "- economy.grdp_growth", "- economy.grdp_growths")
    expect(
        problems(copy, events),
        "catalog/boards.yaml",
        line,
        "board province.overview: indicator economy.grdp_growths does not exist",
    )


def test_unit_with_missing_parent(copy, events):
    rel = "geo/units@2024.yaml"
    edited = edit(copy, rel, "parent: '718'", "parent: '799'")
    text = (copy / rel).read_text(encoding="utf-8").split("\n")
    line = max(i + 1 for i in range(edited) if text[i].startswith("- code:"))
    expect(problems(copy, events), rel, line, "parent 799 does not exist")


def test_focal_point_with_unknown_field(copy, events):
    rel = "geo/focal_points.yaml"
    line = edit(copy, rel, "fields: [home_affairs]", "fields: [home_affair]", near="FP-SNV")
    expect(problems(copy, events), rel, line, "focal point FP-SNV: handles unknown field home_affair")


# -- expansion --------------------------------------------------------------------------------------------
def test_whole_string_substitution_keeps_the_type():
    tpl = {"filter": {"k": "{match}"}, "target": {"value": "{n}"}, "name": "Y {name_vi} {{x}}"}
    out = substitute(tpl, {"match": ["p", "q"], "n": 5, "name_vi": "á"})
    assert out == {"filter": {"k": ["p", "q"]}, "target": {"value": 5}, "name": "Y á {x}"}


def test_family_expansion_rules(copy, events):
    (copy / LAND).write_text(
        """field: land
defaults: {cadences: [day], scopes: [province], direction: neutral}
indicators:
  - {id: land.x, name_vi: "Số ít", name_en: "X figure", unit: "%", measure: last}
families:
  - family: land.f
    each: [{key: a, name_vi: "á", name_en: "a", match: [transfer, lease], n: 5}]
    indicators:
      - {id: "land.y.{key}", name_vi: "Số Y {name_vi}", name_en: "Y {name_en}", unit: "vụ", measure: count,
         source: {event_types: [vn.binhduong.land.land_transaction.registered], filter: {kind: "{match}"}},
         target: {value: "{n}", source: "ours"}}
""",
        encoding="utf-8",
    )
    catalog = load_catalog(copy, strict=False, contracts=events)
    x, y = catalog.indicator("land.x"), catalog.indicator("land.y.a")
    assert x.source is not None and x.source.event_types == ("vn.binhduong.land.figure.reported",)
    assert x.source.filter == {"indicator_id": "land.x"} and x.value_field == "value" and x.is_reported
    assert y.source is not None and y.source.filter == {"kind": ["transfer", "lease"]}
    assert y.target is not None and y.target.value == 5
    assert (y.name_vi, y.family, y.field, y.cadences) == ("Số Y á", "land.f", "land", ("day",))
    # boards that named the removed land indicators are reported; the two new indicators are fine
    assert not [p for p in catalog.problems if "land.x" in p.message or "land.y.a" in p.message]


# -- the CLI ----------------------------------------------------------------------------------------------
runner = CliRunner()


def test_cli_check_passes_on_the_real_catalog():
    result = runner.invoke(app, ["catalog", "check", "--contracts", str(CONTRACTS)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().split("\n")
    assert len(lines) == 1 and lines[0].startswith("✓")


def test_cli_check_fails_with_path_and_line(copy):
    line = edit(copy, LAND, "numerator: land.disputes_resolved", "numerator: land.disputes_settled")
    result = runner.invoke(app, ["catalog", "check", "--contracts", str(copy)])
    assert result.exit_code == 1
    assert (
        f"contracts/{LAND}:{line}: indicator land.dispute_resolution_rate: ratio numerator land.disputes_settled"
        in result.stdout
    )


def test_cli_stats_json():
    result = runner.invoke(app, ["catalog", "stats", "--json", "--contracts", str(CONTRACTS)])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)
    assert list(counts) == [
        "fields",
        "indicators",
        "event_types",
        "districts",
        "communes",
        "boards",
        "focal_points",
        "hospitals",
    ]
    assert counts["fields"] == 27 and counts["districts"] == 9 and counts["communes"] == 91
    assert counts["focal_points"] == 47 and counts["boards"] == 146 and counts["indicators"] >= 1000
    assert counts["event_types"] == len(Contracts(CONTRACTS).types)


def test_cli_stats_table_is_vietnamese_first():
    result = runner.invoke(app, ["catalog", "stats", "--contracts", str(CONTRACTS)])
    assert result.exit_code == 0, result.output
    assert "Lĩnh vực" in result.stdout and "Fields" in result.stdout
    assert result.stdout.index("Lĩnh vực") < result.stdout.index("Fields")
