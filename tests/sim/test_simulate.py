"""`ioc simulate`: contract-valid events at the DOMAIN.md volumes, deterministic, anomalies, malformed events."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ioccore.cli import app
from ioccore.contracts import load_contracts
from ioccore.settings import get_settings
from iocsim.model import Calendar
from iocsim.reference import load_reference

START = "2026-03-26"  # a Thursday: the week spans a weekend and the end of March (month, quarter)
P = "vn.binhduong."
runner = CliRunner()


def simulate(tmp_path: Path, name: str, *args: str) -> Path:
    out = tmp_path / f"{name}.jsonl"
    result = runner.invoke(
        app,
        ["simulate", "--start", START, "--out", "file", "--file", str(out), "--no-progress", *args],
    )
    assert result.exit_code == 0, result.output
    return out


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    return read(simulate(tmp_path_factory.mktemp("sim"), "week", "--days", "7", "--seed", "1"))


@pytest.fixture(scope="module")
def day1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return simulate(tmp_path_factory.mktemp("sim"), "day", "--days", "1", "--seed", "1")


def test_every_event_validates_against_the_contracts(week: list[dict]) -> None:
    contracts = load_contracts()
    reasons = Counter()
    for e in week:
        reason = contracts.check(e)
        if reason:
            reasons[f"{e.get('type')}: {reason}"] += 1
    assert not reasons, reasons.most_common(5)
    assert all(e["time"].endswith("+07:00") for e in week)
    assert len({(e["source"], e["id"]) for e in week}) == len(week), "event ids are unique per source"


def test_every_department_type_and_every_hotline_type_occurs(week: list[dict]) -> None:
    ref = load_reference(get_settings().contracts_dir)
    types = Counter(e["type"] for e in week)
    modelled = {P + t for t, cfg in ref.model["types"].items() if cfg.get("per_day", 0) >= 1}
    assert modelled - set(types) == set()
    hotline = {t for t in ref.schemas if t.startswith(P + "hotline.")}
    assert hotline - set(types) == set()
    # every non-figure type of the contracts is modelled
    derived = tuple(P + d + "." for d in ("hotline", "indicators", "alerts"))  # not department systems' types
    department = {t for t in ref.schemas if not t.endswith(".figure.reported") and not t.startswith(derived)}
    dossier = {P + "admin_procedures." + n for n in ("dossier.received", "dossier.completed",
               "dossier.supplement_requested", "dossier.apology_issued", "fee.paid")}  # fmt: skip
    assert department - dossier - {P + t for t in ref.model["types"]} == set()


def test_hotline_volumes_match_domain(week: list[dict]) -> None:
    received = [e for e in week if e["type"] == P + "hotline.call.received"]
    per_line = Counter(e["data"]["line"] for e in received)
    assert per_line["1022"] / 7 == pytest.approx(400, rel=0.1)
    assert per_line["115"] / 7 == pytest.approx(10, rel=0.1)
    closed = [
        e["data"] for e in week if e["type"] in (P + "hotline.call.closed", P + "hotline.call.callback")
    ]
    rated = [d["satisfaction"] for d in closed if d["line"] == "1022" and "satisfaction" in d]
    assert sum(s >= 4 for s in rated) / len(rated) > 0.7
    forwarded = [
        e["data"] for e in week if e["type"] == P + "hotline.call.forwarded" and e["data"]["line"] == "115"
    ]
    assert len(forwarded) >= per_line["115"] - 1  # a call in the run's last minutes may end after it
    assert all("hospital" in d for d in forwarded)
    assert all(e["data"]["caller_number"].startswith("+84") for e in received)


def test_dossier_flow_matches_the_online_rate(week: list[dict]) -> None:
    received = [e["data"] for e in week if e["type"] == P + "admin_procedures.dossier.received"]
    online = sum(d["channel"] == "online" for d in received) / len(received)
    assert online == pytest.approx(0.76, rel=0.1)
    completed = [e["data"] for e in week if e["type"] == P + "admin_procedures.dossier.completed"]
    assert len(completed) > 0.3 * len(received)  # district/province dossiers take 5–20 working days
    on_time = sum(d["completed_at"] <= d["due_at"] for d in completed) / len(completed)
    assert 0.85 < on_time <= 1.0


def test_office_events_fall_in_working_hours(week: list[dict]) -> None:
    ref = load_reference(get_settings().contracts_dir)
    cal = Calendar(ref.model)
    office = {P + t for t, cfg in ref.model["types"].items() if cfg.get("profile") == "office"}
    office |= {P + "admin_procedures.dossier." + n for n in ("received", "completed", "supplement_requested")}
    checked = 0
    for e in week:
        if e["type"] in office:
            t = int(dt.datetime.fromisoformat(e["time"]).timestamp())
            assert cal.in_working_hours(t), f"{e['type']} at {e['time']}"
            checked += 1
    assert checked > 10_000


def test_reported_figures_are_emitted_at_the_end_of_their_periods(week: list[dict]) -> None:
    ref = load_reference(get_settings().contracts_dir)
    baselines = {
        i["id"]: i["baseline"]["value"] for i in ref.reported if "baseline" in i and i.get("unit") != "hạng"
    }
    figures = [e for e in week if e["type"].endswith(".figure.reported")]
    assert figures
    assert {"month", "quarter"} <= {e["data"]["cadence"] for e in figures}
    assert {e["data"]["period"] for e in figures if e["data"]["cadence"] == "quarter"} == {"2026-Q1"}
    for e in figures:
        d = e["data"]
        assert e["time"][11:16] == "23:50"
        if d["cadence"] == "day":
            assert d["period"] == e["time"][:10]
        if d["cadence"] == "week":
            assert dt.date.fromisoformat(e["time"][:10]).weekday() == 6
        if e["subject"] == "74" and d["indicator_id"] in baselines:
            assert d["value"] == pytest.approx(baselines[d["indicator_id"]], rel=0.2), d


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path, day1: Path) -> None:
    again = simulate(tmp_path, "again", "--days", "1", "--seed", "1")
    assert again.read_bytes() == day1.read_bytes()
    other = simulate(tmp_path, "other", "--days", "1", "--seed", "2")
    assert other.read_bytes() != day1.read_bytes()


def test_anomaly_multiplies_the_field_volume_in_the_district(tmp_path: Path, day1: Path) -> None:
    ref = load_reference(get_settings().contracts_dir)
    in_724 = {c for c in ref.communes if ref.units[c].parent == "724"}

    def count(events: list[dict], field: str) -> tuple[int, int]:
        inside = sum(1 for e in events if e["type"].startswith(P + field + ".") and e["subject"] in in_724)
        outside = sum(
            1 for e in events if e["type"].startswith(P + field + ".") and e["subject"] not in in_724
        )
        return inside, outside

    base_in, base_out = count(read(day1), "environment")
    hot = read(simulate(tmp_path, "anomaly", "--days", "1", "--seed", "1", "--anomaly", "environment:724:5"))
    hot_in, hot_out = count(hot, "environment")
    assert hot_in / base_in == pytest.approx(5, rel=0.2)
    assert hot_out == pytest.approx(base_out, rel=0.1)


def test_bad_rate_mixes_in_rejected_events_of_every_kind(tmp_path: Path) -> None:
    contracts = load_contracts()
    lines = (
        simulate(tmp_path, "bad", "--days", "1", "--seed", "3", "--bad-rate", "0.05")
        .read_bytes()
        .splitlines()
    )
    rejected, reasons = 0, Counter()
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:  # broken JSON (possibly cut inside a UTF-8 sequence)
            rejected += 1
            reasons["broken json"] += 1
            continue
        reason = contracts.check(obj)
        if reason:
            rejected += 1
            reasons[reason.split(":")[0].split(" ")[0]] += 1
    assert rejected / len(lines) == pytest.approx(0.05, rel=0.15)
    assert {"broken json", "unknown", "envelope", "data"} <= set(reasons), reasons


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--anomaly", "environment:999:2"], "FIELD:DISTRICT:FACTOR"),
        (["--anomaly", "nonsense"], "FIELD:DISTRICT:FACTOR"),
        (["--anomaly", "environment:724:-1"], "FACTOR"),
        (["--start", "2026-13-01"], "YYYY-MM-DD"),
        (["--bad-rate", "1.5"], "fraction"),
        (["--out", "gateway"], "kafka or file"),
    ],
)
def test_bad_options_are_explained(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["simulate", "--out", "file", "--file", str(tmp_path / "x.jsonl"), *args])
    assert result.exit_code == 2
    assert message in result.output
