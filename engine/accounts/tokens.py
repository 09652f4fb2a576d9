"""Bearer tokens: random, stored only as a SHA-256, expiring, revocable one by one."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.accounts.actor import Actor
from engine.accounts.directory import actor_of
from engine.errors import Unauthorized
from engine.runtime import clock
from engine.store.models import ApiToken, User


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue(session: Session, username: str, ttl: timedelta) -> tuple[str, datetime]:
    user = session.scalars(select(User).where(User.username == username)).one()
    token = secrets.token_urlsafe(32)
    now = clock.now()
    expires = now + ttl
    session.add(
        ApiToken(token_hash=digest(token), user_id=user.id, created_at=now, expires_at=expires)
    )
    session.flush()
    return token, expires


def actor_and_expiry(session: Session, token_digest: str) -> tuple[Actor, datetime]:
    """The token's actor and when the token expires; Unauthorized for a token that is
    unknown, revoked, expired or of a disabled account."""
    row = session.execute(
        select(ApiToken.revoked_at, ApiToken.expires_at, User.id, User.username, User.active)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == token_digest)
    ).first()
    if row is None:
        raise Unauthorized("the token is not valid")
    revoked_at, expires_at, user_id, username, active = row
    if revoked_at is not None:
        raise Unauthorized("the token has been revoked; log in again")
    if expires_at <= clock.now():
        raise Unauthorized("the token has expired; log in again")
    if not active:
        raise Unauthorized("the account is disabled")
    return actor_of(session, user_id, username), expires_at


def revoke(session: Session, token: str) -> None:
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == digest(token))).first()
    if row is not None and row.revoked_at is None:
        row.revoked_at = clock.now()
