"""Checking identifiers: resident ID numbers (GB 11643), social credit codes (GB 32100)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from engine.jobs.handlers import BusinessError, JobContext, handler
from engine.runtime import clock

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
CREDIT_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
REGISTRATION_AUTHORITIES = {
    "1": "机构编制",
    "5": "民政",
    "9": "工商（市场监管）",
    "Y": "其他",
    "2": "外交",
    "3": "司法行政",
    "4": "文化",
    "6": "旅游",
    "7": "宗教",
    "8": "工会",
    "A": "中央军委改革和编制办公室",
    "N": "农业",
}


def id_number_problem(value: str) -> str | None:
    """Why an 18-digit resident ID number is wrong, or None (GB 11643-1999)."""
    if not re.fullmatch(r"\d{17}[\dX]", value):
        return "must be 17 digits followed by a digit or X"
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return f"birth date {value[6:14]} is not a date"
    if born.year < 1900 or born > clock.now().date():
        return f"birth date {born.isoformat()} is out of range"
    total = sum(int(d) * w for d, w in zip(value[:17], ID_WEIGHTS, strict=True))
    expected = ID_CHECK[total % 11]
    if value[17] != expected:
        return f"check digit should be {expected}"
    return None


def credit_code_problem(value: str) -> str | None:
    """Why an 18-character unified social credit code is wrong, or None (GB 32100-2015)."""
    if len(value) != 18 or any(ch not in CREDIT_CHARSET for ch in value):
        return "must be 18 characters from 0-9 and A-Y without I, O, S, V, Z"
    total = sum(
        CREDIT_CHARSET.index(ch) * w for ch, w in zip(value[:17], CREDIT_WEIGHTS, strict=True)
    )
    check = (31 - total % 31) % 31
    expected = CREDIT_CHARSET[check]
    if value[17] != expected:
        return f"check character should be {expected}"
    return None


@handler("verify.id_card", max_attempts=3, backoff_s=1.0, timeout_s=10.0)
def verify_id_card(ctx: JobContext, variables: dict[str, Any]) -> dict[str, Any]:
    """Reads `id_number`; writes `id_valid`, `birth_date` (ISO), `gender` (male/female)."""
    value = str(variables.get("id_number") or "").strip().upper()
    problem = id_number_problem(value)
    if problem:
        raise BusinessError(
            "invalid_id_number", f"ID number {value!r}: {problem}", {"id_valid": False}
        )
    born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    return {
        "id_valid": True,
        "birth_date": born.isoformat(),
        "gender": "male" if int(value[16]) % 2 else "female",
    }


@handler("verify.credit_code", max_attempts=3, backoff_s=1.0, timeout_s=10.0)
def verify_credit_code(ctx: JobContext, variables: dict[str, Any]) -> dict[str, Any]:
    """Reads `credit_code`; writes `credit_code_valid`, `registration_authority`, `entity_type`."""
    value = str(variables.get("credit_code") or "").strip().upper()
    problem = credit_code_problem(value)
    if problem:
        raise BusinessError(
            "invalid_credit_code", f"credit code {value!r}: {problem}", {"credit_code_valid": False}
        )
    return {
        "credit_code_valid": True,
        "registration_authority": REGISTRATION_AUTHORITIES.get(value[0], "其他"),
        "entity_type": value[1],
    }
