"""The one place that wires the portal together: every table, outbox handler, periodic job and evidence
owner is named here, and nowhere registers itself as a side effect of being imported.

The app factory, the worker, the command line (and through it the demo), the migrations and the tests call
:func:`install` before they touch the database; it is idempotent. A domain that adds a handler, a job or an
owner of evidence adds one line below, so what runs in the background is readable in one screen.
"""

from __future__ import annotations

from portal.core import outbox, scheduling
from portal.core.scheduling import daily_key, monthly_key
from portal.evidence import derivatives as evidence_derivatives
from portal.evidence import jobs as evidence_jobs
from portal.evidence import owners as evidence_owners
from portal.evidence import retention
from portal.evidence import services as evidence
from portal.models import metadata
from portal.models.evidence import OwnerType
from portal.notify import services as notify
from portal.selfcheck import evidence_owners as evidence_owners_of_cycle
from portal.selfcheck.hazards import services as hazards
from portal.selfcheck.ledger import jobs as accountability_jobs
from portal.selfcheck.ledger import services as ledger
from portal.selfcheck.monthly import jobs as selfcheck_jobs
from portal.tenants import jobs as tenant_jobs
from portal.tenants import services as tenants

__all__ = ["install", "metadata"]

_installed = False


def install() -> None:
    """Register every outbox handler, periodic job and evidence owner (the tables are registered on the
    metadata by importing :mod:`portal.models`, above)."""
    global _installed
    if _installed:
        return

    # Outbox handlers: topic → the idempotent function that does the work of one row.
    outbox.register(tenants.READINESS_TOPIC, tenants.recompute_readiness)
    outbox.register(
        evidence.PROCESS_TOPIC,
        evidence_derivatives.process_handler,
        on_failed=evidence_derivatives.processing_failed,
    )
    outbox.register(evidence.DELETE_TOPIC, evidence_derivatives.delete_objects_handler)
    outbox.register(notify.DELIVER_TOPIC, notify.deliver)

    # Periodic jobs: name, the period it runs once in, the job.
    scheduling.register("selfcheck.open_periods", monthly_key, selfcheck_jobs.open_periods_job)
    scheduling.register("selfcheck.flag_overdue", daily_key, selfcheck_jobs.flag_overdue_job)
    scheduling.register("selfcheck.accountability", daily_key, accountability_jobs.accountability_job)
    scheduling.register("tenants.nightly_readiness", daily_key, tenant_jobs.nightly_readiness)
    scheduling.register("evidence.retention", daily_key, evidence_jobs.purge_expired)

    # What a closed hazard settles at once: its entries in the accountability ledger.
    hazards.when_closed(ledger.resolve_fixed)

    # Owners of evidence: how each finds its tenant inside the scope, when it stops taking photos, and
    # when its photos may be purged.
    evidence_owners.register_owner(OwnerType.TENANT, evidence_owners.tenant_owner)
    evidence_owners.register_owner(OwnerType.HAZARD, evidence_owners_of_cycle.hazard_owner)
    evidence_owners.register_owner(
        OwnerType.SELFCHECK_ITEM,
        evidence_owners_of_cycle.answer_owner,
        frozen=evidence_owners_of_cycle.answer_frozen,
    )
    retention.register_rule(OwnerType.HAZARD, evidence_owners_of_cycle.hazards_closed_before)
    retention.register_rule(OwnerType.SELFCHECK_ITEM, evidence_owners_of_cycle.answers_submitted_before)
    _installed = True
