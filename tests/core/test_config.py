"""Configuration: defaults are the embedded shape; a bad value stops start-up with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from portal.config import Settings, SettingsError, load_settings

PORTAL = str(Path(sys.executable).parent / "portal")


def test_defaults_are_the_embedded_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("PORTAL_"):
            monkeypatch.delenv(key)
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.database_url == "sqlite+aiosqlite:///var/portal.db"
    assert s.broker_url == "inprocess://"
    assert s.storage_url == "file://var/objects"
    assert s.default_locale == "zh_CN" and s.display_timezone == "Asia/Shanghai"
    assert s.base_url == "http://localhost:8000"  # passkeys need a domain, not 127.0.0.1


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        (
            "database_url",
            "mysql://x",
            "PORTAL_DATABASE_URL: must start with sqlite+aiosqlite:/// or postgresql",
        ),
        ("broker_url", "kafka://x", "PORTAL_BROKER_URL: must be inprocess://"),
        ("storage_url", "ftp://x", "PORTAL_STORAGE_URL: must be file://DIRECTORY or s3://BUCKET"),
        ("port", "99999", "PORTAL_PORT:"),
        ("display_timezone", "Mars/Base", "PORTAL_DISPLAY_TIMEZONE: must be an IANA time zone"),
        ("default_locale", "fr", "PORTAL_DEFAULT_LOCALE:"),
    ],
)
def test_bad_values_name_the_variable(field: str, value: str, needle: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(**{field: value})
    assert len(info.value.lines) == 1
    assert info.value.lines[0].startswith(needle)


def test_s3_storage_needs_credentials() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(storage_url="s3://evidence")
    assert "PORTAL_S3_ACCESS_KEY" in info.value.lines[0]


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    return subprocess.run([PORTAL, *args], env={**clean, **env}, capture_output=True, text=True, timeout=60)


def test_cli_refuses_a_malformed_value_with_one_line(tmp_path: Path) -> None:
    result = _cli("check", PORTAL_BROKER_URL="kafka://nope")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "configuration error: PORTAL_BROKER_URL: must be inprocess://, redis://HOST:PORT/DB or "
        "amqp://USER:PASS@HOST:PORT/VHOST"
    ]
    assert "Traceback" not in result.stderr


def test_check_names_each_unreachable_service(tmp_path: Path) -> None:
    result = _cli(
        "check",
        PORTAL_DATABASE_URL="postgresql+asyncpg://nobody@127.0.0.1:1/none",
        PORTAL_BROKER_URL="redis://127.0.0.1:1/0",
        PORTAL_STORAGE_URL=f"file://{tmp_path / 'objects'}",
        PORTAL_SECRET_KEY="k" * 40,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert any(line.startswith("FAIL database (PORTAL_DATABASE_URL)") for line in lines)
    assert any(line.startswith("FAIL broker (PORTAL_BROKER_URL)") for line in lines)
    assert not any("storage" in line for line in lines)
    assert "Traceback" not in result.stderr


def test_serve_refuses_demo_mode_off_loopback() -> None:
    result = _cli("serve", PORTAL_DEMO="true", PORTAL_HOST="0.0.0.0")
    assert result.returncode == 2
    assert "refusing demo mode on 0.0.0.0" in result.stderr
