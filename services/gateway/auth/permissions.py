"""Permissions declared on each route: `caller: Caller = Depends(require(*roles))`.

A caller carries its scope (the units it may see); views check units with `caller.ensure_unit`. Every denial
(no token, wrong role, unit out of scope) is written to the audit log before the 401/403 goes out."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.gateway.audit import service as audit
from services.gateway.auth.models import Principal, Role
from services.gateway.auth.service import AuthError
from services.gateway.geo import PROVINCE, unit_tree

bearer = HTTPBearer(auto_error=False, description="JWT (OIDC in production, `ioc token` locally)")


@dataclass
class Caller:
    principal: Principal
    request_id: str
    request: Request
    units: frozenset[str] = field(default_factory=frozenset)

    @property
    def ch(self):  # noqa: ANN201
        return self.request.app.state.gw.ch

    @property
    def is_province(self) -> bool:
        return PROVINCE in self.units

    def sees(self, unit: str) -> bool:
        return unit in self.units

    def audit(
        self, action: str, outcome: str, *, resource: str = "", unit: str = "", reason: str = "", detail=None
    ) -> None:
        audit.record(
            self.ch,
            request_id=self.request_id,
            principal=self.principal,
            action=action,
            outcome=outcome,
            resource=resource,
            unit=unit,
            reason=reason,
            detail=detail,
        )

    def deny_quietly(self, action: str, reason: str, *, resource: str = "", unit: str = "") -> None:
        self.audit(action, "denied", resource=resource, unit=unit, reason=reason)

    def deny(
        self, action: str, reason: str, *, resource: str = "", unit: str = "", status: int = 403
    ) -> None:
        self.deny_quietly(action, reason, resource=resource, unit=unit)
        raise HTTPException(status, reason)

    def ensure_unit(self, unit: str, action: str, resource: str = "") -> None:
        if unit not in unit_tree().units:
            raise HTTPException(404, f"Không có đơn vị {unit} / unknown unit {unit}")
        if unit not in self.units:
            self.deny(
                action,
                f"Ngoài phạm vi được xem: đơn vị {unit} / out of your scope: unit {unit}",
                resource=resource,
                unit=unit,
            )

    def units_filter(self, unit: str | None, action: str) -> list[str]:
        """The units a query may cover: `unit`'s subtree (when in scope) or the caller's whole scope."""
        if unit:
            self.ensure_unit(unit, action)
            return sorted(unit_tree().subtree(unit))
        return sorted(self.units)


def scope_units(principal: Principal) -> frozenset[str]:
    top = principal.scope_unit
    return unit_tree().subtree(top) if top else frozenset()


def _action_name(request: Request) -> str:
    route = request.scope.get("route")
    return f"{request.method} {getattr(route, 'path', request.url.path)}"


def authenticate(request: Request, token: str | None) -> Principal:
    gw = request.app.state.gw
    rid = request.headers.get("x-request-id") or uuid.uuid4().hex
    if not token:
        audit.record(
            gw.ch,
            request_id=rid,
            principal=None,
            action=_action_name(request),
            outcome="denied",
            reason="no bearer token",
        )
        raise HTTPException(
            401, "Cần đăng nhập / a bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    try:
        return gw.tokens.verify(token)
    except AuthError as exc:
        audit.record(
            gw.ch,
            request_id=rid,
            principal=None,
            action=_action_name(request),
            outcome="denied",
            reason=str(exc),
        )
        raise HTTPException(
            401, f"Mã truy cập không hợp lệ / {exc}", headers={"WWW-Authenticate": "Bearer"}
        ) from exc


def require(*roles: Role, allow_query_token: bool = False) -> Callable[..., Caller]:
    """A dependency admitting the given roles (all readers when none are given)."""
    allowed: Iterable[Role] = roles or (
        Role.province_admin,
        Role.province_viewer,
        Role.district_operator,
        Role.commune_viewer,
    )
    allowed = frozenset(allowed)

    def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> Caller:
        token = credentials.credentials if credentials else None
        if token is None and allow_query_token:
            # EventSource (SSE) cannot send headers: the stream also takes ?access_token=.
            token = request.query_params.get("access_token")
        principal = authenticate(request, token)
        caller = Caller(
            principal=principal,
            request_id=request.headers.get("x-request-id") or uuid.uuid4().hex,
            request=request,
            units=scope_units(principal),
        )
        if principal.role not in allowed:
            caller.deny(
                _action_name(request),
                f"Vai trò {principal.role.value} không được phép / role {principal.role.value} may not do this",
            )
        return caller

    return dependency
