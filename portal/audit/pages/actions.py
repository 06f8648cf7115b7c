"""What each recorded action is called on the audit page. Every action the portal records has a label here
(``tests/audit/test_audit_labels.py`` finds them all in the code), so nobody reads a raw action id."""

from __future__ import annotations

from portal.core.i18n import N_, _

ACTION_LABELS: dict[str, str] = {
    "tenant.registered": N_("Unit registered on the platform"),
    "tenant.read": N_("Unit viewed from outside"),
    "tenant.list_read": N_("Unit listed from outside"),
    "audit.read": N_("Audit log viewed from outside"),
    "evidence.original_read": N_("Original photo or document opened from outside"),
    "member.added": N_("Person joined"),
    "user.locale_changed": N_("Language changed"),
    "invitation.created": N_("Invitation created"),
    "invitation.recovery_created": N_("Recovery invitation created"),
    "invitation.revoked": N_("Invitation revoked"),
    "invitation.accepted": N_("Invitation accepted"),
    "auth.signed_in": N_("Signed in"),
    "auth.passkey_added": N_("Passkey added"),
    "auth.passkey_renamed": N_("Passkey renamed"),
    "auth.passkey_revoked": N_("Passkey revoked"),
    "auth.passkeys_revoked_all": N_("All passkeys revoked"),
    "checklist.published": N_("Checklist published"),
    "selfcheck.created": N_("Monthly self-check started"),
    "selfcheck.submitted": N_("Monthly self-check submitted"),
    "selfcheck.signed": N_("Monthly self-check signed"),
    "hazard.opened": N_("Hazard reported"),
    "hazard.start": N_("Hazard rectification started"),
    "hazard.submit_fix": N_("Hazard fix submitted for verification"),
    "hazard.verify": N_("Hazard fix verified, hazard closed"),
    "hazard.reject": N_("Hazard fix rejected"),
    "hazard.fix_on_the_spot": N_("Hazard fixed on the spot"),
    "hazard.assigned": N_("Person named to rectify a hazard"),
    "commitment.prepared": N_("Annual commitment prepared"),
    "tenant.public_phone_changed": N_("Contact phone on the public board changed"),
    "commitment.signed": N_("Annual commitment signed"),
    "accountability.opened": N_("Accountability entry recorded"),
    "accountability.escalated": N_("Accountability entry escalated"),
    "accountability.resolved": N_("Accountability entry resolved"),
    "evidence.added": N_("Photo or document added"),
    "evidence.purged": N_("Photo or document deleted after the retention period"),
    "evidence.integrity_failed": N_("A stored photo or document no longer matches what was uploaded"),
    "patrol.logged": N_("Patrol logged"),
    "member.role_changed": N_("Role changed"),
    "member.removed": N_("Person removed from the unit"),
    "auth.signout_everywhere": N_("Signed out everywhere"),
    "insurer.api_key_created": N_("Insurer API key created"),
    "insurer.api_key_revoked": N_("Insurer API key revoked"),
}


def action_label(action: str) -> str:
    """The action in the reader's language. An action without a label (an entry older than its label, or a
    label forgotten despite the test) still says that something was recorded, and under which name."""
    label = ACTION_LABELS.get(action)
    return _(label) if label else _("Other event (%(action)s)", action=action)
