"""`ioc indicators worker|status|versions`, `ioc reconcile`, `ioc replay`: registered into the `ioc` CLI through
the `ioc_commands` entry point (ioccore imports no service)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console

indicators_app = typer.Typer(help="Chỉ tiêu / indicators service.", no_args_is_help=True)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@indicators_app.command("worker")
def worker() -> None:
    """Run one indicators worker (Faust); start more to share the partitions of ioc.events."""
    from ioccore.logging import configure_logging
    from services.indicators.worker import run_worker

    configure_logging()
    run_worker()


@indicators_app.command("status")
def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Versions, checkpoints and the processed / dead-lettered / late / duplicate counters per source."""
    from ioccore.clickhouse import connect
    from services.indicators import store

    ch = connect()
    active = store.active_version(ch)
    doc = {
        "active": active,
        "versions": store.versions(ch),
        "checkpoints": store.checkpoints(ch, active["version_set"]) if active else {},
        "counters": store.partition_counters(ch, active["version_set"]) if active else {},
    }
    if as_json:
        print(json.dumps(doc, ensure_ascii=False, default=str))
        return
    out.print(f"Phiên bản đang dùng / active version: {active['version_set'] if active else '—'}")
    for v in doc["versions"]:
        out.print(f"  {v['version_set']:<14} {v['boundary_set']:<6} {v['status']:<9} {v['note']}")
    out.print(f"Checkpoints: {doc['checkpoints']}")
    for source, c in sorted(doc["counters"].items()):
        out.print(
            f"  {source:<32} processed {c['processed']:>9,}  dead-lettered {c['dead_lettered']:>7,}  "
            f"late {c['late']:>7,}  duplicates {c['duplicates']:>7,}"
        )


def _progress(label: str):  # type: ignore[no-untyped-def]
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn(label),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.completed:,.0f}"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )


def reconcile(
    as_json: Annotated[bool, typer.Option("--json", help="Print {checked, mismatches, examples}.")] = False,
    version_set: Annotated[
        str | None, typer.Option(help="Version set to check (default: the active one).")
    ] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Recompute every indicator value from the raw archive with SQL and compare with the streamed values."""
    from ioccore.catalog import load_catalog
    from ioccore.clickhouse import connect
    from services.indicators import store
    from services.indicators.model import boundaries, compile_model
    from services.indicators.reconcile import reconcile as run

    ch = connect()
    versions = {v["version_set"]: v for v in store.versions(ch)}
    chosen = versions.get(version_set) if version_set else store.active_version(ch)
    if chosen is None:
        err.print(
            f"✗ no version set {version_set!r}: known {sorted(versions)}"
            if version_set
            else "✗ no indicator values yet: start `ioc indicators worker` (or `make run`)"
        )
        raise typer.Exit(2)
    catalog = load_catalog()
    model = compile_model(catalog)
    bounds = boundaries(catalog, chosen["boundary_set"])
    if progress:
        with _progress("Đối soát / reconciling") as bar:
            task = bar.add_task("", total=len(model.specs) + 1)
            rep = run(
                ch, model, bounds, chosen["version_set"], lambda d, t: bar.update(task, completed=d, total=t)
            )
    else:
        rep = run(ch, model, bounds, chosen["version_set"])
    parts = {"indicators": rep.as_dict(), **_other_reconcilers(ch)}
    checked = sum(p["checked"] for p in parts.values())
    mismatches = sum(p["mismatches"] for p in parts.values())
    if as_json:
        examples = [ex for p in parts.values() for ex in p["examples"]][:20]
        doc = {"checked": checked, "mismatches": mismatches, "examples": examples, "parts": parts}
        print(json.dumps(doc, ensure_ascii=False, default=str))
    else:
        for name, p in parts.items():
            mark = "✓" if p["mismatches"] == 0 else "✗"
            out.print(
                f"{mark} {name}: {p['checked']:,} giá trị đã đối soát / values checked, "
                f"{p['mismatches']:,} lệch / mismatches"
            )
            for ex in p["examples"]:
                out.print(f"  {ex}")
    if mismatches:
        raise typer.Exit(1)


def _other_reconcilers(ch: Any) -> dict[str, dict[str, Any]]:
    """Recounts of other services, declared as `ioc_reconcilers` entry points: each a function taking a
    ClickHouse connection and returning {checked, mismatches, examples} (services never import each other)."""
    from importlib.metadata import entry_points

    return {
        ep.name: ep.load()(ch) for ep in sorted(entry_points(group="ioc_reconcilers"), key=lambda e: e.name)
    }


def replay(
    boundary_set: Annotated[
        str, typer.Option("--boundary-set", help="Boundary set of the new version: 2024 or 2025.")
    ] = "2024",
    name: Annotated[
        str | None, typer.Option(help="Name of the new version set (default v<N>-<set>).")
    ] = None,
    switch: Annotated[
        bool, typer.Option("--switch/--no-switch", help="Make it the active version when built.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Rebuild indicator values from the raw archive into a new version set while live processing goes on, then switch reads to it."""
    from ioccore.catalog import load_catalog
    from ioccore.clickhouse import connect
    from services.indicators.replay import describe
    from services.indicators.replay import replay as run

    ch = connect()
    catalog = load_catalog()
    if boundary_set not in catalog.units_by_set:
        err.print(
            f"✗ unknown boundary set {boundary_set!r}: use one of {sorted(catalog.units_by_set)} (contracts/geo/units@<set>.yaml)"
        )
        raise typer.Exit(2)
    with _progress("Dựng lại / replaying") as bar:
        task = bar.add_task("", total=None)
        result = run(
            ch,
            catalog,
            boundary_set,
            name=name,
            switch=switch,
            progress=lambda d, t: bar.update(task, completed=d, total=t),
        )
    doc = describe(result)
    if as_json:
        print(json.dumps(doc))
        return
    out.print(
        f"✓ {doc['version_set']}: {doc['events']:,} sự kiện / events → {doc['values']:,} giá trị / values "
        f"in {doc['seconds']} s ({doc['events_per_s']:,} events/s)"
        + (" — đang dùng / active" if switch else "")
    )


def register(app: typer.Typer) -> None:
    app.add_typer(indicators_app, name="indicators")
    app.command("reconcile")(reconcile)
    app.command("replay")(replay)
