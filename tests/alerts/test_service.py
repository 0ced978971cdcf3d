"""The alerts service on ClickHouse (18.16 server and current ClickHouse via chdb), with the shipped rules:
updates and commands in, valid CloudEvents out, alert_events + alerts written, state rebuilt from them."""

from __future__ import annotations

import json
import uuid

import msgspec
import pytest

from ioccore.catalog import load_catalog
from ioccore.contracts import load_contracts
from ioccore.topics import ALERT_COMMAND_RESULTS, ALERTS, EVENTS
from services.alerts import store
from services.alerts.service import AlertsService, build_core
from tests.alerts.test_lifecycle import T0

pytestmark = pytest.mark.clickhouse
RULE = "environment.volume_high"
IND = "environment.wastewater_results"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def row(value: float, version: int, period="2026-11-23", indicator=IND, cadence="day") -> dict:
    start = period if cadence == "day" else "2026-11-23"  # the rows of other cadences here: the week 2026-W48
    return {"indicator": indicator, "cadence": cadence, "period": period, "period_start": start,
            "value": value, "n": int(value), "version": version}  # fmt: skip


def update_record(
    unit: str, value: float, version: int, period="2026-11-23", level="district", others=()
) -> bytes:
    """One record of ioc.indicators as the indicators service sends it: one values.updated event of the unit,
    its row of IND after the `others`."""
    event = {
        "specversion": "1.0",
        "id": f"v1|{unit}|{version}|{len(others) + 1}|0",
        "source": "urn:ioc:indicators",
        "type": "vn.binhduong.indicators.values.updated",
        "time": "2026-11-23T10:15:02+07:00",
        "subject": unit,
        "datacontenttype": "application/json",
        "data": {"version_set": "v1", "level": level, "unit": unit,
                 "values": [*others, row(value, version, period)]},
    }  # fmt: skip
    return msgspec.json.encode(event)


def command_record(action: str, alert_id: str, district: str | None, role="district_operator", **kw) -> bytes:
    cid = str(uuid.uuid4())
    event = {
        "specversion": "1.0",
        "id": cid,
        "source": "urn:ioc:gateway",
        "type": "vn.binhduong.alerts.command",
        "time": "2026-11-23T10:20:00+07:00",
        "subject": alert_id.split("|")[1],
        "data": {"command_id": cid, "alert_id": alert_id, "action": action,
                 "actor": {"id": f"op.{district}", "role": role, "district": district}, **kw},
    }  # fmt: skip
    return msgspec.json.encode(event)


def published(step, topic):
    return [json.loads(v) for t, _, v in step.records if t == topic]


def test_updates_and_commands_through_clickhouse_and_rebuilt_from_it(clickhouse, catalog):
    contracts = load_contracts()
    svc = AlertsService(clickhouse, contracts, build_core(clickhouse, catalog))
    # 1669 is district 718's own threshold (a per-unit override); 724's is 2094
    step = svc.updates([update_record("718", 1500, 1), update_record("724", 1800, 1)], T0)
    assert step.events == 0 and step.updates == 2
    step = svc.updates([update_record("718", 1700, 2), b"{not json", update_record("724", 1900, 2)], T0 + 1)
    [raised] = published(step, ALERTS)
    assert raised["type"] == "vn.binhduong.alerts.raised"
    assert (raised["subject"], raised["data"]["district"], raised["data"]["threshold"]) == (
        "718",
        "718",
        1669,
    )
    assert len(step.dead) == 1 and "JSON" in step.dead[0][2]
    aid = raised["data"]["alert_id"]

    step = svc.commands([command_record("acknowledge", aid, "724")], T0 + 2)  # another district's operator
    [res] = published(step, ALERT_COMMAND_RESULTS)
    assert res["data"]["outcome"] == "rejected" and "724" in res["data"]["reason"] and step.events == 0
    step = svc.commands(
        [
            command_record("acknowledge", aid, "718", note="Đang xác minh", expected_version=1),
            command_record("assign", aid, "718", assignee="cb.718.tranthib", expected_version=2),
            command_record("comment", aid, "718", note="Trạm gửi trùng dữ liệu"),
        ],
        T0 + 3,
    )
    assert [r["data"]["outcome"] for r in published(step, ALERT_COMMAND_RESULTS)] == ["applied"] * 3
    step = svc.updates([update_record("718", 1200, 3)], T0 + 4)  # 1200 <= clear 1251: auto-resolved
    [resolved] = published(step, ALERTS)
    assert (resolved["type"], resolved["data"]["actor"], resolved["data"]["version"]) == (
        "vn.binhduong.alerts.resolved", "system", 5,
    )  # fmt: skip

    # the timeline and the current state in ClickHouse
    tl = store.timeline(clickhouse, aid)
    assert [e["transition"] for e in tl] == ["raised", "acknowledged", "assigned", "commented", "resolved"]
    assert tl[1]["actor"] == "op.718" and tl[1]["note"] == "Đang xác minh"
    [row] = store.query(clickhouse, district="718", field="environment", severity="critical")
    assert (row["state"], row["version"], row["assignee"], row["acknowledged_by"]) == (
        "resolved", 5, "cb.718.tranthib", "op.718",
    )  # fmt: skip
    assert store.query(clickhouse, district="718", state="firing") == []
    assert store.query(clickhouse, district="724") == []

    # every event written is a valid CloudEvent of the contracts
    for rec in published(step, ALERTS) + [raised, res]:
        assert contracts.check(rec) is None, contracts.check(rec)

    # a restart: the state folded from alert_events is the state in memory; a redelivery changes nothing
    rebuilt = build_core(clickhouse, catalog)
    assert rebuilt.alerts == svc.core.alerts
    again = AlertsService(clickhouse, contracts, rebuilt).updates([update_record("718", 1200, 3)], T0 + 5)
    assert again.events == 0
    assert len(store.timeline(clickhouse, aid)) == 5


