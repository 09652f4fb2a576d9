"""Free EMS mail-out of results (免费寄递)."""

from __future__ import annotations

from typing import Any

from engine.jobs.handlers import BusinessError, JobContext, handler
from workers.adapters import systems

S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)


def tracking_number(serial: int, prefix: str = "EA", country: str = "CN") -> str:
    """A UPU S10 item identifier: two letters, eight digits, a check digit, the country."""
    digits = f"{serial % 100_000_000:08d}"
    remainder = sum(int(d) * w for d, w in zip(digits, S10_WEIGHTS, strict=True)) % 11
    check = 11 - remainder
    check = 0 if check == 10 else 5 if check == 11 else check
    return f"{prefix}{digits}{check}{country}"


@handler("delivery.ems", max_attempts=5, backoff_s=5.0, timeout_s=30.0)
def mail_out(ctx: JobContext, variables: dict[str, Any]) -> dict[str, Any]:
    """Reads `ems_address`, `recipient` (or `applicant_name`) and `phone`; writes
    `tracking_number`."""
    address = str(variables.get("ems_address") or "").strip()
    if not address:
        raise BusinessError("missing_address", "no mailing address (ems_address) on the case")
    recipient = str(variables.get("recipient") or variables.get("applicant_name") or "申请人")
    phone = str(variables.get("phone") or "")
    number = systems().create_delivery(ctx, recipient, phone, address, tracking_number)
    return {"tracking_number": number}
