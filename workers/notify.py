"""Notifications to applicants: SMS (pickup notices, reminders, answers)."""

from __future__ import annotations

import re
from typing import Any

from engine.jobs.handlers import BusinessError, JobContext, handler
from engine.runtime import clock
from workers.adapters import systems

PHONE = re.compile(r"^1[3-9]\d{9}$")


@handler("notify.sms", max_attempts=5, backoff_s=2.0, timeout_s=30.0)
def send_sms(ctx: JobContext, variables: dict[str, Any]) -> dict[str, Any]:
    """Reads `sms_to` (or `phone`) and `sms_text`; writes `sms_id`, `sms_sent_at`."""
    to = str(variables.get("sms_to") or variables.get("phone") or "").strip()
    if not PHONE.match(to):
        raise BusinessError("invalid_phone", f"{to!r} is not a mainland mobile number")
    text = str(variables.get("sms_text") or "").strip()
    if not text:
        case = ctx.business_key or ctx.instance_id
        text = f"【县政务服务中心】您的办件{case}有新进展，请留意。"
    return {
        "sms_id": systems().send_sms(ctx, to, text[:500]),
        "sms_sent_at": clock.now().isoformat(),
    }
