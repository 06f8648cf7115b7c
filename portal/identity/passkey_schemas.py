"""Shapes of the passkey JSON endpoints and forms (parsing only; the rules live in ``passkeys.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class OptionsRequest:
    """Asks for a new ceremony. ``display_name`` only matters when accepting an invitation."""

    display_name: str = ""


@dataclass
class CredentialSubmission:
    """A browser's ``PublicKeyCredential`` as JSON (``@simplewebauthn/browser`` output) and its context."""

    credential: dict[str, Any] = field(default_factory=dict)
    name: str = ""  # the passkey's name, when adding one
    next: str = ""  # where to go after signing in


@dataclass
class RenameForm:
    name: str = ""
