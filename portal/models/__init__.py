"""Every table of the portal, in one layer below the services.

Each module here holds one domain's tables and imports nothing but ``portal.core`` (and, for a foreign
key's relationship, a sibling module of this package), so any service may import any table without an
import circle. Importing this package registers every table on ``portal.core.db.metadata`` (Alembic, the
tests and :mod:`portal.registry` rely on that)."""

from portal.core.db import metadata
from portal.core.outbox import OutboxMessage
from portal.core.scheduling import ScheduledRun
from portal.models.audit import AuditChainHead, AuditEntry
from portal.models.evidence import Evidence, StoredObject, UploadSlot
from portal.models.grid import Committee, CommitteeStaff, Grid, WardenAssignment
from portal.models.identity import ApiKey, Passkey, SessionRecord, User
from portal.models.insurer import Consent, Insurer, InsurerUser
from portal.models.notify import Notification
from portal.models.selfcheck import (
    AccountabilityEntry,
    Checklist,
    ChecklistItem,
    Hazard,
    HazardEvent,
    Patrol,
    SelfCheck,
    SelfCheckAnswer,
)
from portal.models.tenants import Invitation, Jurisdiction, Membership, RegulatorAssignment, Tenant

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
