"""Imports every domain's models so that the metadata (Alembic, tests) sees all tables."""

from portal.core.audit.models import AuditChainHead, AuditEntry
from portal.core.auth.models import ApiKey, Passkey, SessionRecord
from portal.core.db import metadata
from portal.core.outbox import OutboxMessage
from portal.core.scheduling import ScheduledRun
from portal.evidence.models import Evidence, StoredObject, UploadSlot
from portal.grid.models import Committee, CommitteeStaff, Grid, WardenAssignment
from portal.insurer.models import Consent, Insurer, InsurerUser
from portal.selfcheck.models import (
    AccountabilityEntry,
    Checklist,
    ChecklistItem,
    Hazard,
    HazardEvent,
    Notification,
    Patrol,
    SelfCheck,
    SelfCheckAnswer,
)
from portal.tenants.models import Invitation, Jurisdiction, Membership, RegulatorAssignment, Tenant, User

__all__ = [
    "AccountabilityEntry",
    "ApiKey",
    "AuditChainHead",
    "AuditEntry",
    "Checklist",
    "ChecklistItem",
    "Committee",
    "CommitteeStaff",
    "Consent",
    "Evidence",
    "Grid",
    "Hazard",
    "HazardEvent",
    "Insurer",
    "InsurerUser",
    "Invitation",
    "Jurisdiction",
    "Membership",
    "Notification",
    "OutboxMessage",
    "Passkey",
    "Patrol",
    "RegulatorAssignment",
    "ScheduledRun",
    "SelfCheck",
    "SelfCheckAnswer",
    "SessionRecord",
    "StoredObject",
    "Tenant",
    "UploadSlot",
    "User",
    "WardenAssignment",
    "metadata",
]
