"""`ioc hotline worker|status|reconcile`: registered into the `ioc` CLI through the `ioc_commands` entry point."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer
from rich.console import Console

hotline_app = typer.Typer(help="Tổng đài 1022 và 115 / hotlines 1022 and 115.", no_args_is_help=True)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@hotline_app.command("worker")
def worker() -> None:
    """Run the hotline worker (Faust): ioc.hotline.calls -> calls, live feed, daily figures."""
    from ioccore.errors import OperationalError
    from ioccore.logging import configure_logging
    from services.hotline.worker import run_worker

    configure_logging()
    try:
        run_worker()
    except OperationalError as exc:
        err.print(f"✗ {exc}")
        raise typer.Exit(2) from None


@hotline_app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    day: Annotated[str | None, typer.Option(help="Hourly counts of this local day (YYYY-MM-DD).")] = None,
) -> None:
    """Calls by line and state, anomalies, dead letters, 115 forwarded to the nearest facility, hourly counts."""
    from ioccore.clickhouse import connect
    from services.hotline import store

    try:
        local_day = dt.date.fromisoformat(day) if day else None
    except ValueError:
        err.print(f"✗ --day {day[:40]!r}: not a day; use YYYY-MM-DD, e.g. 2026-11-23")
        raise typer.Exit(2) from None
    ch = connect()
    doc = store.calls_summary(ch)
    if local_day:
        doc["hourly"] = store.hourly_counts(ch, local_day)
    if as_json:
        print(json.dumps(doc, ensure_ascii=False))
        return
    for line, states in sorted(doc["calls"].items()):
        total = sum(states.values())
        out.print(f"Tổng đài / line {line}: {total:,} cuộc gọi / calls  {states}")
    out.print(f"Bất thường / anomalies: {doc['anomalies'] or '—'}")
    out.print(f"Thư chết / dead letters: {doc['dead_letters']:,}")
    n = doc["forwarded_115_to_nearest"]
    out.print(
        f"115 chuyển đến cơ sở gần nhất / to the nearest facility: {n['nearest']:,} / {n['forwarded']:,}"
    )
    out.print(f"Số liệu đã báo cáo / figures reported: {doc['figures']:,}")
    for row in doc.get("hourly", []):
        out.print(
            f"  {row['line']:>4} {row['field']:<24} {row['district']} {row['hour']:02d}h {row['calls']:>5}"
        )


@hotline_app.command("reconcile")
def reconcile(
    as_json: Annotated[bool, typer.Option("--json", help="Print {checked, mismatches, examples}.")] = False,
) -> None:
    """Recount every reported hotline figure from call_events with SQL and compare; exit 1 on a mismatch."""
    from ioccore.catalog import load_catalog
    from ioccore.clickhouse import connect
    from services.hotline.reconcile import reconcile as run
    from services.hotline.routing import Router

    catalog = load_catalog()
    router = Router(catalog)
    rep = run(
        connect(),
        router.district_of,
        [f.code for f in catalog.focal_points],
        {i.id for i in catalog.indicators},
    )
    if as_json:
        print(json.dumps(rep.as_dict(), ensure_ascii=False))
    else:
        mark = "✓" if rep.mismatches == 0 else "✗"
        out.print(
            f"{mark} {rep.checked:,} số liệu đã đối soát / figures checked, {rep.mismatches:,} lệch / mismatches"
        )
        for ex in rep.examples:
            out.print(f"  {ex}")
    if rep.mismatches:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(hotline_app, name="hotline")
