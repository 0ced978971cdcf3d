"""`ioc`: the one command-line tool for everything an operator runs."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ioccore.errors import ContractError, OperationalError

app = typer.Typer(
    help="Trung tâm Giám sát, Điều hành thông minh (IOC) — Intelligent Operations Center tools.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
stack_app = typer.Typer(
    help="The local stack: Kafka-protocol broker (Tansu) and ClickHouse.", no_args_is_help=True
)
app.add_typer(stack_app, name="stack")
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


def _fail(exc: Exception) -> None:
    if isinstance(exc, OperationalError):
        err.print(f"[bold red]✗ {exc.part}[/]: {exc.problem}", highlight=False, markup=True, soft_wrap=True)
        if exc.hint:
            err.print(f"  → {exc.hint}", highlight=False, soft_wrap=True)
    else:
        err.print(f"[bold red]✗ contract[/]: {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@stack_app.command("up")
def stack_up() -> None:
    """Start the broker and ClickHouse (unless already running or configured as real servers), create topics, migrate."""
    import time

    from ioccore import stack
    from ioccore.logging import configure_logging

    configure_logging(json=False, level="WARNING")
    t0 = time.monotonic()
    try:
        stack.up()
        st = stack.status()
    except (OperationalError, ContractError) as exc:
        _fail(exc)
    storage = f", {st['kafka']['storage']} storage" if "storage" in st["kafka"] else ""
    out.print(f"✓ Kafka      {st['kafka']['bootstrap']} ({st['kafka']['managed']}{storage})")
    out.print(
        f"✓ ClickHouse {st['clickhouse']['url']} ({st['clickhouse']['managed']}, {st['clickhouse']['version']})"
    )
    out.print(f"Sẵn sàng sau {time.monotonic() - t0:.1f} s / ready in {time.monotonic() - t0:.1f} s")


@stack_app.command("down")
def stack_down() -> None:
    """Stop what `ioc stack up` started; leaves no process behind."""
    from ioccore import stack
    from ioccore.logging import configure_logging

    configure_logging(json=False, level="WARNING")
    stopped = stack.down()
    out.print("Đã dừng / stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@stack_app.command("status")
def stack_status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Whether the broker and ClickHouse answer."""
    from ioccore import stack
    from ioccore.logging import configure_logging

    configure_logging(json=False, level="ERROR")
    st = stack.status()
    if as_json:
        print(json.dumps(st, ensure_ascii=False))
    else:
        for part in ("kafka", "clickhouse"):
            info = st[part]
            mark = "✓" if info["ok"] else "✗"
            where = info.get("bootstrap") or info.get("url")
            extra = info.get("version") or info.get("error") or ""
            out.print(f"{mark} {part:<10} {where} {extra}")
    if not (st["kafka"]["ok"] and st["clickhouse"]["ok"]):
        raise typer.Exit(1)


@app.command()
def migrate(
    cluster: Annotated[
        str,
        typer.Option(help="ClickHouse cluster: Replicated tables with a Distributed layer (deploy/k8s prod)"),
    ] = "",
) -> None:
    """Apply the ClickHouse migrations that are missing (safe to run twice)."""
    from ioccore.clickhouse import connect
    from ioccore.logging import configure_logging
    from ioccore.migrations import migrate as run_migrate
    from ioccore.settings import get_settings

    configure_logging(json=False, level="WARNING")
    settings = get_settings()
    try:
        ch = connect()
        applied = run_migrate(ch, settings.contracts_dir / "clickhouse", cluster or None)
    except (OperationalError, ContractError) as exc:
        _fail(exc)
    out.print(
        f"✓ {ch.database}: "
        + (
            ", ".join(f"{m.version:04d}_{m.name}" for m in applied)
            if applied
            else "nothing to apply, up to date"
        )
    )


@app.command()
def topics() -> None:
    """Create the topics of contracts/topics.yaml that the broker lacks."""
    from ioccore.kafka import bootstrap, ensure_topics
    from ioccore.logging import configure_logging

    configure_logging(json=False, level="WARNING")
    try:
        created = ensure_topics(bootstrap())
    except (OperationalError, ContractError) as exc:
        _fail(exc)
    out.print("✓ topics: " + (", ".join(created) if created else "all present"))


@app.command()
def archive(group_id: str = "ioc-archiver") -> None:
    """Run the archiver: ioc.events → events_archive, bad records → dead letters (Ctrl-C stops)."""
    import signal

    from ioccore.archive import run_archiver
    from ioccore.clickhouse import connect
    from ioccore.contracts import load_contracts
    from ioccore.logging import configure_logging

    configure_logging()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_archiver(connect(), load_contracts(), group_id=group_id, stop=stop)

    try:
        asyncio.run(main())
    except (OperationalError, ContractError) as exc:
        _fail(exc)


