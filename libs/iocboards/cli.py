"""`ioc grafana build | check | publish` (registered through the `ioc_commands` entry point)."""

from __future__ import annotations

import json

import typer

grafana_app = typer.Typer(
    help="Bảng điều hành Grafana / Grafana boards: build, check, publish", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(grafana_app, name="grafana")


@grafana_app.command("build")
def build_cmd(
    out: str = typer.Option("", help="output directory (default deploy/grafana)"),
    check_only: bool = typer.Option(False, "--check", help="exit 1 when the committed files are stale"),
) -> None:
    """Dashboards and provisioning files from contracts/catalog/boards.yaml into deploy/grafana/."""
    from pathlib import Path

    from iocboards.build import default_dir, stale_files, write_all

    target = Path(out) if out else default_dir()
    if check_only:
        stale = stale_files(target)
        for path in stale:
            typer.echo(f"stale: {path}")
        if stale:
            typer.echo("✗ run `ioc grafana build` and commit deploy/grafana", err=True)
            raise typer.Exit(1)
        typer.echo("✓ deploy/grafana is up to date")
        return
    summary = write_all(target)
    typer.echo(json.dumps(summary, ensure_ascii=False))


@grafana_app.command("check")
def check_cmd(
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
    start: str = typer.Option("", help="range start (YYYY-MM-DD, default: 30 days before --end)"),
    end: str = typer.Option("", help="range end (YYYY-MM-DD, default: today)"),
    url: str = typer.Option("", help="ClickHouse URL (default IOC_CLICKHOUSE_URL)"),
) -> None:
    """Run every panel's SQL (macros and variables expanded as Grafana would) against ClickHouse."""
    from iocboards.check import check, default_range
    from ioccore.clickhouse import connect

    ch = connect(url or None)
    try:
        report = check(ch, default_range(start or None, end or None))
    finally:
        ch.close()
    summary = report.summary()
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        for f in report.failures:
            typer.echo(f"✗ {f.query.board} / {f.query.panel}: {f.error}", err=True)
        typer.echo(
            f"{summary['boards']} bảng / boards, {summary['panels']} panels, "
            f"{summary['queries_ok']} queries ok, {summary['queries_failed']} failed"
        )
    if report.failures:
        raise typer.Exit(1)


@grafana_app.command("publish")
def publish_cmd(
    url: str = typer.Option(..., "--url", help="Grafana URL, e.g. https://grafana.example.gov.vn"),
    token: str = typer.Option(..., "--token", envvar="IOC_GRAFANA_TOKEN", help="service account token"),
    clickhouse_url: str = typer.Option(
        "", help="ClickHouse address the datasource uses (default: the provisioning file's)"
    ),
) -> None:
    """Push folders, dashboards, the datasource and district team permissions; safe to run twice."""
    from grafana_client.client import GrafanaException

    from iocboards.publish import publish

    try:
        result = publish(url, token, clickhouse_url=clickhouse_url or None)
    except GrafanaException as exc:
        typer.echo(f"✗ Grafana từ chối / Grafana refused: {exc.message} (HTTP {exc.status_code})", err=True)
        raise typer.Exit(1) from exc
    except ValueError as exc:
        typer.echo(f"✗ {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(result, ensure_ascii=False))
