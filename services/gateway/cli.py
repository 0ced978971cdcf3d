"""`ioc gateway serve` and `ioc token`: registered into `ioc` through the `ioc_commands` entry point."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

gateway_app = typer.Typer(help="Cổng API / the gateway (REST, SSE, wall, console).", no_args_is_help=True)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@gateway_app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Default IOC_GATEWAY_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Default IOC_GATEWAY_PORT")] = None,
    workers: int = 1,
) -> None:
    """Run the gateway (uvicorn). Each worker process has its own shared stream consumer."""
    import uvicorn

    from ioccore.logging import configure_logging
    from services.gateway.settings import get_gateway_settings

    configure_logging()
    s = get_gateway_settings()
    uvicorn.run(
        "services.gateway.asgi:app",
        host=host or s.host,
        port=port or s.port,
        workers=workers,
        log_level="warning",
        http="httptools",
        loop="asyncio",
        access_log=False,
    )


def token(
    role: Annotated[
        str,
        typer.Option(
            help="province_admin | province_viewer | district_operator | commune_viewer | department_system"
        ),
    ],
    sub: Annotated[str | None, typer.Option(help="Who (default: derived from the role)")] = None,
    district: Annotated[
        str | None, typer.Option(help="district_operator: the district code, e.g. 718")
    ] = None,
    commune: Annotated[str | None, typer.Option(help="commune_viewer: the commune code")] = None,
    source: Annotated[str | None, typer.Option(help="department_system: its CloudEvents source")] = None,
    name: str = "",
    hours: float = 12.0,
) -> None:
    """Issue a locally signed token for the local stack (key under IOC_HOME/gateway/, never in the repo)."""
    from services.gateway.auth.models import Principal
    from services.gateway.auth.service import AuthError, TokenService, principal_from_claims
    from services.gateway.settings import get_gateway_settings

    claims = {
        "sub": sub or f"{role}:{district or commune or source or 'local'}",
        "role": role,
        "district": district,
        "commune": commune,
        "source": source,
        "name": name,
    }
    try:
        principal = principal_from_claims({k: v for k, v in claims.items() if v is not None})
        tok = TokenService(get_gateway_settings()).issue(
            Principal(**principal.model_dump()), int(hours * 3600)
        )
    except AuthError as exc:
        err.print(f"[bold red]✗ token[/]: {exc}", highlight=False)
        raise typer.Exit(2) from None
    print(tok)


def register(app: typer.Typer) -> None:
    app.add_typer(gateway_app, name="gateway")
    app.command("token")(token)


@gateway_app.command("urls")
def urls(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Where the wall and the console are, signed in (local stack: locally signed tokens)."""
    import json

    from services.gateway.auth.models import Principal, Role
    from services.gateway.auth.service import TokenService
    from services.gateway.settings import get_gateway_settings

    s = get_gateway_settings()
    tokens = TokenService(s)
    base = f"http://{s.host}:{s.port}"
    viewer = tokens.issue(Principal(sub="wall", role=Role.province_viewer, name="Màn hình tỉnh"))
    operator = tokens.issue(
        Principal(sub="op718", role=Role.district_operator, district="718", name="Trực ban Thủ Dầu Một")
    )
    doc = {
        "api": f"{base}/v1/docs",
        "wall": f"{base}/wall#token={viewer}",
        "wall_district": f"{base}/wall/718#token={viewer}",
        "console": f"{base}/console#token={operator}",
    }
    if as_json:
        print(json.dumps(doc))
    else:
        for k, v in doc.items():
            out.print(f"{k:<14} {v}", highlight=False)
