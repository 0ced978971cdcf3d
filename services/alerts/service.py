"""The alerts service around the pure core, independent of Faust so the worker, the benchmark and the tests
drive the same code: Kafka record values in, (topic, key, value) records out, ClickHouse written first.

Order of a step (a crash between any two loses nothing and doubles nothing):
  1. decide on the input with the core, folding each decided event into the state at once;
  2. write alert_events and alerts (keyed (alert_id, version): a rewrite changes nothing);
  3. the caller publishes the records (ioc.alerts, results, figures) and then acknowledges the input.
On restart the state is the fold of alert_events, so a redelivered update or command finds it already applied
(a command's result is sent again from its stored event).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ioccore.catalog import load_catalog
from ioccore.clickhouse import ClickHouse
from ioccore.contracts import CloudEvent, Contracts, Rejection, parse_json
from ioccore.logging import get_logger
from ioccore.topics import ALERT_COMMAND_RESULTS, ALERTS, EVENTS
from services.alerts import store
from services.alerts.lifecycle import Core, InvalidEvent, UnitInfo
from services.alerts.rules import PROVINCE, iso, load_maintenance, load_rules

log = get_logger("services.alerts")

UPDATE_TYPE = "vn.binhduong.indicators.values.updated"
COMMAND_TYPE = "vn.binhduong.alerts.command"
SOURCE = "urn:ioc:alerts"
_enc = msgspec.json.Encoder()


@dataclass
class Step:
    records: list[tuple[str, bytes, bytes]] = field(default_factory=list)  # topic, key, value
    dead: list[tuple[bytes | None, bytes, str]] = field(default_factory=list)  # key, raw, reason
    events: int = 0
    updates: int = 0
    commands: int = 0
    write_s: float = 0.0


def alert_record(transition: str, data: dict[str, Any]) -> tuple[str, bytes, bytes]:
    event = {
        "specversion": "1.0",
        "id": f"{data['alert_id']}|{data['version']}",
        "source": SOURCE,
        "type": f"vn.binhduong.alerts.{transition}",
        "time": data["at"],
        "subject": data["unit"],
        "datacontenttype": "application/json",
        "data": data,
    }
    return ALERTS, data["alert_id"].encode(), _enc.encode(event)


def result_record(result: dict[str, Any], subject: str, now: float) -> tuple[str, bytes, bytes]:
    event = {
        "specversion": "1.0",
        "id": f"result|{result['command_id']}",
        "source": SOURCE,
        "type": "vn.binhduong.alerts.command.result",
        "time": iso(now),
        "subject": subject,
        "datacontenttype": "application/json",
        "data": result,
    }
    return ALERT_COMMAND_RESULTS, result["command_id"].encode(), _enc.encode(event)


def figure_record(fig: dict[str, Any], now: float) -> tuple[str, bytes, bytes]:
    """A reporting-timeliness figure as a data_sharing department figure (the indicators service counts it)."""
    event = {
        "specversion": "1.0",
        "id": f"timeliness|{fig['field']}|{fig['cadence']}|{fig['period']}",
        "source": SOURCE,
        "type": "vn.binhduong.data_sharing.figure.reported",
        "time": iso(now),
        "subject": PROVINCE,
        "datacontenttype": "application/json",
        "data": {
            "indicator_id": f"data_sharing.reporting_timeliness.{fig['field']}",
            "period": fig["period"],
            "cadence": fig["cadence"],
            "value": fig["value"],
            "unit": "%",
        },
    }
    return EVENTS, PROVINCE.encode(), _enc.encode(event)


def build_core(ch: ClickHouse, catalog: Any | None = None) -> Core:
    """The core with the catalog's rules, rebuilt from alert_events and primed with stored values."""
    catalog = catalog or load_catalog()
    units = {
        u.code: UnitInfo(
            u.level,
            u.code if u.level == "district" else (u.parent or PROVINCE) if u.level == "commune" else PROVINCE,
        )
        for u in catalog.units
    }
    core = Core(load_rules(catalog), units, load_maintenance(catalog))
    broken: set[str] = set()
    for event in store.load_events(ch):
        aid = event[1]["alert_id"]
        if aid in broken:
            continue
        try:
            core.apply_events([event])
        except InvalidEvent as exc:  # a history that does not fold (`ioc reconcile` names it): left out
            broken.add(aid)
            core.alerts.pop(aid, None)
            core.open_ids.discard(aid)
            log.error("alerts.history_broken", alert_id=aid, reason=str(exc))
    version_set = store.active_version_set(ch)
    if version_set:
        wanted: dict[str, set[str]] = {}
        for r in core.rules.values():
            wanted.setdefault(r.cadence, set()).add(r.indicator)
        for ind, cadence, unit, period, start, value, at in store.recent_values(ch, version_set, wanted):
            info = units.get(unit)
            for r in core.by_indicator.get((ind, cadence), ()):
                if info is not None and info.level in r.levels:
                    core.note_reported(r.id, unit, period, start, value, at)
    log.info("alerts.rebuilt", alerts=len(core.alerts), open=sum(a.is_open for a in core.alerts.values()))
    return core


