"""统一社会信用代码 (unified social credit code) validation per GB 32100-2015 and GB 11714."""

from __future__ import annotations

import enum

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


class UsccError(enum.StrEnum):
    LENGTH = "length"
    ILLEGAL_CHAR = "illegal_char"
    REGION_NOT_DIGITS = "region_not_digits"
    BAD_CHECK_CHAR = "bad_check_char"
    BAD_ORG_CODE_CHECK = "bad_org_code_check"


def normalise(raw: str) -> str:
    """Users type spaces for readability and lower case on phones: accept both."""
    return "".join(raw.split()).upper()


def _org_value(ch: str) -> int:
    # GB 11714 counts letters over the full alphabet (A=10 … Z=35), unlike GB 32100's charset.
    return int(ch) if ch.isdigit() else ord(ch) - ord("A") + 10


def check_char(first17: str) -> str:
    total = sum(CHARSET.index(ch) * w for ch, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return CHARSET[(31 - total % 31) % 31]


def org_check_char(first8: str) -> str:
    value = 11 - sum(_org_value(ch) * w for ch, w in zip(first8, _ORG_WEIGHTS, strict=True)) % 11
    return {10: "X", 11: "0"}.get(value, str(value))


def validate(raw: str, *, strict: bool = True) -> tuple[str, UsccError | None]:
    """Return the normalised code and the first rule it breaks (``None`` when valid)."""
    code = normalise(raw)
    if len(code) != 18:
        return code, UsccError.LENGTH
    if any(ch not in CHARSET for ch in code):
        return code, UsccError.ILLEGAL_CHAR
    if not code[2:8].isdigit():
        return code, UsccError.REGION_NOT_DIGITS
    if check_char(code[:17]) != code[17]:
        return code, UsccError.BAD_CHECK_CHAR
    if strict and org_check_char(code[8:16]) != code[16]:
        return code, UsccError.BAD_ORG_CODE_CHECK
    return code, None
