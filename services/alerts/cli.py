"""`ioc alerts worker|status|list|timeline|rules`: registered into the `ioc` CLI through the `ioc_commands` entry
point (ioccore imports no service)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

alerts_app = typer.Typer(help="Cảnh báo / alerts service.", no_args_is_help=True)
out = Console(soft_wrap=True)


@alerts_app.command("worker")
def worker() -> None:
    """Run the alerts worker (Faust): rules over ioc.indicators, commands from ioc.alert.commands, timers."""
    from ioccore.logging import configure_logging
    from services.alerts.worker import run_worker

    configure_logging()
    run_worker()


@alerts_app.command("status")
def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Alerts per state, open alerts per district and severity, rules loaded."""
    from ioccore.catalog import load_catalog
    from ioccore.clickhouse import connect
    from services.alerts import store

    doc = {"rules": len(load_catalog().rules), **store.counts(connect())}
    if as_json:
        print(json.dumps(doc, ensure_ascii=False))
        return
    out.print(f"Luật / rules: {doc['rules']}")
    out.print(
        "Theo trạng thái / by state: " + ", ".join(f"{k} {v}" for k, v in sorted(doc["by_state"].items()))
    )
    for k, v in doc["open_by_district"].items():
        out.print(f"  đang mở / open {k:<16} {v}")


@alerts_app.command("list")
def list_alerts(
    district: Annotated[
        str | None, typer.Option(help="District code (74: the province's own units).")
    ] = None,
    state: Annotated[str | None, typer.Option(help="firing | acknowledged | assigned | resolved")] = None,
    severity: Annotated[str | None, typer.Option(help="info | warning | critical")] = None,
    field: Annotated[str | None, typer.Option(help="One of the 27 fields.")] = None,
    since_h: Annotated[float | None, typer.Option("--since-h", help="Changed in the last N hours.")] = None,
    limit: int = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Current alerts, newest change first, filtered by district, state, severity, field and time."""
    import time

    from ioccore.clickhouse import connect
    from services.alerts import store

    rows = store.query(
        connect(),
        district=district,
        state=state,
        severity=severity,
        field=field,
        since=time.time() - since_h * 3600 if since_h else None,
        limit=limit,
    )
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, default=str))
        return
    table = Table("alert", "district", "severity", "state", "value", "threshold", "period", "title")
    for r in rows:
        table.add_row(
            r["alert_id"], r["district"], r["severity"], r["state"], str(r["value"]), str(r["threshold"]),
            r["period"], r["title_vi"],
        )  # fmt: skip
    out.print(table)


@alerts_app.command("timeline")
def timeline(alert_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every event of one alert: who did what, when and why."""
    from ioccore.clickhouse import connect
    from services.alerts import store

    events = store.timeline(connect(), alert_id)
    if not events:
        out.print(f"✗ không có cảnh báo / no alert {alert_id}")
        raise typer.Exit(1)
    if as_json:
        print(json.dumps(events, ensure_ascii=False))
        return
    for e in events:
        note = f" — {e['note']}" if e.get("note") else ""
        out.print(f"{e['version']:>3} {e['at']} {e['transition']:<12} {e['actor']:<20} {e['reason']}{note}")


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
