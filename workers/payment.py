"""Fees: whether a case's fee is free, paid or still owed."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from engine.jobs.handlers import JobContext, handler
from workers.adapters import systems


@handler("payment.check", max_attempts=5, backoff_s=5.0, timeout_s=30.0)
def check_payment(ctx: JobContext, variables: dict[str, Any]) -> dict[str, Any]:
    """Reads `fee_amount` (0 when absent); writes `fee_status` (free, paid, unpaid) and
    `fee_paid_amount`."""
    try:
        amount = Decimal(str(variables.get("fee_amount") or 0))
    except InvalidOperation:
        raise ValueError(f"fee_amount {variables.get('fee_amount')!r} is not a number") from None
    if amount <= 0:
        return {"fee_status": "free", "fee_paid_amount": 0}
    paid = systems().paid_amount(ctx)
    return {"fee_status": "paid" if paid >= amount else "unpaid", "fee_paid_amount": float(paid)}
