"""The person (or system component) a command runs for."""

from __future__ import annotations

from dataclasses import dataclass, field

ROLES = ("clerk", "designer", "ops", "admin")


@dataclass(frozen=True)
class Actor:
    username: str
    roles: frozenset[str] = field(default_factory=frozenset)
    departments: frozenset[str] = field(default_factory=frozenset)

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))


SYSTEM = Actor("system", frozenset({"admin", "ops", "designer"}), frozenset())
