"""Tables of the tenant's cycle. Checklists are reference data (no tenant); the rest arrives with the
self-check, hazard and accountability work."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, Boolean, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.db import Base
from portal.core.db import str_enum as _enum
from portal.core.tenancy import TenantScoped


class Severity(enum.StrEnum):
    GENERAL = "general"
    MAJOR = "major"  # suspected 重大火灾隐患 or life-critical: outside verification only


class ChecklistStatus(enum.StrEnum):
    PUBLISHED = "published"  # the version new runs start with
    SUPERSEDED = "superseded"  # an older version: runs that started with it keep it


class Checklist(Base):
    """A versioned template. A changed item means a new version; running self-checks keep theirs."""

    __tablename__ = "checklist"
    code: Mapped[str] = mapped_column(String(20))
    version: Mapped[int] = mapped_column(Integer)
    title_zh: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200))
    performed_by: Mapped[str] = mapped_column(String(16))
    frequency: Mapped[str] = mapped_column(String(16))
    applies_to: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    status: Mapped[ChecklistStatus] = mapped_column(_enum(ChecklistStatus, "checklist_status"))
    published_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # SHA-256 of the canonical source: loading the same version twice is a no-op, a different text an error.
    source_sha256: Mapped[str] = mapped_column(String(64))

    items: Mapped[list[ChecklistItem]] = relationship(
        back_populates="checklist", order_by="ChecklistItem.position", lazy="raise"
    )
    __table_args__ = (UniqueConstraint("code", "version"),)


class ChecklistItem(Base):
    """One question with its legal basis, why a failure matters and how to fix it.

    (提出不行的理由，讲出可行的办法: every failed item tells the unit why it fails and how to fix it.)
    """

    __tablename__ = "checklist_item"
    checklist_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("checklist.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(20), index=True)
    section_zh: Mapped[str] = mapped_column(String(200))
    section_en: Mapped[str] = mapped_column(String(200))
    text_zh: Mapped[str] = mapped_column(Text)
    text_en: Mapped[str] = mapped_column(Text)
    basis: Mapped[str] = mapped_column(Text)
    severity: Mapped[Severity] = mapped_column(_enum(Severity, "severity"))
    why_zh: Mapped[str] = mapped_column(Text)
    why_en: Mapped[str] = mapped_column(Text)
    how_to_fix_zh: Mapped[str] = mapped_column(Text)
    how_to_fix_en: Mapped[str] = mapped_column(Text)
    photo_required: Mapped[bool] = mapped_column(Boolean)
    immediate_fix_possible: Mapped[bool] = mapped_column(Boolean)

    checklist: Mapped[Checklist] = relationship(back_populates="items", lazy="raise")
    __table_args__ = (UniqueConstraint("checklist_id", "code"),)


class SelfCheckStatus(enum.StrEnum):
    DUE = "due"
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"  # answers frozen
    SIGNED = "signed"  # the responsible person's attestation is attached


class Answer(enum.StrEnum):
    PASS = "pass"  # noqa: S105  (an answer, not a password)
    FAIL = "fail"
    NOT_APPLICABLE = "na"


class SelfCheck(Base, TenantScoped):
    """月度自查: one run of a checklist by one tenant for one period (``2026-11``). ``overdue_at`` is a flag
    set when the signing deadline passes unsigned; the run can still be completed (it then counts late)."""

    __tablename__ = "selfcheck"
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    checklist_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("checklist.id"), index=True)
    period: Mapped[str] = mapped_column(String(7))
    status: Mapped[SelfCheckStatus] = mapped_column(_enum(SelfCheckStatus, "selfcheck_status"))
    deadline_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    overdue_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    submitted_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    # SHA-256 of the canonical report frozen at submission: what the responsible person signs.
    report_sha256: Mapped[str | None] = mapped_column(String(64))
    signed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    signed_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))

    checklist: Mapped[Checklist] = relationship(lazy="raise")
    answers: Mapped[list[SelfCheckAnswer]] = relationship(back_populates="selfcheck", lazy="raise")
    # Exactly one monthly self-check per tenant per period, however often or late the scheduler runs.
    __table_args__ = (UniqueConstraint("tenant_id", "period"),)


class SelfCheckAnswer(Base, TenantScoped):
    __tablename__ = "selfcheck_answer"
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    selfcheck_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("selfcheck.id", ondelete="CASCADE"), index=True
    )
    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("checklist_item.id"))
    item_code: Mapped[str] = mapped_column(String(20))
    answer: Mapped[Answer] = mapped_column(_enum(Answer, "answer"))
    note: Mapped[str] = mapped_column(Text, default="")
    answered_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    answered_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))

    selfcheck: Mapped[SelfCheck] = relationship(back_populates="answers", lazy="raise")
    __table_args__ = (UniqueConstraint("selfcheck_id", "item_code"),)


class HazardStatus(enum.StrEnum):
    OPEN = "open"
    IN_RECTIFICATION = "in_rectification"
    AWAITING_VERIFICATION = "awaiting_verification"
    CLOSED = "closed"


class HazardSource(enum.StrEnum):
    SELFCHECK = "selfcheck"
    PATROL = "patrol"
    WARDEN = "warden"
    REGULATOR = "regulator"
    TIP = "tip"


class Hazard(Base, TenantScoped):
    """火灾隐患. Carries the item's reason and fix guidance. ``overdue_at`` is a flag (deadline passed while
    not closed), never a dead end; major hazards close only on verification from outside the tenant."""

    __tablename__ = "hazard"
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    source: Mapped[HazardSource] = mapped_column(_enum(HazardSource, "hazard_source"))
    selfcheck_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("selfcheck.id", ondelete="SET NULL"))
    item_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("checklist_item.id"))
    item_code: Mapped[str | None] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(Text)
    note: Mapped[str] = mapped_column(Text, default="")
    reason_zh: Mapped[str] = mapped_column(Text, default="")
    reason_en: Mapped[str] = mapped_column(Text, default="")
    how_to_fix_zh: Mapped[str] = mapped_column(Text, default="")
    how_to_fix_en: Mapped[str] = mapped_column(Text, default="")
    severity: Mapped[Severity] = mapped_column(_enum(Severity, "severity"))
    status: Mapped[HazardStatus] = mapped_column(_enum(HazardStatus, "hazard_status"), index=True)
    deadline_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    overdue_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    responsible_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    opened_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    opened_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    rejections: Mapped[int] = mapped_column(Integer, default=0)
    immediate_fix_possible: Mapped[bool] = mapped_column(Boolean, default=False)

    events: Mapped[list[HazardEvent]] = relationship(
        back_populates="hazard", order_by="HazardEvent.at", lazy="raise"
    )


class HazardEvent(Base, TenantScoped):
    """Every transition of a hazard: who, when, why, with which evidence. The accountability record."""

    __tablename__ = "hazard_event"
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    hazard_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hazard.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[HazardStatus | None] = mapped_column(_enum(HazardStatus, "hazard_status"))
    to_status: Mapped[HazardStatus] = mapped_column(_enum(HazardStatus, "hazard_status"))
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    actor_kind: Mapped[str] = mapped_column(String(16))  # member | warden | regulator | system
    reason: Mapped[str] = mapped_column(Text, default="")
    evidence_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))

    hazard: Mapped[Hazard] = relationship(back_populates="events", lazy="raise")


class PatrolRound(enum.StrEnum):
    DAILY = "daily"  # the key unit's daily walk-through (61号令 第25条)
    OPENING = "opening"  # every 2 hours while a public gathering place is open
    CLOSING = "closing"  # after closing: leftover embers, power off
    NIGHT = "night"  # night rounds (hospitals, elderly homes, boarding schools, hotels...)


class Patrol(Base, TenantScoped):
    """防火巡查: a short walk-through log. Findings open hazards (source ``patrol``)."""

    __tablename__ = "patrol"
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    checklist_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("checklist.id"))
    round: Mapped[PatrolRound] = mapped_column(_enum(PatrolRound, "patrol_round"))
    day: Mapped[str] = mapped_column(String(10), index=True)  # display-zone date, e.g. 2026-11-23
    at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    patroller_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    # {"KEY-P-01": {"answer": "pass", "note": ""}, ...}: a patrol is short and read as a whole.
    results: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    findings: Mapped[int] = mapped_column(Integer, default=0)


class LedgerKind(enum.StrEnum):
    OVERDUE_SELFCHECK = "overdue_selfcheck"
    MISSED_PATROL = "missed_patrol"
    OVERDUE_HAZARD = "overdue_hazard"
    REOPENED_HAZARD = "reopened_hazard"
    IGNORED_ORDER = "ignored_order"


class LadderStep(enum.StrEnum):
    """Who is on the hook now; the ladder climbs after configurable delays."""

    MANAGER = "manager"
    RESPONSIBLE = "responsible"
    WARDEN = "warden"
    REGULATOR = "regulator"


class AccountabilityEntry(Base, TenantScoped):
    """自负: one lapse in the tenant's accountability ledger, attributed to a person, escalating."""

    __tablename__ = "accountability_entry"
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    kind: Mapped[LedgerKind] = mapped_column(_enum(LedgerKind, "ledger_kind"))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(Text)
    attributed_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    step: Mapped[LadderStep] = mapped_column(_enum(LadderStep, "ladder_step"))
    opened_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    escalated_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # One entry per lapse, however often the jobs that find lapses run.
    __table_args__ = (UniqueConstraint("tenant_id", "kind", "subject_id"),)


