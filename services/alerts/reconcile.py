"""`ioc reconcile` for alerts (an `ioc_reconcilers` entry point): the current state in `alerts` must be the
fold of the event store `alert_events`, and every stored history must fold (valid versions and transitions)."""

from __future__ import annotations

from typing import Any

from ioccore.clickhouse import ClickHouse
from services.alerts import store
from services.alerts.lifecycle import Alert, InvalidEvent, apply

COMPARED = (
    "state",
    "version",
    "severity",
    "district",
    "acknowledged_by",
    "assignee",
    "escalated",
    "silenced",
)


def _row(a: Alert) -> dict[str, Any]:
    return {
        "state": a.state,
        "version": a.version,
        "severity": a.severity,
        "district": a.district,
        "acknowledged_by": a.acknowledged_by or "",
        "assignee": a.assignee or "",
        "escalated": int(a.escalated),
        "silenced": int(a.silenced),
    }


def reconcile(ch: ClickHouse) -> dict[str, Any]:
    folded: dict[str, Alert] = {}
    broken: dict[str, str] = {}
    for transition, data in store.load_events(ch):
        aid = data["alert_id"]
        if aid in broken:
            continue
        try:
            folded[aid] = apply(folded.get(aid), transition, data)
        except InvalidEvent as exc:
            broken[aid] = str(exc)
            folded.pop(aid, None)
    cols = ", ".join(("alert_id", *COMPARED))
    stored = {
        r[0]: dict(zip(COMPARED, r[1:], strict=True))
        for r in ch.execute(f"SELECT {cols} FROM alerts FINAL")  # noqa: S608 - fixed column names
    }
    examples = [f"{aid}: history does not fold: {why}" for aid, why in sorted(broken.items())]
    for aid in sorted(set(folded) | set(stored)):
        if aid in broken:
            continue
        want = _row(folded[aid]) if aid in folded else None
        got = stored.get(aid)
        if got is not None:
            got = {k: (int(v) if k in ("version", "escalated", "silenced") else v) for k, v in got.items()}
        if want != got:
            examples.append(f"{aid}: alerts has {got}, the fold of alert_events gives {want}")
    return {
        "checked": len(set(folded) | set(stored) | set(broken)),
        "mismatches": len(examples),
        "examples": examples[:10],
    }
