"""`ioc catalog …`: check the catalog and count what it holds."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ioccore.errors import ContractError

app = typer.Typer(
    help="Danh mục chỉ số / The catalog: fields, units, indicators, boards.", no_args_is_help=True
)

ContractsOption = Annotated[
    Path | None,
    typer.Option(
        "--contracts", help="The contracts directory (default: IOC_CONTRACTS_DIR or the repository's)."
    ),
]

LABELS = {
    "fields": ("Lĩnh vực", "Fields"),
    "indicators": ("Chỉ số", "Indicators"),
    "event_types": ("Loại sự kiện", "Event types"),
    "districts": ("Huyện, thị xã, thành phố", "Districts"),
    "communes": ("Xã, phường, thị trấn", "Communes"),
    "boards": ("Bảng điều hành", "Boards"),
    "focal_points": ("Đầu mối xử lý phản ánh", "Focal points"),
    "hospitals": ("Cơ sở y tế tiếp nhận 115", "Hospitals"),
}


def _load(contracts: Path | None):
    from ioccore.catalog import load_catalog

    try:
        return load_catalog(contracts, strict=False)
    except ContractError as exc:  # an unreadable schema file: the catalog cannot be checked at all
        print(f"✗ contract: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None


@app.command()
def check(contracts: ContractsOption = None) -> None:
    """Validate the whole catalog; print each problem as path:line: message (exit 1 on any)."""
    catalog = _load(contracts)
    for problem in catalog.problems:
        print(problem)
    if catalog.problems:
        print(f"✗ {len(catalog.problems)} vấn đề / problem(s) in the catalog", file=sys.stderr)
        raise typer.Exit(1)
    s = catalog.stats()
    print(
        f"✓ danh mục hợp lệ / catalog OK: {s['fields']} fields, {s['indicators']} indicators, "
        f"{s['event_types']} event types, {s['boards']} boards, {s['districts']} districts, "
        f"{s['communes']} communes, {s['focal_points']} focal points, {s['hospitals']} hospitals "
        f"({catalog.load_seconds:.2f} s)"
    )


@app.command()
def stats(
    contracts: ContractsOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Count fields, indicators, event types, units, boards, focal points and hospitals."""
    catalog = _load(contracts)
    counts = catalog.stats()
    if as_json:
        print(json.dumps(counts))
    else:
        table = Table(title="Danh mục / Catalog")
        table.add_column("Mục")
        table.add_column("Item")
        table.add_column("Số lượng / Count", justify="right")
        for key, value in counts.items():
            vi, en = LABELS[key]
            table.add_row(vi, en, str(value))
        Console().print(table)
    if catalog.problems:
        print(
            f"! {len(catalog.problems)} problem(s) in the catalog: run `ioc catalog check`", file=sys.stderr
        )
        raise typer.Exit(1)
