"""Settings from ``PORTAL_*`` environment variables (and an optional ``.env``).

Defaults are the embedded shape: one SQLite file, the in-process broker and a local object directory,
so ``portal serve`` works on a bare machine. A bad value stops start-up with one line per variable
(see :func:`load_settings`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET_FILE = Path("var/secret.key")


_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class SmtpAddress:
    """Where e-mail copies go: ``PORTAL_SMTP_URL`` taken apart."""

    host: str
    port: int
    username: str | None
    password: str | None
    starttls: bool
    implicit_tls: bool
    from_addr: str
    timeout: float


def parse_smtp_url(url: str) -> SmtpAddress:
    """``smtp[s]://[user[:password]@]host[:port][?starttls=1&from=ADDRESS&timeout=SECONDS]``."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("must be smtp://[USER:PASS@]HOST[:PORT][?starttls=1&from=ADDRESS] or smtps://...")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    implicit = parts.scheme == "smtps"
    return SmtpAddress(
        host=parts.hostname,
        port=parts.port or (465 if implicit else 25),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        starttls=query.get("starttls", "").lower() in _TRUE,
        implicit_tls=implicit,
        from_addr=query.get("from") or "portal@localhost",
        timeout=float(query.get("timeout") or 30.0),
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTAL_", env_file=".env", extra="ignore")

    env: Literal["development", "production", "test"] = "development"
    database_url: str = "sqlite+aiosqlite:///var/portal.db"
    # Migrations run as the table owner; the app connects as a role that owns nothing (RLS applies).
    migration_database_url: str | None = None
    database_pool_size: int = Field(default=10, ge=1, le=200)
    broker_url: str = "inprocess://"
    storage_url: str = "file://var/objects"
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    redis_url: str | None = None
    secret_key: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str | None = None
    rp_id: str = "localhost"
    default_locale: Literal["zh_CN", "en"] = "zh_CN"
    display_timezone: str = "Asia/Shanghai"
    demo: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = False
    worker_threads: int = Field(default=2, ge=1, le=64)
    outbox_stale_after_s: int = Field(default=120, ge=5)
    scheduler: bool = True
    # With inprocess://, run dramatiq worker threads inside the web process (the embedded shape).
    embedded_worker: bool = True
    evidence_quota_mb: int = Field(default=2048, ge=1)
    evidence_max_upload_mb: int = Field(default=20, ge=1, le=5000)
    evidence_retention_years: int = Field(default=3, ge=1, le=100)
    # Sessions: idle timeout (sliding, renewed by use) and absolute timeout (from sign-in, never renewed).
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_absolute_hours: int = Field(default=12, ge=1, le=24 * 30)
    # Per client address: sign-in and invitation POSTs, and any other public route for a signed-out visitor.
    rate_limit_signin_per_minute: int = Field(default=20, ge=1, le=100_000)
    rate_limit_public_per_minute: int = Field(default=120, ge=1, le=1_000_000)
    # The reverse proxies whose X-Forwarded-For names the visitor (comma-separated addresses or networks).
    # Empty, the embedded default: nobody's; the connection's own address is the client (rate limits key
    # on it), so a visitor cannot pick their address by sending the header.
    trusted_proxies: str = ""
    # E-mail copies of notifications: smtp://USER:PASS@HOST:587?starttls=1&from=ADDRESS (unset: logged only).
    smtp_url: str | None = None

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, v: str) -> str:
        import ipaddress

        parts = [p.strip() for p in v.split(",") if p.strip()]
        for part in parts:
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError as exc:
                raise ValueError("must be comma-separated IP addresses or networks, e.g. 10.0.0.2") from exc
        return ",".join(parts)

    @field_validator("database_url", "migration_database_url")
    @classmethod
    def _db_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        scheme = urlsplit(v).scheme
        if scheme not in {"sqlite+aiosqlite", "postgresql+asyncpg"}:
            raise ValueError("must start with sqlite+aiosqlite:/// or postgresql+asyncpg://")
        return v

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, v: str) -> str:
        if urlsplit(v).scheme not in {"inprocess", "redis", "rediss", "amqp", "amqps"}:
            raise ValueError("must be inprocess://, redis://HOST:PORT/DB or amqp://USER:PASS@HOST:PORT/VHOST")
        return v

    @field_validator("storage_url")
    @classmethod
    def _storage_url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in {"file", "s3"} or not (parts.netloc or parts.path):
            raise ValueError("must be file://DIRECTORY or s3://BUCKET")
        if parts.scheme == "s3" and len(parts.netloc) < 3:
            raise ValueError("s3:// needs a bucket name of at least 3 characters")
        return v

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, v: str | None) -> str | None:
        if not v:
            return None
        parse_smtp_url(v)  # raises ValueError with the expected shape
        return v

    @field_validator("display_timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("must be an IANA time zone such as Asia/Shanghai") from exc
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        if self.storage_url.startswith("s3://") and not (self.s3_access_key and self.s3_secret_key):
            raise ValueError("PORTAL_S3_ACCESS_KEY and PORTAL_S3_SECRET_KEY are required with s3:// storage")
        if self.env == "production" and not self.secret_key:
            raise ValueError("PORTAL_SECRET_KEY is required when PORTAL_ENV=production")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def base_url(self) -> str:
        # Passkeys need a domain, not an IP, as RP ID: print and use localhost (recipes/passkeys-e2e.md).
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "localhost" if self.host in {"127.0.0.1", "::1", "localhost"} else self.host
        return f"http://{host}:{self.port}"

    @property
    def on_loopback(self) -> bool:
        return self.host in {"127.0.0.1", "::1", "localhost"}

    def signing_key(self) -> bytes:
        """The HMAC key for sessions and signed URLs; generated once into var/ for development."""
        if self.secret_key:
            return self.secret_key.encode()
        if not DEFAULT_SECRET_FILE.exists():
            DEFAULT_SECRET_FILE.parent.mkdir(parents=True, exist_ok=True)
            DEFAULT_SECRET_FILE.write_text(secrets.token_urlsafe(48))
        return DEFAULT_SECRET_FILE.read_text().strip().encode()


class SettingsError(Exception):
    """Start-up configuration error: one line per bad variable."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) if err["loc"] else ""
            name = f"PORTAL_{field.upper()}" if field else "configuration"
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{name}: {msg}")
        raise SettingsError(lines) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def load_settings_or_exit() -> Settings:
    """For command lines: print one line per bad variable and exit 2 instead of a traceback."""
    import sys

    try:
        return load_settings()
    except SettingsError as exc:
        for line in exc.lines:
            print(f"configuration error: {line}", file=sys.stderr)
        sys.exit(2)
