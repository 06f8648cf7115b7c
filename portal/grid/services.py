"""Committees, grids and warden assignments."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from portal.models.grid import Committee, CommitteeStaff, Grid, WardenAssignment
from portal.models.identity import User
from portal.models.tenants import Jurisdiction, JurisdictionLevel
from portal.tenants.services import TenancyError


async def add_committee(
    session: AsyncSession, *, code: str, name_zh: str, name_en: str, street: Jurisdiction
) -> Committee:
    if street.level is not JurisdictionLevel.STREET:
        raise TenancyError("committee_needs_street")
    committee = Committee(code=code, name_zh=name_zh, name_en=name_en, jurisdiction_id=street.id)
    session.add(committee)
    await session.flush()
    return committee


async def add_grid(
    session: AsyncSession, *, committee: Committee, code: str, name_zh: str, name_en: str
) -> Grid:
    grid = Grid(code=code, name_zh=name_zh, name_en=name_en, committee_id=committee.id)
    session.add(grid)
    await session.flush()
    return grid


async def add_committee_staff(session: AsyncSession, committee: Committee, user: User) -> None:
    session.add(CommitteeStaff(committee_id=committee.id, user_id=user.id))
    await session.flush()


async def assign_warden(session: AsyncSession, grid: Grid, user: User) -> None:
    session.add(WardenAssignment(grid_id=grid.id, user_id=user.id))
    await session.flush()
