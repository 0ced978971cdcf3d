"""The pure alert core: rules' verdicts with hysteresis, the lifecycle, commands' permissions, timers, fold."""

from __future__ import annotations

import datetime as dt

import pytest

from services.alerts.lifecycle import Core, InvalidEvent, UnitInfo, apply, fold
from services.alerts.rules import TZ, Bounds, Maintenance, Rule, due_period, in_window, parse_recurring

T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=TZ).timestamp()  # a Monday
UNITS = {
    "74": UnitInfo("province", "74"),
    "718": UnitInfo("district", "718"),
    "724": UnitInfo("district", "724"),
    "25747": UnitInfo("commune", "718"),
}


def rule(**kw) -> Rule:
    base = dict(
        id="environment.volume_high",
        field="environment",
        indicator="environment.wastewater_results",
        levels=("district",),
        cadence="day",
        kind="above",
        bounds=Bounds(threshold=100, clear=80),
        severity="critical",
        title_vi="Số kết quả quan trắc tăng bất thường",
        title_en="Results abnormally high",
        sop_vi="1. Kiểm tra số liệu.",
        escalate_after_s=900,
        flap_window_s=3600,
    )
    base.update(kw)
    return Rule(**base)


def upd(
    value,
    unit="718",
    period="2026-11-23",
    level="district",
    indicator="environment.wastewater_results",
    cadence="day",
):
    return {"indicator": indicator, "cadence": cadence, "level": level, "unit": unit, "period": period,
            "period_start": period if cadence == "day" else "2026-11-01", "value": value}  # fmt: skip


def step(core: Core, events):
    core.apply_events(events)
    return events


def cmd(action, alert_id, district="718", role="district_operator", cid=None, **kw):
    import uuid

    return {"command_id": cid or str(uuid.uuid4()), "alert_id": alert_id, "action": action,
            "actor": {"id": f"op.{district}", "role": role, "district": district}, **kw}  # fmt: skip


def test_above_fires_once_holds_in_the_band_and_resolves_past_the_clear_threshold():
    core = Core([rule()], UNITS)
    assert step(core, core.decide_update(upd(90), T0)) == []
    [(t, d)] = step(core, core.decide_update(upd(120), T0 + 1))
    assert (t, d["state"], d["district"], d["threshold"], d["value"]) == ("raised", "firing", "718", 100, 120)
    assert step(core, core.decide_update(upd(150), T0 + 2)) == []  # dedup: one open alert per rule × unit
    assert step(core, core.decide_update(upd(85), T0 + 3)) == []  # between clear and threshold: holds
    [(t, d)] = step(core, core.decide_update(upd(80), T0 + 4))
    assert (t, d["state"], d["actor"], d["version"]) == ("resolved", "resolved", "system", 2)


def test_fires_again_within_the_flap_window_reopens_after_it_raises_a_new_alert():
    core = Core([rule()], UNITS)
    [(_, raised)] = step(core, core.decide_update(upd(120), T0))
    step(core, core.decide_update(upd(50), T0 + 10))
    [(t, d)] = step(core, core.decide_update(upd(130), T0 + 600))
    assert (t, d["alert_id"], d["version"]) == ("reopened", raised["alert_id"], 3)
    step(core, core.decide_update(upd(50), T0 + 700))
    [(t, d)] = step(core, core.decide_update(upd(130), T0 + 700 + 3601))
    assert t == "raised" and d["alert_id"] != raised["alert_id"] and d["alert_id"].endswith("|2")


def test_per_unit_override_and_levels():
    core = Core([rule(overrides={"724": Bounds(threshold=500, clear=400)})], UNITS)
    assert core.decide_update(upd(120, unit="724"), T0) == []
    assert core.decide_update(upd(120, unit="25747", level="commune"), T0) == []  # not a rule level
    [(t, _)] = core.decide_update(upd(501, unit="724"), T0)
    assert t == "raised"


def test_for_n_consecutive_windows():
    core = Core([rule(for_windows=2)], UNITS)
    assert step(core, core.decide_update(upd(120, period="2026-11-21"), T0)) == []
    assert (
        step(core, core.decide_update(upd(120, period="2026-11-23"), T0)) == []
    )  # 22nd missing: not consecutive
    [(t, _)] = step(core, core.decide_update(upd(130, period="2026-11-24"), T0))
    assert t == "raised"


def test_for_a_duration_fires_on_the_timer():
    core = Core([rule(for_duration_s=600)], UNITS)
    assert step(core, core.decide_update(upd(120), T0)) == []
    events, _ = core.decide_tick(T0 + 300)
    assert events == []
    events, _ = core.decide_tick(T0 + 601)
    assert [t for t, _ in events] == ["raised"]


