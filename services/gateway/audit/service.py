"""One audit function used everywhere: every action and every denied attempt becomes a row of audit_log."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from ioccore.clickhouse import ClickHouse
from ioccore.logging import get_logger
from services.gateway.auth.models import Principal

log = get_logger("gateway.audit")
TABLE = "audit_log"


def record(
    ch: ClickHouse,
    *,
    request_id: str,
    principal: Principal | None,
    action: str,
    outcome: str,
    resource: str = "",
    unit: str = "",
    reason: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    row = {
        "time": [dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)],
        "request_id": [request_id],
        "actor": [principal.sub if principal else ""],
        "role": [principal.role.value if principal else ""],
        "district": [(principal.district or "") if principal else ""],
        "commune": [(principal.commune or "") if principal else ""],
        "source": [(principal.source or "") if principal else ""],
        "action": [action],
        "resource": [resource],
        "unit": [unit],
        "outcome": [outcome],
        "reason": [reason],
        "detail": [json.dumps(detail or {}, ensure_ascii=False, default=str)],
    }
    ch.insert(TABLE, row)
    log.info("audit", action=action, outcome=outcome, actor=row["actor"][0], resource=resource, unit=unit)


def recent(ch: ClickHouse, *, actor: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    cols = (
        "time",
        "request_id",
        "actor",
        "role",
        "action",
        "resource",
        "unit",
        "outcome",
        "reason",
        "detail",
    )
    where = "WHERE actor = %(actor)s" if actor else ""
    rows = ch.execute(
        f"SELECT {', '.join(cols)} FROM audit_log FINAL {where} ORDER BY time DESC LIMIT %(limit)s",  # noqa: S608
        {"actor": actor or "", "limit": limit},
    )
    return [dict(zip(cols, r, strict=True)) for r in rows]
