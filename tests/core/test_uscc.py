"""统一社会信用代码 validation against the published vectors (tests/data/uscc-cases.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from portal.core.uscc import UsccError, validate

CASES = yaml.safe_load((Path(__file__).resolve().parents[1] / "data" / "uscc-cases.yaml").read_text("utf-8"))


@pytest.mark.parametrize("case", CASES["valid"], ids=lambda c: c["code"])
def test_valid_codes(case: dict) -> None:
    assert validate(case["code"]) == (case["code"], None)


@pytest.mark.parametrize("case", CASES["normalises_to_valid"], ids=lambda c: c["normalised"])
def test_user_input_is_normalised(case: dict) -> None:
    assert validate(case["input"]) == (case["normalised"], None)


@pytest.mark.parametrize("case", CASES["invalid"], ids=lambda c: c["code"])
def test_invalid_codes_name_the_broken_rule(case: dict) -> None:
    _code, problem = validate(case["code"])
    assert problem == UsccError(case["reason"])


def test_lenient_mode_skips_the_org_code_check() -> None:
    assert validate("91990103MA1EQ1KY0Y", strict=False)[1] is None
