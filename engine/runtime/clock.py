"""The engine's notion of "now", replaceable so timers and deadlines are tested without sleeping.

Every part of govflow that asks for the current time (timers inside SpiffWorkflow included, see
spiff_patches) goes through `now()`. Tests and the conformance harness move the clock with
`use_clock` / `FrozenClock`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

_lock = threading.Lock()
_source: Callable[[], datetime] | None = None


def now() -> datetime:
    """Current time, timezone-aware in UTC."""
    source = _source
    if source is None:
        return datetime.now(UTC)
    value = source()
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class FrozenClock:
    """A clock that stands still until moved; used by tests and the conformance harness."""

    def __init__(self, start: datetime) -> None:
        self.current = start if start.tzinfo else start.replace(tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> datetime:
        self.current = self.current + delta
        return self.current

    def set(self, moment: datetime) -> None:
        self.current = moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@contextmanager
def use_clock(source: Callable[[], datetime]) -> Iterator[Callable[[], datetime]]:
    """Run a block with another time source (process-wide)."""
    global _source
    with _lock:
        previous = _source
        _source = source
    try:
        yield source
    finally:
        with _lock:
            _source = previous
