"""Departments and users: creating, listing and loading them."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import delete, literal, select, union_all
from sqlalchemy.orm import Session

from engine.accounts.actor import ROLES, Actor
from engine.accounts.passwords import hash_password, verify_password
from engine.errors import Conflict, InvalidInput, NotFound, Unauthorized
from engine.store.models import Department, User, UserDepartment, UserRole

_CODE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


def add_department(session: Session, code: str, name: str) -> Department:
    if not _CODE.match(code):
        raise InvalidInput(
            f"department code {code!r} must be lowercase letters, digits, '-' or '_', "
            "starting with a letter"
        )
    if not name.strip():
        raise InvalidInput("department name must not be empty")
    if session.get(Department, code) is not None:
        raise Conflict(f"department {code!r} already exists")
    department = Department(code=code, name=name.strip())
    session.add(department)
    session.flush()
    return department


def list_departments(session: Session) -> list[Department]:
    return list(session.scalars(select(Department).order_by(Department.code)))


def department_names(session: Session) -> dict[str, str]:
    return {d.code: d.name for d in list_departments(session)}


def read_departments_tsv(path: Path) -> list[tuple[str, str]]:
    """Rows (code, name_zh) of a departments.tsv roster."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        return [(row["code"].strip(), row["name_zh"].strip()) for row in reader if row.get("code")]


def seed_departments(session: Session, rows: Iterable[tuple[str, str]]) -> int:
    """Add the roster's departments that are missing (a newer govflow may bring new ones, such
    as the leading group); existing departments are never changed. Returns how many."""
    existing = set(session.scalars(select(Department.code)))
    count = 0
    for code, name in rows:
        if code in existing:
            continue
        session.add(Department(code=code, name=name))
        existing.add(code)
        count += 1
    session.flush()
    return count


def add_user(
    session: Session,
    username: str,
    roles: Iterable[str],
    departments: Iterable[str] = (),
    password: str | None = None,
    display_name: str = "",
) -> User:
    if not _USERNAME.match(username):
        raise InvalidInput(
            f"username {username!r} may only hold letters, digits and . _ @ - (1-64 characters)"
        )
    roles = sorted(set(roles))
    if not roles:
        raise InvalidInput("a user needs at least one role")
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise InvalidInput(f"unknown role {unknown[0]!r}; roles are {', '.join(ROLES)}")
    departments = sorted(set(departments))
    for code in departments:
        if session.get(Department, code) is None:
            raise InvalidInput(f"department {code!r} does not exist")
    if "clerk" in roles and not departments:
        raise InvalidInput("a clerk must belong to at least one department (--dept)")
    if session.scalars(select(User).where(User.username == username)).first() is not None:
        raise Conflict(f"user {username!r} already exists")
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password) if password else None,
        active=True,
    )
    session.add(user)
    session.flush()
    for role in roles:
        session.add(UserRole(user_id=user.id, role=role))
    for code in departments:
        session.add(UserDepartment(user_id=user.id, department_code=code))
    session.flush()
    return user


def set_password(session: Session, username: str, password: str) -> None:
    user = _user(session, username)
    user.password_hash = hash_password(password)
    user.token_version += 1


def set_user_departments(session: Session, username: str, departments: Iterable[str]) -> None:
    user = _user(session, username)
    session.execute(delete(UserDepartment).where(UserDepartment.user_id == user.id))
    for code in sorted(set(departments)):
        if session.get(Department, code) is None:
            raise InvalidInput(f"department {code!r} does not exist")
        session.add(UserDepartment(user_id=user.id, department_code=code))


def _user(session: Session, username: str) -> User:
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound(f"no user {username!r}")
    return user


def load_actor(session: Session, username: str) -> Actor:
    """The active user as an Actor with roles and departments."""
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None or not user.active:
        raise NotFound(f"no active user {username!r}")
    return actor_of(session, user.id, user.username)


def actor_of(session: Session, user_id: int, username: str) -> Actor:
    """The user's roles and departments in one query (every API request authenticates)."""
    memberships = session.execute(
        union_all(
            select(literal("role"), UserRole.role).where(UserRole.user_id == user_id),
            select(literal("department"), UserDepartment.department_code).where(
                UserDepartment.user_id == user_id
            ),
        )
    ).all()
    roles = frozenset(value for kind, value in memberships if kind == "role")
    departments = frozenset(value for kind, value in memberships if kind == "department")
    return Actor(username, roles, departments)


def authenticate(session: Session, username: str, password: str) -> Actor:
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None or not user.active or not verify_password(user.password_hash, password):
        raise Unauthorized("wrong username or password")
    return load_actor(session, username)


def list_users(session: Session) -> list[tuple[User, list[str], list[str]]]:
    result = []
    for user in session.scalars(select(User).order_by(User.username)):
        roles = list(session.scalars(select(UserRole.role).where(UserRole.user_id == user.id)))
        depts = list(
            session.scalars(
                select(UserDepartment.department_code).where(UserDepartment.user_id == user.id)
            )
        )
        result.append((user, sorted(roles), sorted(depts)))
    return result


def seed_demo_users(
    session: Session, password: str
) -> list[tuple[str, list[str], list[str]]] | None:
    """An admin, a designer, an ops user and one clerk per department (`<code>_clerk`), all
    with the demo password — only into a database that has no users yet."""
    if session.scalars(select(User.id).limit(1)).first() is not None:
        return None
    password_hash = hash_password(password)
    people: list[tuple[str, list[str], list[str]]] = [
        ("admin", ["admin"], []),
        ("designer", ["designer"], []),
        ("ops", ["ops"], []),
    ]
    people += [(f"{d.code}_clerk", ["clerk"], [d.code]) for d in list_departments(session)]
    for username, roles, departments in people:
        user = add_user(session, username, roles, departments)
        user.password_hash = password_hash
    session.flush()
    return people
