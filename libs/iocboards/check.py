"""`ioc grafana check`: every panel's and variable's SQL, expanded as the ClickHouse datasource plugin
expands it, run against ClickHouse; each must run and return the columns its panel reads."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from rich.progress import Progress

from iocboards.boards import BuiltBoard, PanelQuery, build_all
from iocboards.queries import TimeRange, expand
from ioccore.catalog import Catalog, load_catalog
from ioccore.clickhouse import ClickHouse


@dataclass
class Failure:
    query: PanelQuery
    error: str


@dataclass
class Report:
    boards: int = 0
    panels: int = 0
    ok: int = 0
    with_rows: int = 0
    failures: list[Failure] = field(default_factory=list)
    rows_by_board: dict[str, int] = field(default_factory=dict)
    empty: list[PanelQuery] = field(default_factory=list)  # ran fine, returned no rows for this range

    def summary(self) -> dict[str, int]:
        return {"boards": self.boards, "panels": self.panels, "queries_ok": self.ok,
                "queries_failed": len(self.failures)}  # fmt: skip


def default_range(start: str | None = None, end: str | None = None) -> TimeRange:
    stop = dt.datetime.fromisoformat(end) if end else dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if end and len(end) == 10:
        stop += dt.timedelta(days=1) - dt.timedelta(seconds=1)
    begin = dt.datetime.fromisoformat(start) if start else stop - dt.timedelta(days=30)
    return TimeRange(begin, stop, interval_s=3600)


def variables_for(catalog: Catalog, built: BuiltBoard) -> dict[str, str]:
    """The values a viewer starts with: the board's district (or the first one) and its first commune."""
    units = catalog.units
    scope = built.board.scope
    district = (
        scope.unit if scope.level == "district" else next(u.code for u in units if u.level == "district")
    )
    commune = next(u.code for u in units if u.parent == district)
    return {"district": district, "commune": commune}


def check(
    ch: ClickHouse, rng: TimeRange, built: list[BuiltBoard] | None = None, *, progress: bool = True
) -> Report:
    catalog = load_catalog()
    built = build_all(catalog) if built is None else built
    report = Report(boards=len(built), panels=sum(b.panels for b in built))
    total = sum(len(b.queries) for b in built)
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("Chạy truy vấn / running queries", total=total)
        for b in built:
            variables = variables_for(catalog, b)
            report.rows_by_board[b.board.id] = 0
            for pq in b.queries:
                bar.advance(task)
                try:
                    columns, rows = ch.execute_with_columns(expand(pq.sql, rng, variables))
                except Exception as exc:  # noqa: BLE001 - every failure is reported with its query
                    report.failures.append(Failure(pq, str(exc).splitlines()[0][:500]))
                    continue
                if tuple(columns) != pq.columns:
                    report.failures.append(Failure(pq, f"columns {columns} != expected {list(pq.columns)}"))
                    continue
                report.ok += 1
                if rows:
                    report.with_rows += 1
                    report.rows_by_board[b.board.id] += len(rows)
                else:
                    report.empty.append(pq)
    return report