class DocumentType(enum.StrEnum):
    MONTHLY_REPORT = "monthly_report"  # a SelfCheck's frozen report
    COMMITMENT = "commitment"  # a Commitment (承诺书)


class Signature(Base, TenantScoped):
    """A responsible person's passkey signature over a document: the WebAuthn assertion whose challenge
    was the SHA-256 of the document's canonical JSON, kept whole so anyone can re-verify it later.

    The public key is copied from the passkey at signing time: the signature stays verifiable even if the
    passkey row is later revoked or the account closed. The RP ID and origin are kept for the same reason
    (a portal that moves to a new address must still verify its old signatures)."""

    __tablename__ = "signature"
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    document_type: Mapped[DocumentType] = mapped_column(_enum(DocumentType, "document_type"))
    document_id: Mapped[uuid.UUID] = mapped_column(index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    signer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    signer_name: Mapped[str] = mapped_column(String(200))
    passkey_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("passkey.id", ondelete="SET NULL"))
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1024))
    public_key: Mapped[bytes] = mapped_column(LargeBinary(2048))
    authenticator_data: Mapped[bytes] = mapped_column(LargeBinary(4096))
    client_data_json: Mapped[bytes] = mapped_column(LargeBinary(4096))
    signature: Mapped[bytes] = mapped_column(LargeBinary(1024))
    user_handle: Mapped[bytes | None] = mapped_column(LargeBinary(128))
    rp_id: Mapped[str] = mapped_column(String(253))
    origin: Mapped[str] = mapped_column(String(300))
    signed_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    # A document is signed once; a second signature of the same document is refused by the database too.
    __table_args__ = (UniqueConstraint("document_type", "document_id"),)


class CommitmentStatus(enum.StrEnum):
    PREPARED = "prepared"  # text fixed and hashed, waiting for the responsible person
    SIGNED = "signed"


class Commitment(Base, TenantScoped):
    """消防安全承诺书: the responsible person's yearly commitment, shown on the public board once signed.

    The text is fixed (and hashed) when it is prepared, from the template in ``data/commitment.yaml`` with
    the tenant's name and the responsible person's name filled in."""

    __tablename__ = "commitment"
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    year: Mapped[int] = mapped_column(Integer)
    status: Mapped[CommitmentStatus] = mapped_column(_enum(CommitmentStatus, "commitment_status"))
    responsible_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    responsible_name: Mapped[str] = mapped_column(String(200))
    text_zh: Mapped[str] = mapped_column(Text)
    text_en: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    prepared_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    prepared_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    signed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # One commitment per tenant per year.
    __table_args__ = (UniqueConstraint("tenant_id", "year"),)
