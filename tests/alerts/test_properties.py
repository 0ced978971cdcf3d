"""Property tests: any sequence of indicator updates, commands and timer ticks leaves every alert in a valid
state, at most one open alert per rule × unit, rejected commands change nothing, and folding the events
emitted so far reproduces the state exactly."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.alerts.lifecycle import OPEN, STATES, Alert, Core, fold
from services.alerts.rules import Bounds, Maintenance
from tests.alerts.test_lifecycle import T0, UNITS, rule

RULES = [
    rule(),  # above 100, clear 80
    rule(
        id="environment.spike",
        kind="change",
        direction="both",
        bounds=Bounds(threshold=50, clear=20),
        severity="info",
        flap_window_s=600,
    ),  # fmt: skip
    rule(
        id="environment.band",
        kind="outside",
        bounds=Bounds(low=10, high=150, clear_low=20, clear_high=140),
        for_duration_s=120,
        levels=("district", "commune"),
    ),  # fmt: skip
]
MAINT = [Maintenance("m", "724", frozenset(), frozenset({"mon"}), 9 * 60 + 30, 10 * 60)]
UNIT_CODES = ["718", "724", "25747"]
PERIODS = ["2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23"]

update = st.tuples(
    st.sampled_from(["update", "report"]),
    st.sampled_from(UNIT_CODES),
    st.sampled_from(PERIODS),
    st.sampled_from([0, 5, 15, 50, 79, 80, 85, 100, 101, 145, 160, 300]),
    st.integers(0, 900),
)
command = st.tuples(
    st.just("command"),
    st.sampled_from(["acknowledge", "assign", "comment", "resolve", "silence"]),
    st.integers(0, 9),  # which alert (index into the known ones)
    st.sampled_from(
        [
            ("district_operator", "718"),
            ("district_operator", "724"),
            ("province_admin", None),
            ("province_viewer", None),
            ("department_system", None),
        ]
    ),  # fmt: skip
    st.sampled_from([None, None, None, None, 0, 1, 2, 3, 4, 5]),  # expected_version (often stale when given)
    st.sampled_from([None, None, None, 0, 1]),  # command id reuse (None: a new one)
    st.integers(0, 900),
)
tick = st.tuples(
    st.just("tick"), st.one_of(st.integers(0, 2000), st.integers(0, 90_000))
)  # no-data deadlines pass


def valid(a: Alert) -> None:
    assert a.state in STATES and a.version >= 1
    if a.state in ("acknowledged", "assigned"):
        assert a.acknowledged_by
    if a.state == "assigned":
        assert a.assignee
    assert (a.state == "resolved") == (a.resolved_at is not None)
    assert a.alert_id.startswith(f"{a.rule}|{a.unit}|")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(update, update, command, tick), max_size=60))
def test_any_sequence_leaves_valid_alerts_and_replay_reproduces_them(ops):
    core = Core(RULES, UNITS, MAINT)
    log: list = []
    now = T0
    for n, op in enumerate(ops):
        now += op[-1]
        if op[0] in ("update", "report"):
            kind, unit, period, value, _ = op
            level = UNITS[unit].level
            indicator = "environment.wastewater_results" if kind == "update" else "environment.report"
            data = {"indicator": indicator, "cadence": "day", "level": level, "unit": unit,
                    "period": period, "period_start": period, "value": value}  # fmt: skip
            events = core.decide_update(data, now)
        elif op[0] == "command":
            _, action, which, (role, district), expected, reuse, _ = op
            ids = sorted(core.alerts) or ["environment.volume_high|718|1"]
            aid = ids[which % len(ids)]
            before = dict(core.alerts)
            c = {"command_id": f"cmd-{reuse if reuse is not None else f'new-{n}'}-0000", "alert_id": aid,
                 "action": action, "actor": {"id": f"op.{district}", "role": role, "district": district},
                 "note": "ghi chú", "assignee": "cb.1", "silence": {"recurring": "mon,tue 09:00-12:00"}}  # fmt: skip
            if expected is not None:
                c["expected_version"] = expected
            events, result = core.decide_command(c, now)
            if result["outcome"] == "rejected":
                assert events == [] and core.alerts == before and " / " in result["reason"]
        else:
            events, _ = core.decide_tick(now)
        core.apply_events(events)
        log += events
        if op[0] == "command" and result["outcome"] == "applied" and events:
            assert (result["version"], result["state"]) == (core.alerts[aid].version, core.alerts[aid].state)
        for a in core.alerts.values():
            valid(a)
        open_keys = [(a.rule, a.unit) for a in core.alerts.values() if a.state in OPEN]
        assert len(open_keys) == len(set(open_keys)), "one open alert per rule × unit"
        by_alert = sorted(log, key=lambda e: (e[1]["alert_id"], e[1]["version"]))
        assert fold(by_alert) == core.alerts
        assert core.open_ids == {aid for aid, a in core.alerts.items() if a.state in OPEN}
