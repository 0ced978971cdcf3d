"""Alerts: reads (scoped by unit) and operator actions sent as commands to the alerts service."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from services.gateway import metrics
from services.gateway.alerts import service
from services.gateway.alerts.commands import CommandTimeout, new_command_id
from services.gateway.auth.models import ACTORS
from services.gateway.auth.permissions import Caller, require
from services.gateway.geo import unit_tree

router = APIRouter(prefix="/v1", tags=["alerts"])
State = Literal["firing", "acknowledged", "assigned", "resolved"]
Severity = Literal["info", "warning", "critical"]


class Alert(BaseModel):
    alert_id: str
    rule: str
    indicator: str
    field: str
    cadence: str
    period: str
    unit: str
    level: str
    district: str
    severity: str
    state: str
    opened_at: dt.datetime
    updated_at: dt.datetime
    acknowledged_by: str
    assignee: str
    escalated: bool
    silenced: bool
    value: float | None
    threshold: float | None
    title_vi: str
    sop_vi: str
    version: int


class AlertDetail(BaseModel):
    alert: Alert
    timeline: list[dict[str, Any]]


class OpenCount(BaseModel):
    district: str
    severity: str
    count: int


class FieldCount(BaseModel):
    field: str
    severity: str
    count: int


class Silence(BaseModel):
    until: dt.datetime | None = None
    recurring: str | None = Field(
        None,
        pattern=r"^(mon|tue|wed|thu|fri|sat|sun)(,(mon|tue|wed|thu|fri|sat|sun))* ([01][0-9]|2[0-3]):[0-5][0-9]-"
        r"([01][0-9]|2[0-4]):[0-5][0-9]$",
        description="'weekdays HH:MM-HH:MM' in province time, e.g. 'sat,sun 22:00-24:00'",
    )


class ActionRequest(BaseModel):
    note: str | None = Field(None, max_length=2000)
    assignee: str | None = Field(None, min_length=1, max_length=128)
    expected_version: int | None = Field(None, ge=0)
    silence: Silence | None = None


class ActionResult(BaseModel):
    command_id: str
    alert_id: str
    outcome: Literal["applied", "rejected"]
    reason: str = ""
    version: int | None = None
    state: str | None = None


@router.get("/alerts", response_model=list[Alert], responses={403: {}})
def list_alerts(
    unit: str | None = Query(None, pattern=r"^[0-9]{2,5}$", description="This unit and every unit below it"),
    state: list[State] | None = Query(None),
    severity: list[Severity] | None = Query(None),
    field: str | None = Query(None, max_length=64),
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = Query(200, ge=1, le=2000),
    caller: Caller = Depends(require()),
) -> list[Alert]:
    """Cảnh báo / alerts by unit, state, severity, field and time (opened), newest first."""
    units = caller.units_filter(unit, "read alerts")
    rows = service.query(
        caller.ch,
        units,
        states=state,
        severities=severity,
        field=field,
        since=since,
        until=until,
        limit=limit,
    )
    return [Alert(**r) for r in rows]


@router.get("/alerts/open-by-district", response_model=list[OpenCount])
def open_by_district(caller: Caller = Depends(require())) -> list[OpenCount]:
    """Cảnh báo đang mở theo huyện và mức độ / open alerts per district and severity."""
    return [OpenCount(**r) for r in service.open_by_district(caller.ch, sorted(caller.units))]


@router.get("/alerts/open-by-field", response_model=list[FieldCount], responses={403: {}})
def open_by_field(
    unit: str | None = Query(None, pattern=r"^[0-9]{2,5}$"), caller: Caller = Depends(require())
) -> list[FieldCount]:
    """Cảnh báo đang mở theo lĩnh vực / open alerts per field and severity."""
    units = caller.units_filter(unit, "read alerts")
    return [FieldCount(**r) for r in service.open_by_field(caller.ch, units)]


def _alert_in_scope(caller: Caller, alert_id: str, action: str) -> dict[str, Any]:
    alert = service.get(caller.ch, alert_id)
    if alert is None:
        raise HTTPException(404, f"Không có cảnh báo / unknown alert {alert_id}")
    if alert["unit"] not in caller.units:
        caller.deny(
            action,
            f"Cảnh báo ngoài phạm vi của bạn / alert {alert_id} is outside your scope",
            resource=alert_id,
            unit=alert["unit"],
        )
    return alert


@router.get("/alerts/{alert_id}", response_model=AlertDetail, responses={403: {}, 404: {}})
def get_alert(alert_id: str, caller: Caller = Depends(require())) -> AlertDetail:
    """Một cảnh báo và diễn biến / one alert with its timeline and standard operating procedure."""
    alert = _alert_in_scope(caller, alert_id, "read alerts")
    return AlertDetail(alert=Alert(**alert), timeline=service.timeline(caller.ch, alert_id))


Action = Literal["acknowledge", "assign", "comment", "resolve", "silence"]


@router.post(
    "/alerts/{alert_id}/{action}",
    response_model=ActionResult,
    responses={
        403: {"description": "Out of scope or role may not act"},
        404: {},
        409: {"model": ActionResult, "description": "Rejected by the alerts service (reason given)"},
        422: {},
        503: {"description": "Broker unavailable"},
        504: {"description": "No result from the alerts service in time"},
    },
)
async def act(
    alert_id: str,
    action: Action,
    request: Request,
    body: ActionRequest | None = None,
    caller: Caller = Depends(require(*ACTORS)),
) -> ActionResult:
    """Xác nhận, giao việc, ghi chú, xử lý xong, tạm ẩn / acknowledge, assign, comment, resolve, silence.
    The answer is the alerts service's outcome: applied, or rejected with the reason (409)."""
    gw = request.app.state.gw
    body = body or ActionRequest()
    verb = f"alert.{action}"
    alert = await run_in_threadpool(_alert_in_scope, caller, alert_id, verb)
    if action == "assign" and not body.assignee:
        raise HTTPException(422, "Cần người được giao / `assignee` is required to assign")
    if action == "comment" and not body.note:
        raise HTTPException(422, "Cần nội dung ghi chú / `note` is required to comment")
    if action == "silence" and not (body.silence and (body.silence.until or body.silence.recurring)):
        raise HTTPException(422, "Cần thời hạn tạm ẩn / `silence.until` or `silence.recurring` is required")
    if gw.commands is None:
        raise HTTPException(503, "Chưa kết nối Kafka / the broker is not reachable; retry later")
    p = caller.principal
    data: dict[str, Any] = {
        "command_id": new_command_id(),
        "alert_id": alert_id,
        "action": action,
        "actor": {"id": p.sub, "role": p.role.value, "district": unit_tree().district_of(p.district or "")},
    }
    if body.note:
        data["note"] = body.note
    if body.assignee:
        data["assignee"] = body.assignee
    if body.expected_version is not None:
        data["expected_version"] = body.expected_version
    if action == "silence" and body.silence:
        silence: dict[str, str] = {}
        if body.silence.until:
            silence["until"] = body.silence.until.isoformat()
        if body.silence.recurring:
            silence["recurring"] = body.silence.recurring
        data["silence"] = silence
    detail = {k: v for k, v in data.items() if k not in ("actor",)}
    try:
        result = await gw.commands.send(alert, data, gw.settings.command_timeout_s)
    except CommandTimeout:
        metrics.COMMANDS.labels(action, "timeout").inc()
        await run_in_threadpool(
            caller.audit, verb, "timeout", resource=alert_id, unit=alert["unit"],
            reason="no result from the alerts service", detail=detail,
        )  # fmt: skip
        raise HTTPException(
            504,
            f"Dịch vụ cảnh báo chưa trả lời sau {gw.settings.command_timeout_s:g} s; lệnh {data['command_id']} có thể "
            f"vẫn được áp dụng, hãy tải lại cảnh báo / the alerts service did not answer in time; the command may "
            f"still apply: reload the alert",
        ) from None
    except Exception as exc:
        raise HTTPException(
            503, f"Kafka không nhận lệnh / the broker did not take the command ({exc})"
        ) from exc
    outcome = "applied" if result.get("outcome") == "applied" else "rejected"
    metrics.COMMANDS.labels(action, outcome).inc()
    await run_in_threadpool(
        caller.audit, verb, outcome, resource=alert_id, unit=alert["unit"],
        reason=str(result.get("reason") or ""), detail=detail,
    )  # fmt: skip
    out = ActionResult(
        command_id=data["command_id"],
        alert_id=alert_id,
        outcome=outcome,
        reason=str(result.get("reason") or ""),
        version=result.get("version"),
        state=result.get("state"),
    )
    if outcome == "rejected":
        from fastapi.responses import JSONResponse

        return JSONResponse(status_code=409, content=out.model_dump())  # type: ignore[return-value]
    return out
