"""Shapes of the invitation forms (parsing only; the rules live in ``invitations.py``).

Every field is a string with a default, so a form always parses and the service names what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class InviteForm:
    kind: str = ""
    invitee_name: str = ""
    member_role: str = ""
    grid_id: str = ""
    committee_id: str = ""
    jurisdiction_id: str = ""
    insurer_id: str = ""
    org_name: str = ""


@dataclass
class RecoveryForm:
    user_id: str = ""
    login: str = ""  # the platform's form names the person by login
    revoke_old: str = ""