class AlertsService:
    def __init__(self, ch: ClickHouse, contracts: Contracts, core: Core) -> None:
        self.ch = ch
        self.contracts = contracts
        self.core = core

    def _decide(self, rows: list[tuple[str, dict[str, Any], Any]], fn: Any, *args: Any) -> Any:
        """Call a decision and fold its events into the core one by one (the next decision sees them),
        keeping each with the alert's state after it."""
        out = fn(*args)
        for t, d in out if isinstance(out, list) else out[0]:
            self.core.apply_events([(t, d)])
            rows.append((t, d, self.core.alerts[d["alert_id"]]))
        return out

    def _commit(self, step: Step, rows: list[tuple[str, dict[str, Any], Any]]) -> None:
        t0 = time.perf_counter()
        store.write(self.ch, rows)
        step.write_s = time.perf_counter() - t0
        step.records.extend(alert_record(t, d) for t, d, _ in rows)
        step.events += len(rows)

    def updates(self, values: list[bytes], now: float | None = None) -> Step:
        """Records of ioc.indicators (CloudEvents of values.updated: one unit's changed values, up to 1,000
        compact rows an event), decoded by the contracts (typed fast path for valid records, the JSON Schema's
        reason for each invalid event, which goes to the dead letters). Rows no rule watches are skipped before
        anything is built for them; each watched row, with its event's level, unit and version_set, is one
        update for Core.decide_update."""
        now = time.time() if now is None else now
        step, rows = Step(), []
        watched = self.core.by_indicator
        for raw in values:
            for data in self._decoded(raw, step):
                head = {"level": data["level"], "unit": data["unit"], "version_set": data["version_set"]}
                for r in data["values"]:
                    if (r["indicator"], r["cadence"]) not in watched:
                        continue  # not a value any rule watches: not this service's concern
                    step.updates += 1
                    self._decide(rows, self.core.decide_update, {**r, **head}, now)
        self._commit(step, rows)
        return step

    def _decoded(self, raw: bytes, step: Step) -> list[dict[str, Any]]:
        """The data of each valid values.updated event of a record; the rest to the dead letters."""
        out = []
        for item in self.contracts.decode(raw):
            if isinstance(item, Rejection):
                step.dead.append((None, item.raw, item.reason))
            elif item.type != UPDATE_TYPE:
                step.dead.append(
                    (None, _enc.encode(item), f"unexpected event type {item.type!r} on ioc.indicators")
                )
            else:
                out.append(item.data)
        return out

    def commands(self, values: list[bytes], now: float | None = None) -> Step:
        """Records of ioc.alert.commands; each command's result is queued for ioc.alert.command.results."""
        now = time.time() if now is None else now
        step, rows = Step(), []
        results = []
        for raw in values:
            for item in self.contracts.decode(raw):
                if isinstance(item, Rejection) or item.type != COMMAND_TYPE:
                    reason = (
                        item.reason if isinstance(item, Rejection) else f"unexpected event type {item.type!r}"
                    )
                    step.dead.append((None, item.raw if isinstance(item, Rejection) else raw, reason))
                    cid = _command_id(item)
                    if cid:
                        results.append((_rejected(cid, reason), PROVINCE))
                    continue
                step.commands += 1
                _, result = self._decide(rows, self.core.decide_command, item.data, now)
                results.append((result, item.subject))
        self._commit(step, rows)
        step.records.extend(result_record(r, subject, now) for r, subject in results)
        return step

    def tick(self, now: float | None = None) -> Step:
        """Timers: escalations, duration rules, no-data deadlines, reporting-timeliness figures."""
        now = time.time() if now is None else now
        step, rows = Step(), []
        _, figures = self._decide(rows, self.core.decide_tick, now)
        self._commit(step, rows)
        step.records.extend(figure_record(f, now) for f in figures)
        return step


def _command_id(item: CloudEvent | Rejection) -> str | None:
    try:
        obj = parse_json(item.raw) if isinstance(item, Rejection) else None
    except msgspec.DecodeError:
        return None
    data = obj.get("data") if isinstance(obj, dict) else None
    cid = data.get("command_id") if isinstance(data, dict) else None
    return cid if isinstance(cid, str) and 8 <= len(cid) <= 64 else None


def _rejected(cid: str, reason: str) -> dict[str, Any]:
    return {
        "command_id": cid,
        "alert_id": "",
        "outcome": "rejected",
        "reason": f"Lệnh không hợp lệ / invalid command: {reason}"[:2000],
        "version": 0,
        "state": None,
    }
