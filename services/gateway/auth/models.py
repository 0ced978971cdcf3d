"""Who is calling: roles and the principal a bearer token stands for."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel


class Role(StrEnum):
    province_admin = "province_admin"
    province_viewer = "province_viewer"
    district_operator = "district_operator"
    commune_viewer = "commune_viewer"
    department_system = "department_system"


READERS = (Role.province_admin, Role.province_viewer, Role.district_operator, Role.commune_viewer)
ACTORS = (Role.province_admin, Role.district_operator)


class Principal(BaseModel):
    sub: str
    role: Role
    name: str = ""
    district: str | None = None  # district_operator
    commune: str | None = None  # commune_viewer
    source: str | None = None  # department_system: the CloudEvents source it emits as
    types: list[str] | None = None  # department_system: explicit event types (else derived from contracts)

    @property
    def scope_unit(self) -> str | None:
        """The unit whose subtree this principal may see; None for none (department systems)."""
        if self.role in (Role.province_admin, Role.province_viewer):
            return "74"
        if self.role is Role.district_operator:
            return self.district
        if self.role is Role.commune_viewer:
            return self.commune
        return None


class TokenRequest(BaseModel):
    sub: str
    role: Role
    district: str | None = None
    commune: str | None = None
    source: str | None = None