def test_timeliness_figures_and_no_data_alerts_are_valid_events(clickhouse, catalog):
    contracts = load_contracts()
    svc = AlertsService(clickhouse, contracts, build_core(clickhouse, catalog))
    step = svc.tick(T0)
    alerts = published(step, ALERTS)
    figures = published(step, EVENTS)
    no_data = {r.id for r in svc.core.rules.values() if r.kind == "no_data"}
    assert alerts and {a["data"]["rule"] for a in alerts} <= no_data
    assert {a["data"]["value"] for a in alerts} == {None}
    assert figures and all(contracts.check(f) is None for f in figures + alerts)
    indicators = {i.id for i in catalog.indicators}
    assert {f["data"]["indicator_id"] for f in figures} <= indicators
    assert {f["data"]["value"] for f in figures} == {0.0}  # nothing was reported
    assert svc.tick(T0 + 5).records == []  # nothing new


def test_a_bad_update_in_a_batch_is_dead_lettered_and_the_rest_is_judged(clickhouse, catalog):
    svc = AlertsService(clickhouse, load_contracts(), build_core(clickhouse, catalog))
    good = json.loads(update_record("718", 1700, 1))
    bad = json.loads(update_record("724", 1, 1))
    bad["data"]["values"][0]["cadence"] = "hour"
    step = svc.updates([json.dumps([bad, good]).encode()], T0)
    assert [json.loads(v)["type"] for t, _, v in step.records if t == ALERTS] == [
        "vn.binhduong.alerts.raised"
    ]
    [(_, raw, reason)] = step.dead
    assert "cadence" in reason and json.loads(raw)["subject"] == "724"


def test_an_event_of_many_rows_judges_each_watched_row_and_skips_the_rest(clickhouse, catalog):
    svc = AlertsService(clickhouse, load_contracts(), build_core(clickhouse, catalog))
    assert ("admin_procedures.dossiers_received", "day") not in svc.core.by_indicator
    assert (IND, "week") not in svc.core.by_indicator
    others = [
        row(5000, 1, indicator="admin_procedures.dossiers_received"),  # no rule watches it
        row(9000, 1, "2026-W48", cadence="week"),  # the rule watches IND by day only
        row(1500, 1, "2026-11-22"),  # below 718's threshold (1669)
    ]
    step = svc.updates([update_record("718", 1700, 1, others=others)], T0)
    assert step.updates == 2 and step.dead == []
    [raised] = published(step, ALERTS)
    assert raised["type"] == "vn.binhduong.alerts.raised"
    assert (raised["subject"], raised["data"]["rule"], raised["data"]["period"], raised["data"]["value"]) == (
        "718", RULE, "2026-11-23", 1700,
    )  # fmt: skip
    # the unit and level are the event's: the same rows for a commune are judged by no district rule
    step = svc.updates([update_record("25747", 1800, 2, level="commune", others=others)], T0 + 1)
    assert step.events == 0


def test_reconcile_finds_the_current_state_equal_to_the_fold_and_names_a_divergence(clickhouse, catalog):
    from services.alerts.reconcile import reconcile

    svc = AlertsService(clickhouse, load_contracts(), build_core(clickhouse, catalog))
    svc.updates([update_record("718", 1700, 1), update_record("724", 2100, 1)], T0)
    aid = next(a for a in svc.core.alerts if "|718|" in a)
    svc.commands([command_record("acknowledge", aid, "718")], T0 + 1)
    assert reconcile(clickhouse) == {"checked": 2, "mismatches": 0, "examples": []}
    # a row of `alerts` that no event explains
    row = {k: [v] for k, v in store.query(clickhouse, district="718")[0].items()}
    row["version"], row["state"] = [7], ["resolved"]
    clickhouse.insert("alerts", row)
    report = reconcile(clickhouse)
    assert report["mismatches"] == 1 and aid in report["examples"][0]


def test_an_invalid_command_is_dead_lettered_and_its_sender_gets_the_reason(clickhouse, catalog):
    svc = AlertsService(clickhouse, load_contracts(), build_core(clickhouse, catalog))
    cmd = json.loads(command_record("acknowledge", f"{RULE}|718|1", "718"))
    cmd["data"]["action"] = "delete"
    step = svc.commands([json.dumps(cmd).encode()], T0)
    [res] = published(step, ALERT_COMMAND_RESULTS)
    assert res["data"]["command_id"] == cmd["data"]["command_id"] and res["data"]["outcome"] == "rejected"
    assert "action" in res["data"]["reason"] and len(step.dead) == 1 and step.events == 0
    assert load_contracts().check(res) is None
