"""How a notification's e-mail copy leaves the portal.

``PORTAL_SMTP_URL`` unset: :class:`LogSender` (one structured log line per message, nothing sent).
Set, e.g. ``smtp://user:pass@host:587?starttls=1&from=portal@example.org``: :class:`SmtpSender` with the
standard library (``smtps://`` for implicit TLS, usually port 465). Senders are blocking: the outbox handler
calls them in a thread.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol

import structlog

from portal.config import parse_smtp_url

log = structlog.get_logger("portal.notify")


class Sender(Protocol):
    def send(self, to: str, subject: str, body: str) -> None:
        """Deliver one plain-text message or raise (the outbox retries)."""


class LogSender:
    """The default: logs what would have been sent."""

    def send(self, to: str, subject: str, body: str) -> None:
        log.info("notification_email", to=to, subject=subject, chars=len(body))


@dataclass(frozen=True)
class SmtpSender:
    host: str
    port: int = 25
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    implicit_tls: bool = False
    from_addr: str = "portal@localhost"
    timeout: float = 30.0

    @classmethod
    def from_url(cls, url: str) -> SmtpSender:
        """``smtp[s]://[user[:password]@]host[:port][?starttls=1&from=ADDRESS&timeout=SECONDS]``."""
        return cls(**vars(parse_smtp_url(url)))

    def message(self, to: str, subject: str, body: str) -> EmailMessage:
        msg = EmailMessage()  # UTF-8 body; non-ASCII subjects are encoded (RFC 2047) on the way out
        msg["From"] = self.from_addr
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain=self.from_addr.rpartition("@")[2] or None)
        msg.set_content(body)
        return msg

    def send(self, to: str, subject: str, body: str) -> None:
        msg = self.message(to, subject, body)
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.implicit_tls:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with smtp:
            if self.starttls:
                smtp.starttls(context=context)
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(msg)
        log.info("notification_emailed", to=to, host=self.host)


def sender_for(smtp_url: str | None) -> Sender:
    return SmtpSender.from_url(smtp_url) if smtp_url else LogSender()


_override: Sender | None = None


def use_sender(sender: Sender | None) -> None:
    """Set the sender this process uses (``None``: back to the one ``PORTAL_SMTP_URL`` chooses)."""
    global _override
    _override = sender


def current_sender() -> Sender:
    if _override is not None:
        return _override
    from portal.config import get_settings

    return sender_for(get_settings().smtp_url)
