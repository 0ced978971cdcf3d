"""`ioc k8s topics | check` (registered through the `ioc_commands` entry point)."""

from __future__ import annotations

import json

import typer

k8s_app = typer.Typer(
    help="deploy/k8s: generated topics, offline validation and policy scan", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(k8s_app, name="k8s")


@k8s_app.command("topics")
def topics(check_only: bool = typer.Option(False, "--check", help="exit 1 when the file is stale")) -> None:
    """KafkaTopic resources from contracts/topics.yaml into deploy/k8s/base/kafka/topics.yaml."""
    from iocdeploy.topics import TOPICS_FILE, render, write

    if check_only:
        if not TOPICS_FILE.exists() or TOPICS_FILE.read_text("utf-8") != render():
            typer.echo(f"✗ {TOPICS_FILE} is stale: run `ioc k8s topics`", err=True)
            raise typer.Exit(1)
        typer.echo("✓ topics up to date")
        return
    typer.echo(str(write()))


@k8s_app.command("check")
def check_cmd(
    as_json: bool = typer.Option(False, "--json"),
    policy: bool = typer.Option(True, help="run the policy scan (checkov)"),
) -> None:
    """Render every overlay, validate every object offline, scan the policies; exit 1 on any problem."""
    from ioccore.errors import OperationalError
    from iocdeploy.check import check

    try:
        reports = check(policy=policy)
    except OperationalError as exc:
        typer.echo(f"✗ {exc}", err=True)
        raise typer.Exit(2) from exc
    bad = False
    for r in reports:
        bad |= bool(r.problems or r.policy_failed)
        if not as_json:
            mark = "✗" if (r.problems or r.policy_failed) else "✓"
            typer.echo(f"{mark} {r.overlay}: {r.objects} objects, {len(r.problems)} invalid, "
                       f"policy {r.policy_passed} passed / {len(r.policy_failed)} failed")  # fmt: skip
            for p in r.problems + r.policy_failed:
                typer.echo(f"    {p}")
    if as_json:
        typer.echo(json.dumps([r.__dict__ for r in reports], ensure_ascii=False))
    if bad:
        raise typer.Exit(1)
