"""`ioc simulate`: the department systems and both hotlines as traffic (registered in ioccore.cli)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer

ANOMALY_FORM = "FIELD:DISTRICT:FACTOR, e.g. environment:724:5 (field code, 3-digit district code, factor > 0)"


def parse_anomaly(text: str, fields: list[str], districts: list[str]):
    from iocsim.engine import Anomaly

    parts = text.split(":")
    if len(parts) != 3:
        raise typer.BadParameter(f"{text!r}: expected {ANOMALY_FORM}", param_hint="--anomaly")
    field_code, district, factor_s = (p.strip() for p in parts)
    if field_code not in fields:
        raise typer.BadParameter(
            f"{text!r}: unknown field {field_code!r}; expected {ANOMALY_FORM}; fields: {', '.join(fields)}",
            param_hint="--anomaly",
        )
    if district not in districts:
        raise typer.BadParameter(
            f"{text!r}: unknown district {district!r}; expected {ANOMALY_FORM}; districts: {', '.join(districts)}",
            param_hint="--anomaly",
        )
    try:
        factor = float(factor_s)
    except ValueError:
        factor = -1.0
    if not factor > 0 or factor != factor or factor == float("inf"):
        raise typer.BadParameter(
            f"{text!r}: FACTOR must be a number > 0; expected {ANOMALY_FORM}", param_hint="--anomaly"
        )
    return Anomaly(field_code, district, factor)


def simulate(
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives byte-identical output.")] = 1,
    start: Annotated[
        str | None, typer.Option(help="First simulated day, YYYY-MM-DD (default: the backfill ends today).")
    ] = None,
    days: Annotated[int, typer.Option(help="Number of simulated days (history backfill).")] = 1,
    speed: Annotated[
        float,
        typer.Option(
            help="Seconds of wall time per simulated day when sending live; 0 = as fast as possible."
        ),
    ] = 0.0,
    anomaly: Annotated[
        list[str] | None,
        typer.Option(help=f"Multiply a field's volume in a district's communes: {ANOMALY_FORM}. Repeatable."),
    ] = None,
    bad_rate: Annotated[
        float,
        typer.Option(
            help="Share of malformed events mixed in (broken JSON, missing fields, wrong types, unknown type)."
        ),
    ] = 0.0,
    out: Annotated[str, typer.Option(help="kafka | file")] = "kafka",
    file: Annotated[Path | None, typer.Option(help="Output path for --out file (JSON lines).")] = None,
    stats: Annotated[
        Path | None, typer.Option(help="Write the run's figures (events, events/s, per type) as JSON here.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = True,
) -> None:
    """Simulate the department systems and the 1022/115 switchboards: events to Kafka or a JSON-lines file."""
    import asyncio

    from ioccore.cli import _fail, err
    from ioccore.cli import out as console
    from ioccore.errors import ContractError, OperationalError
    from ioccore.logging import configure_logging
    from ioccore.settings import get_settings

    configure_logging(json=False, level="WARNING")
    if days < 1:
        raise typer.BadParameter(
            f"{days}: expected a whole number of days >= 1, e.g. --days 7", param_hint="--days"
        )
    if speed < 0:
        raise typer.BadParameter(
            f"{speed}: expected seconds per simulated day >= 0 (0 = as fast as possible)",
            param_hint="--speed",
        )
    if not 0 <= bad_rate < 1:
        raise typer.BadParameter(
            f"{bad_rate}: expected a fraction 0 <= rate < 1, e.g. --bad-rate 0.02", param_hint="--bad-rate"
        )
    if out not in ("kafka", "file"):
        raise typer.BadParameter(f"{out!r}: expected kafka or file", param_hint="--out")
    if out == "file" and file is None:
        raise typer.BadParameter("--out file needs --file PATH (JSON lines)", param_hint="--file")
    first: dt.date | None = None
    if start is not None:
        try:
            first = dt.date.fromisoformat(start)
        except ValueError:
            raise typer.BadParameter(
                f"{start!r}: expected a date YYYY-MM-DD, e.g. 2026-03-02", param_hint="--start"
            ) from None

    from iocsim.engine import Simulation, default_start
    from iocsim.output import FileSink, KafkaSink, run
    from iocsim.reference import load_reference

    try:
        ref = load_reference(get_settings().contracts_dir)
    except (OSError, KeyError, ValueError) as exc:
        _fail(ContractError(f"cannot read the simulation model: {exc}"))
    anomalies = [parse_anomaly(a, ref.fields, ref.districts) for a in anomaly or []]
    sim = Simulation(
        ref, seed=seed, start=first or default_start(days), days=days, anomalies=anomalies, bad_rate=bad_rate
    )

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("[bold]mô phỏng / simulating[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("days · {task.fields[events]:,} events · {task.fields[rate]:,} events/s"),
        TimeElapsedColumn(),
        console=err,
        disable=not progress,
        transient=False,
    )
    task = bar.add_task("simulate", total=days, events=0, rate=0)

    def on_day(done: int, events: int) -> None:
        elapsed = bar.tasks[task].elapsed or 0.0
        bar.update(task, completed=done, events=events, rate=int(events / elapsed) if elapsed else 0)

    async def main() -> dict:
        if out == "file":
            return await run(sim, FileSink(file), speed=speed, on_day=on_day)  # type: ignore[arg-type]
        from ioccore.kafka import ensure_topics, producer

        ensure_topics()
        async with producer(acks="all", linger_ms=20) as prod:
            sink = KafkaSink(prod)
            result = await run(sim, sink, speed=speed, on_day=on_day)
            result["records"] = sink.records
            result["records_by_topic"] = sink.records_by_topic
            return result

    try:
        with bar:
            result = asyncio.run(main())
    except (OperationalError, ContractError) as exc:
        _fail(exc)
    if stats is not None:
        stats.parent.mkdir(parents=True, exist_ok=True)
        stats.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    where = str(file) if out == "file" else "Kafka ioc.events + ioc.hotline.calls"
    bad = sum(result["malformed_events"].values())
    console.print(
        f"✓ đã mô phỏng / simulated {days} day(s): {result['events']:,} events"
        + (f" ({bad:,} malformed)" if bad else "")
        + f" → {where} in {result['elapsed_s']:.1f} s ({result['events_per_s'] or 0:,} events/s)",
        highlight=False,
    )
