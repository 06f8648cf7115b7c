"""The inbox: notifications to people (in-app, with an e-mail copy when they have an address)."""

from __future__ import annotations

import uuid
from datetime import datetime

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.db import Base


class Notification(Base):
    """An in-app inbox message (e-mail/SMS copies go through the sender interface). Belongs to a person,
    not a tenant: the inbox shows one person's messages across their roles."""

    __tablename__ = "notification"
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str] = mapped_column(String(300), default="")
    read_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # Dedup key so that a job that runs twice does not notify twice.
    dedup_key: Mapped[str] = mapped_column(String(120))
    __table_args__ = (UniqueConstraint("user_id", "dedup_key"),)
