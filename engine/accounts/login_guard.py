"""Login rate limiting: after N failed logins for a user name within a window, further
attempts are refused (429) until the window has passed.

Failures are audit events (`login_failed`), so the limit holds across API processes and
restarts, and ops can see who was tried. A successful login does not wipe the record; it
only stops counting failures made before it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.errors import TooManyAttempts
from engine.store.models import AuditEvent


def check(
    session: Session, username: str, now: datetime, max_failures: int, window: timedelta
) -> None:
    """Refuse the attempt when the user name has too many recent failures."""
    if max_failures <= 0:
        return
    since = now - window
    last_success = session.scalar(
        select(func.max(AuditEvent.at)).where(
            AuditEvent.actor == username, AuditEvent.command == "login"
        )
    )
    if last_success is not None and last_success > since:
        since = last_success
    failures = list(
        session.scalars(
            select(AuditEvent.at)
            .where(
                AuditEvent.actor == username,
                AuditEvent.command == "login_failed",
                AuditEvent.at > since,
            )
            .order_by(AuditEvent.at.desc())
            .limit(max_failures)
        )
    )
    if len(failures) >= max_failures:
        retry = max(1, int((failures[-1] + window - now).total_seconds()))
        raise TooManyAttempts(
            f"too many failed logins for {username!r}; try again in {retry} seconds",
            {"retry_after_s": retry},
        )


def record_failure(session: Session, username: str, now: datetime, where: str) -> None:
    session.add(
        AuditEvent(at=now, actor=username[:64], command="login_failed", data={"via": where})
    )
