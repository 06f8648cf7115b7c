"""Residents' committees, their grids and the grid wardens assigned to them."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.db import Base
from portal.models.tenants import Jurisdiction


class Committee(Base):
    """社区居委会: sits in a street; owns grids."""

    __tablename__ = "committee"
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    jurisdiction_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jurisdiction.id"), index=True)

    jurisdiction: Mapped[Jurisdiction] = relationship(lazy="raise")


class Grid(Base):
    """网格: a patch of a committee's area walked by its wardens."""

    __tablename__ = "grid"
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    committee_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("committee.id"), index=True)

    committee: Mapped[Committee] = relationship(lazy="raise")


class CommitteeStaff(Base):
    __tablename__ = "committee_staff"
    committee_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("committee.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    __table_args__ = (UniqueConstraint("committee_id", "user_id"),)


class WardenAssignment(Base):
    """A warden's grid; a warden's scope is the tenants of all assigned grids."""

    __tablename__ = "warden_assignment"
    grid_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("grid.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    __table_args__ = (UniqueConstraint("grid_id", "user_id"),)
