"""Imports every domain's models so that the metadata (Alembic, tests) sees all tables."""

from portal.core.db import metadata
from portal.core.outbox import OutboxMessage
from portal.core.scheduling import ScheduledRun
from portal.grid.models import Committee, CommitteeStaff, Grid, WardenAssignment
from portal.insurer.models import Consent, Insurer, InsurerUser
from portal.tenants.models import Jurisdiction, Membership, RegulatorAssignment, Tenant, User

__all__ = [
    "Committee",
    "CommitteeStaff",
    "Consent",
    "Grid",
    "Insurer",
    "InsurerUser",
    "Jurisdiction",
    "Membership",
    "OutboxMessage",
    "RegulatorAssignment",
    "ScheduledRun",
    "Tenant",
    "User",
    "WardenAssignment",
    "metadata",
]