@app.command()
def send(
    files: Annotated[
        list[Path], typer.Argument(help="JSON files (one event or an array) or JSON-lines files.")
    ],
) -> None:
    """Send events from files to ioc.events, keyed by subject (each event is checked first)."""
    from ioccore.contracts import load_contracts
    from ioccore.kafka import producer
    from ioccore.logging import configure_logging
    from ioccore.topics import EVENTS

    configure_logging(json=False, level="WARNING")
    contracts = load_contracts()
    events: list[dict] = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        try:
            doc = json.loads(text)
            events.extend(doc if isinstance(doc, list) else [doc])
        except json.JSONDecodeError:
            events.extend(json.loads(line) for line in text.splitlines() if line.strip())
    for e in events:
        reason = contracts.check(e)
        if reason:
            err.print(f"[yellow]! {e.get('id', '?')}: {reason} (sent anyway: it will be dead-lettered)[/]")

    async def main() -> None:
        async with producer() as prod:
            for e in events:
                await prod.send_and_wait(
                    EVENTS, json.dumps(e, ensure_ascii=False).encode(), key=str(e.get("subject", "")).encode()
                )

    try:
        asyncio.run(main())
    except OperationalError as exc:
        _fail(exc)
    out.print(f"✓ đã gửi / sent {len(events)} events to {EVENTS}")


@app.command()
def run() -> None:
    """Start the whole system in the foreground: stack, services, simulator. Ctrl-C stops everything."""
    from ioccore.logging import configure_logging
    from ioccore.supervisor import run_system

    configure_logging(json=False, level="WARNING")
    try:
        code = run_system(out)
    except (OperationalError, ContractError) as exc:
        _fail(exc)
    raise typer.Exit(code)


@app.command()
def bench(
    name: Annotated[
        str,
        typer.Argument(
            help="stack | faust | archive | indicators | alerts | hotline | gateway | broker | all (all writes bench/results.md)"
        ),
    ] = "all",
    events: int = 100_000,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Run a benchmark and print its figures with the same-run baseline."""
    from ioccore.logging import configure_logging

    configure_logging(json=False, level="WARNING")
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from bench import run_benchmarks

    try:
        results = run_benchmarks(name, events=events)
    except (OperationalError, ContractError) as exc:
        _fail(exc)
    if as_json:
        print(json.dumps(results if name == "all" else results[name], ensure_ascii=False))
    else:
        for key, res in results.items():
            out.print(f"[bold]{key}[/]: {json.dumps(res, ensure_ascii=False)}")
    if name == "all":
        from bench.results import write_report

        md, js = write_report(results, Path(__file__).resolve().parents[2] / "bench")
        err.print(f"Kết quả / results: {md} , {js}")


from ioccore.catalog_cli import app as catalog_app  # noqa: E402

app.add_typer(catalog_app, name="catalog")


# `ioc simulate` lives in iocsim (its module imports only typer; the simulator loads when the command runs).
from iocsim.cli import simulate as _simulate  # noqa: E402

app.command("simulate")(_simulate)


def _register_plugins() -> None:
    """Commands of the services, declared as `ioc_commands` entry points in pyproject.toml: each is a
    function taking this Typer app (ioccore imports no service)."""
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group="ioc_commands"), key=lambda e: e.name):
        ep.load()(app)


_register_plugins()


def main() -> None:
    """Entry point: an unexpected error is one line on screen, its traceback in .ioc/logs/ioc-errors.log."""
    import datetime as dt
    import traceback

    try:
        app()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except (OperationalError, ContractError) as exc:
        try:
            _fail(exc)
        except typer.Exit as done:
            raise SystemExit(done.exit_code) from None
    except Exception as exc:
        from ioccore.settings import get_settings

        log_path = get_settings().home / "logs" / "ioc-errors.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a", encoding="utf-8") as f:
            f.write(
                f"--- {dt.datetime.now(dt.UTC).isoformat()} {' '.join(sys.argv)}\n{traceback.format_exc()}\n"
            )
        err.print(f"[bold red]✗ lỗi nội bộ / internal error[/]: {type(exc).__name__}: {exc}", highlight=False)
        err.print(f"  → the traceback is in {log_path}; please report it with that file", highlight=False)
        raise SystemExit(3) from None


if __name__ == "__main__":
    main()
