"""Password hashing with Argon2id (argon2-cffi's defaults follow RFC 9106).

Each Argon2 computation takes 64 MiB on purpose; at most four run at once, so a burst of
logins queues instead of taking the server's memory (50 at once would need 3 GiB).
"""

from __future__ import annotations

import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
_at_once = threading.BoundedSemaphore(4)


def hash_password(password: str) -> str:
    with _at_once:
        return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        with _at_once:
            return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