def test_change_versus_previous_window_and_target():
    change = rule(
        id="environment.spike", kind="change", direction="up", bounds=Bounds(threshold=200, clear=100)
    )
    core = Core([change], UNITS)
    assert core.decide_update(upd(10, period="2026-11-22"), T0) == []
    [(t, d)] = step(core, core.decide_update(upd(35, period="2026-11-23"), T0))
    assert t == "raised" and "+250.0%" in d["reason"]
    target = rule(id="documents.rate", field="documents", indicator="documents.rate", kind="target",
                  levels=("district", "province"), bounds=Bounds(clear_margin=2),
                  targets={"district": (75.0, ">="), "province": (85.0, ">=")})  # fmt: skip
    core = Core([target], UNITS)
    assert core.decide_update(upd(80, indicator="documents.rate"), T0) == []
    [(t, d)] = step(
        core, core.decide_update(upd(80, unit="74", level="province", indicator="documents.rate"), T0)
    )
    assert (t, d["threshold"]) == ("raised", 85.0)
    assert (
        step(core, core.decide_update(upd(86, unit="74", level="province", indicator="documents.rate"), T0))
        == []
    )
    [(t, _)] = step(
        core, core.decide_update(upd(87, unit="74", level="province", indicator="documents.rate"), T0)
    )
    assert t == "resolved"


def test_commands_walk_the_lifecycle_and_bad_ones_change_nothing():
    core = Core([rule()], UNITS)
    [(_, d)] = step(core, core.decide_update(upd(120), T0))
    aid = d["alert_id"]
    ev, res = core.decide_command(cmd("acknowledge", aid, note="đang xác minh", expected_version=1), T0 + 5)
    step(core, ev)
    assert res["outcome"] == "applied" and core.alerts[aid].acknowledged_by == "op.718"
    assert ev[0][1]["note"] == "đang xác minh"
    for bad, why in [
        (cmd("acknowledge", aid, district="724"), "724"),  # another district's operator
        (cmd("acknowledge", aid), "acknowledged"),  # impossible transition
        (cmd("resolve", aid, expected_version=1), "stale"),  # stale version
        (cmd("resolve", aid, role="province_viewer", district=None), "province_viewer"),
        (cmd("assign", aid), "assignee"),
    ]:
        before = core.alerts[aid]
        ev, res = core.decide_command(bad, T0 + 6)
        assert ev == [] and res["outcome"] == "rejected" and why in res["reason"], res
        assert " / " in res["reason"] and core.alerts[aid] == before
    ev, res = core.decide_command(
        cmd("assign", aid, assignee="cb.718", role="province_admin", district=None), T0 + 7
    )
    step(core, ev)
    assert core.alerts[aid].state == "assigned" and core.alerts[aid].assignee == "cb.718"
    c = cmd("resolve", aid, note="xong")
    ev, res = core.decide_command(c, T0 + 8)
    step(core, ev)
    assert (res["outcome"], res["state"], res["version"]) == ("applied", "resolved", 4)
    again, res2 = core.decide_command(c, T0 + 9)  # redelivered: same result, no new event
    assert again == [] and res2 == res


def test_escalation_unless_acknowledged_or_silenced():
    core = Core([rule()], UNITS)
    [(_, a)] = step(core, core.decide_update(upd(120), T0))
    [(_, b)] = step(core, core.decide_update(upd(120, unit="724"), T0))
    step(core, core.decide_command(cmd("acknowledge", a["alert_id"]), T0 + 60)[0])
    silence = {"until": dt.datetime.fromtimestamp(T0 + 7200, TZ).isoformat()}
    step(
        core, core.decide_command(cmd("silence", b["alert_id"], district="724", silence=silence), T0 + 60)[0]
    )
    assert core.alerts[b["alert_id"]].silenced
    assert core.decide_tick(T0 + 901)[0] == []
    events, _ = core.decide_tick(T0 + 7201)  # the silence is over
    [(t, d)] = events
    assert (t, d["alert_id"], d["escalated"], d["state"]) == ("escalated", b["alert_id"], True, "firing")


def test_maintenance_window_silences_but_keeps_the_record():
    sat_night = dt.datetime(2026, 11, 28, 22, 30, tzinfo=TZ).timestamp()
    core = Core([rule()], UNITS, [Maintenance("m", "718", frozenset(), frozenset({"sat"}), 22 * 60, 24 * 60)])
    [(t, d)] = core.decide_update(upd(120), sat_night)
    assert t == "raised" and d["silenced"] is True
    [(t, d)] = core.decide_update(upd(120, unit="724"), sat_night)
    assert d["silenced"] is False


