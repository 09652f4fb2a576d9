"""Who a bearer token belongs to, remembered for a few seconds per process.

Every API request authenticates; without this each one opens its own read transaction (a
pool checkout, its ping, two statements). A clerk's list-claim-complete cycle sends three
requests within a second, so a short memory answers most of them from RAM.

The trade-off, as with any cached or self-contained token (Camunda's and Keycloak's JWTs
are honoured until they expire): a token revoked, or a user's roles changed, in *another*
process is still honoured here for at most `ttl` seconds. A logout in this process forgets
the token at once, and expiry is checked on every use. `ttl` 0 turns the memory off.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

from engine.accounts.actor import Actor
from engine.errors import Unauthorized
from engine.runtime import clock

MAX_ENTRIES = 10_000


class TokenCache:
    def __init__(self, ttl_seconds: float) -> None:
        self.ttl = ttl_seconds
        self._entries: dict[str, tuple[Actor, datetime, float]] = {}
        self._lock = threading.Lock()
        self.clock: Callable[[], float] = time.monotonic

    def remembered(self, digest: str) -> Actor | None:
        """The actor if remembered and still fresh (no database: safe on the event loop)."""
        if self.ttl <= 0:
            return None
        entry = self._entries.get(digest)
        if entry is None or self.clock() - entry[2] >= self.ttl:
            return None
        actor, expires_at, _ = entry
        if expires_at <= clock.now():
            self.forget(digest)
            raise Unauthorized("the token has expired; log in again")
        return actor

    def actor(self, digest: str, load: Callable[[], tuple[Actor, datetime]]) -> Actor:
        """The actor for a token digest: remembered, or `load()`ed (which raises
        Unauthorized for a bad token; a refusal is never remembered)."""
        actor = self.remembered(digest)
        if actor is not None:
            return actor
        actor, expires_at = load()
        if self.ttl > 0:
            with self._lock:
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
                self._entries[digest] = (actor, expires_at, self.clock())
        return actor

    def forget(self, digest: str) -> None:
        with self._lock:
            self._entries.pop(digest, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
