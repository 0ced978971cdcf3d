"""The indicators engine on the real catalog, without I/O: periods, roll-up, late and corrected data, bad units,
and determinism (any batching gives the same state)."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from ioccore.catalog import load_catalog
from ioccore.contracts import CloudEvent
from services.indicators.engine import Engine, Lateness, PartitionState, series_value
from services.indicators.model import CADENCE_RANK, boundaries, compile_model, local_day, period_labels

VN = dt.timezone(dt.timedelta(hours=7))
DAY, WEEK, MONTH, QUARTER, YEAR = (CADENCE_RANK[c] for c in ("day", "week", "month", "quarter", "year"))


@lru_cache(maxsize=1)
def _setup():
    catalog = load_catalog()
    return catalog, compile_model(catalog)


def _engine(boundary_set: str = "2024", **lateness) -> Engine:
    catalog, model = _setup()
    return Engine(model, boundaries(catalog, boundary_set), Lateness(**lateness) if lateness else None)


def _dossier(i: int, when: dt.datetime, subject: str = "25747", online: bool = False) -> CloudEvent:
    return CloudEvent(
        id=f"d-{i}",
        source="/so-tttt/mot-cua",
        type="vn.binhduong.admin_procedures.dossier.received",
        time=when,
        subject=subject,
        data={
            "dossier_id": f"D{i}",
            "procedure_code": "1.001234",
            "procedure_group": "dat-dai",
            "level": "commune",
            "channel": "online" if online else "direct",
        },
    )


def _figure(
    i: int, when: dt.datetime, value: float, subject: str = "74", restates: bool = False
) -> CloudEvent:
    return CloudEvent(
        id=f"f-{i}",
        source="/so-tttt/mot-cua",
        type="vn.binhduong.admin_procedures.figure.reported",
        time=when,
        subject=subject,
        data={
            "indicator_id": "admin_procedures.procedures_total",
            "period": "2026-Q1",
            "cadence": "quarter",
            "value": value,
            "restates": restates,
        },
    )


def _value(engine: Engine, part: PartitionState, key) -> float | None:
    st = engine.series_of(part).get(key)
    return None if st is None else series_value(engine.spec_of_index[key[0]], st)


def test_periods_are_local_days_iso_weeks_months_quarters_years():
    # 2026-01-01 00:30 in Hồ Chí Minh City is still 2025-12-31 in UTC
    t = dt.datetime(2026, 1, 1, 0, 30, tzinfo=VN)
    assert period_labels(local_day(t.timestamp())) == ("2026-01-01", "2026-W01", "2026-01", "2026-Q1", "2026")
    # ISO week 53 of 2026 ends on Sunday 2027-01-03
    t = dt.datetime(2027, 1, 3, 12, tzinfo=VN)
    assert period_labels(local_day(t.timestamp()))[:2] == ("2027-01-03", "2026-W53")


def test_a_commune_event_counts_for_its_commune_district_and_province_in_every_cadence():
    engine = _engine()
    part = PartitionState(0)
    applied = engine.apply(part, [(0, [(0, _dossier(1, dt.datetime(2026, 3, 5, 9, tzinfo=VN)))])])
    assert not applied.rejected
    for unit in ("25747", "718", "74"):
        for c, period in (
            (DAY, "2026-03-05"),
            (WEEK, "2026-W10"),
            (MONTH, "2026-03"),
            (QUARTER, "2026-Q1"),
            (YEAR, "2026"),
        ):
            assert _value(engine, part, ("admin_procedures.dossiers_received", c, unit, period)) == 1.0
    assert part.next_offset == 1


def test_a_late_event_updates_the_window_it_belongs_to_and_is_counted_late():
    engine = _engine()
    part = PartitionState(0)
    engine.apply(part, [(0, [(0, _dossier(1, dt.datetime(2026, 3, 10, 9, tzinfo=VN)))])])
    applied = engine.apply(part, [(1, [(0, _dossier(2, dt.datetime(2026, 3, 5, 9, tzinfo=VN)))])])
    assert applied.late["/so-tttt/mot-cua"] == 1 and not applied.rejected
    assert _value(engine, part, ("admin_procedures.dossiers_received", DAY, "74", "2026-03-05")) == 1.0
    assert _value(engine, part, ("admin_procedures.dossiers_received", MONTH, "74", "2026-03")) == 2.0


def test_an_event_later_than_the_allowed_lateness_is_dead_lettered_with_the_reason():
    engine = _engine(events_s=2 * 86400)
    part = PartitionState(0)
    engine.apply(part, [(0, [(0, _dossier(1, dt.datetime(2026, 3, 10, 9, tzinfo=VN)))])])
    applied = engine.apply(part, [(1, [(0, _dossier(2, dt.datetime(2026, 3, 5, 9, tzinfo=VN)))])])
    assert len(applied.rejected) == 1 and "too late" in applied.rejected[0].reason
    assert _value(engine, part, ("admin_procedures.dossiers_received", MONTH, "74", "2026-03")) == 1.0


def test_a_restated_figure_replaces_the_earlier_one():
    engine = _engine()
    part = PartitionState(0)
    key = ("admin_procedures.procedures_total", QUARTER, "74", "2026-Q1")
    engine.apply(part, [(0, [(0, _figure(1, dt.datetime(2026, 4, 2, 8, tzinfo=VN), 1886))])])
    assert _value(engine, part, key) == 1886.0
    engine.apply(part, [(1, [(0, _figure(2, dt.datetime(2026, 4, 9, 8, tzinfo=VN), 1890, restates=True))])])
    assert _value(engine, part, key) == 1890.0
    # an older report arriving after the restatement does not win
    engine.apply(part, [(2, [(0, _figure(3, dt.datetime(2026, 4, 3, 8, tzinfo=VN), 1700))])])
    assert _value(engine, part, key) == 1890.0


def test_an_unknown_unit_is_dead_lettered_and_redelivered_records_are_skipped():
    engine = _engine()
    part = PartitionState(0)
    applied = engine.apply(
        part, [(0, [(0, _dossier(1, dt.datetime(2026, 3, 5, 9, tzinfo=VN), subject="99999"))])]
    )
    assert "99999" in applied.rejected[0].reason and not engine.series_of(part)
    engine.apply(part, [(1, [(0, _dossier(2, dt.datetime(2026, 3, 5, 9, tzinfo=VN)))])])
    again = engine.apply(part, [(1, [(0, _dossier(2, dt.datetime(2026, 3, 5, 9, tzinfo=VN)))])])
    assert not again.accepted and not again.changed and not len(again.changed_codes)
    assert _value(engine, part, ("admin_procedures.dossiers_received", DAY, "74", "2026-03-05")) == 1.0


def test_any_batching_gives_the_same_state():
    records = [
        (
            i,
            [
                (
                    0,
                    _dossier(
                        i,
                        dt.datetime(2026, 3, 1 + i % 20, 8 + i % 9, tzinfo=VN),
                        ["25747", "25750", "718"][i % 3],
                        online=i % 2 == 0,
                    ),
                )
            ],
        )
        for i in range(60)
    ]
    engine = _engine()
    whole, pieces = PartitionState(0), PartitionState(0)
    engine.apply(whole, records)
    for start in range(0, 60, 7):
        engine.apply(pieces, records[start : start + 7])
    dumped = [{k: v.dump() for k, v in engine.series_of(p).items()} for p in (whole, pieces)]
    assert dumped[0] == dumped[1] and dumped[0]


def test_under_units_2025_old_communes_count_in_their_new_commune_and_districts_vanish():
    engine = _engine("2025")
    part = PartitionState(0)
    engine.apply(part, [(0, [(0, _dossier(1, dt.datetime(2026, 3, 5, 9, tzinfo=VN), subject="25741"))])])
    units = {k[2] for k in engine.series_of(part) if k[0] == "admin_procedures.dossiers_received"}
    province = next(u.code for u in _setup()[0].units_by_set["2025"] if u.level == "province")
    # 25741 (Hiệp Thành) went to Phú Lợi (25750) by default; the 2025 set has no district level
    assert units == {"25750", province}


def test_a_re_sent_event_counts_once_and_its_memory_ends_with_the_lateness_window():
    engine = _engine(events_s=7 * 86400)
    part = PartitionState(0)
    when = dt.datetime(2026, 3, 5, 9, tzinfo=VN)
    engine.apply(part, [(0, [(0, _dossier(1, when)), (1, _dossier(2, when))])])
    again = engine.apply(
        part, [(5, [(0, _dossier(1, when)), (1, _dossier(3, when))])]
    )  # 1 re-sent at offset 5
    assert again.duplicates == {"/so-tttt/mot-cua": 1}
    assert [ev.id for ev in again.accepted] == ["d-3"]
    assert _value(engine, part, ("admin_procedures.dossiers_received", DAY, "74", "2026-03-05")) == 3.0
    # ten days on, the day of the first events is beyond the lateness window: its identities are forgotten
    engine.apply(part, [(6, [(0, _dossier(4, when + dt.timedelta(days=10)))])])
    assert local_day(when.timestamp()) not in part.seen