def test_no_data_fires_after_the_deadline_resolves_when_reported_and_scores_timeliness():
    nd = rule(id="environment.report.not_reported", indicator="environment.report", kind="no_data",
              levels=("district",), cadence="month", grace_days=10)  # fmt: skip
    core = Core([nd], UNITS)
    # 724 reported October on time (before 10 November), 718 never
    core.decide_update(upd(5, unit="724", indicator="environment.report", cadence="month", period="2026-10") | {"period_start": "2026-10-01"},
                       dt.datetime(2026, 11, 3, tzinfo=TZ).timestamp())  # fmt: skip
    events, figures = core.decide_tick(T0)
    assert [(t, d["unit"], d["period"], d["value"]) for t, d in events] == [
        ("raised", "718", "2026-10", None)
    ]
    assert figures == [{"field": "environment", "cadence": "month", "period": "2026-10", "value": 50.0}]
    step(core, events)
    assert core.decide_tick(T0 + 5) == ([], [])  # no duplicate alert, the figure is sent once
    [(t, d)] = core.decide_update(upd(7, indicator="environment.report", cadence="month", period="2026-10") | {"period_start": "2026-10-01"}, T0 + 60)  # fmt: skip
    assert (t, d["actor"]) == ("resolved", "system")


def test_fold_of_the_events_gives_the_same_state_and_refuses_a_broken_history():
    core = Core([rule()], UNITS)
    log = []
    log += step(core, core.decide_update(upd(120), T0))
    aid = log[0][1]["alert_id"]
    log += step(core, core.decide_command(cmd("acknowledge", aid), T0 + 1)[0])
    log += step(core, core.decide_update(upd(10), T0 + 2))
    log += step(core, core.decide_update(upd(200), T0 + 3))
    assert [t for t, _ in log] == ["raised", "acknowledged", "resolved", "reopened"]
    assert fold(log) == core.alerts
    with pytest.raises(InvalidEvent):
        fold([log[0], log[2], log[1]])
    with pytest.raises(InvalidEvent):
        apply(None, "acknowledged", log[1][1])


def test_period_helpers():
    assert due_period("month", 10, T0)[0] == "2026-10"
    assert due_period("month", 10, dt.datetime(2026, 11, 9, tzinfo=TZ).timestamp())[0] == "2026-09"
    assert due_period("quarter", 20, T0)[0] == "2026-Q3"
    assert due_period("year", 45, T0)[0] == "2025"
    assert due_period("week", 2, T0)[0] == "2026-W46"  # W47 is due on 25 November
    days, a, b = parse_recurring("fri,sat 22:00-02:00")
    sat_1am = dt.datetime(2026, 11, 28, 1, 0, tzinfo=TZ).timestamp()
    sun_1am = dt.datetime(2026, 11, 30, 1, 0, tzinfo=TZ).timestamp()
    assert in_window(days, a, b, sat_1am) and not in_window(days, a, b, sun_1am)


def test_one_off_district_maintenance_from_the_shipped_data():
    from ioccore.catalog import load_catalog
    from services.alerts.rules import load_maintenance

    [m] = [m for m in load_maintenance(load_catalog()) if m.id == "di_an_network_upgrade_2026_12"]
    during = dt.datetime(2026, 12, 6, 1, 0, tzinfo=TZ).timestamp()
    assert m.covers("724", "digital_infrastructure", during)
    assert not m.covers("724", "environment", during)  # another field
    assert not m.covers("718", "digital_infrastructure", during)  # another district
    assert not m.covers("724", "digital_infrastructure", during + 86400)  # over


def test_no_data_alert_once_per_missing_period_and_only_that_period_resolves_it():
    nd = rule(id="environment.report.not_reported", indicator="environment.report", kind="no_data",
              levels=("district",), cadence="month", grace_days=10)  # fmt: skip
    core = Core([nd], {"718": UNITS["718"]})
    [(_, d)] = step(core, core.decide_tick(T0)[0])
    aid, report = d["alert_id"], {"indicator": "environment.report", "cadence": "month", "level": "district", "unit": "718"}  # fmt: skip
    # November reported, October still missing: stays open
    assert (
        core.decide_update(report | {"period": "2026-11", "period_start": "2026-11-01", "value": 3}, T0 + 1)
        == []
    )
    # an operator resolves it (will chase the department): the next ticks do not raise it again
    step(core, core.decide_command(cmd("resolve", aid, note="đã nhắc Sở"), T0 + 2)[0])
    assert core.decide_tick(T0 + 60)[0] == []
    # on 10 December October is still the due period (resolved by the operator): nothing; November was
    # reported; December is missing by its deadline (11 January): a new alert
    assert core.decide_tick(dt.datetime(2026, 12, 10, 0, 1, tzinfo=TZ).timestamp())[0] == []
    [(t, d)] = core.decide_tick(dt.datetime(2027, 1, 11, 0, 1, tzinfo=TZ).timestamp())[0]
    assert (t, d["period"], d["alert_id"]) == ("raised", "2026-12", aid.replace("|1", "|2"))
