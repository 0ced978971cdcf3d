"""Health checks of the broker and ClickHouse (used by `ioc stack status` and, later, /readyz)."""

from __future__ import annotations

from typing import Any

from ioccore.errors import OperationalError


def kafka_health(bootstrap_servers: str, timeout_s: float = 3.0) -> dict[str, Any]:
    from ioccore.kafka import existing_topics

    out: dict[str, Any] = {"bootstrap": bootstrap_servers, "ok": False}
    try:
        out["topics"] = len(existing_topics(bootstrap_servers, timeout_s=timeout_s))
        out["ok"] = True
    except OperationalError as exc:
        out["error"] = exc.problem
    return out


def clickhouse_health(url: str, timeout_s: float = 2.0) -> dict[str, Any]:
    from ioccore.clickhouse import probe

    out: dict[str, Any] = {"url": url, "ok": False, "version": None}
    try:
        out["version"] = probe(url, timeout_s)
        out["ok"] = True
    except OperationalError as exc:
        out["error"] = exc.problem
    return out
