"""Shapes of tenancy data on the JSON API."""

from __future__ import annotations

import uuid

from pydantic import BaseModel


class MemberOut(BaseModel):
    display_name: str
    role: str


class TenantOut(BaseModel):
    id: uuid.UUID
    code: str
    kind: str
    category: str | None
    name_zh: str
    name_en: str
    address: str
    jurisdiction_code: str
    readiness: str


class TenantPage(BaseModel):
    items: list[TenantOut]
    total: int
    offset: int
    limit: int
