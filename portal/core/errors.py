"""Errors every layer may raise and the web answers the same way everywhere."""

from __future__ import annotations


class NotAllowed(PermissionError):
    """A policy refused the action (``portal/*/policies.py``). Raised by services, whoever called them;
    ``message`` is already translated and safe to show. The web answers 403 with it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
