"""Imports every domain's models so that the metadata (Alembic, tests) sees all tables."""

from portal.core.audit.models import AuditChainHead, AuditEntry
from portal.core.auth.models import ApiKey, Passkey, SessionRecord
from portal.core.db import metadata
from portal.core.outbox import OutboxMessage
from portal.core.scheduling import ScheduledRun
from portal.grid.models import Committee, CommitteeStaff, Grid, WardenAssignment
from portal.insurer.models import Consent, Insurer, InsurerUser
from portal.tenants.models import Invitation, Jurisdiction, Membership, RegulatorAssignment, Tenant, User

__all__ = [
    "ApiKey",
    "AuditChainHead",
    "AuditEntry",
    "Committee",
    "CommitteeStaff",
    "Consent",
    "Grid",
    "Insurer",
    "InsurerUser",
    "Invitation",
    "Jurisdiction",
    "Membership",
    "OutboxMessage",
    "Passkey",
    "RegulatorAssignment",
    "ScheduledRun",
    "SessionRecord",
    "Tenant",
    "User",
    "WardenAssignment",
    "metadata",
]
