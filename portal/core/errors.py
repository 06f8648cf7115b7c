"""Errors every layer may raise and the web answers the same way everywhere."""

from __future__ import annotations


class NotAllowed(PermissionError):
    """A policy refused the action (``portal/*/policies.py``). Raised by services, whoever called them;
    ``message`` is already translated and safe to show. The web answers 403 with it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Refused(ValueError):
    """A domain refused a step of its state machine (not yet submitted, already signed...); ``code`` names
    the refusal for a translated message. Each domain raises its own subclass; code that drives several
    domains alike (the passkey signing endpoints) catches this one."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code
