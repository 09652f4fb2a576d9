"""The govflow application: settings, database and runner wired together once per process.

The CLI, the API and the workers all go through this facade, so they share one behaviour.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import inspect

from engine.accounts import directory, login_guard, tokens
from engine.accounts.actor import SYSTEM, Actor
from engine.accounts.token_cache import TokenCache
from engine.bpmn.problems import Problem
from engine.config import Settings
from engine.errors import GovflowError, Unauthorized
from engine.jobs import handlers
from engine.runtime import catalog, clock, workcalendar
from engine.runtime import deploy as deploy_service
from engine.runtime.runner import Runner, Services
from engine.store import schema
from engine.store.db import Database
from engine.store.models import AuditEvent, Instance

CATALOG_DIR = Path("processes/catalog")
DEFAULT_ROSTER = CATALOG_DIR / "departments.tsv"


class SchemaOutdated(GovflowError):
    code = "schema_outdated"
    status = 503


class Govflow:
    def __init__(self, settings: Settings | None = None, database: Database | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.database = database or Database(self.settings.database_url)
        self.services = Services.create(self.settings, self.database)
        self.runner = Runner(self.services)
        self.token_cache = TokenCache(self.settings.token_cache_seconds)
        handlers.configure(list(self.settings.handler_modules))

    # --- database ----------------------------------------------------------------------------

    def is_empty(self) -> bool:
        return not inspect(self.database.engine).get_table_names()

    def init(self, roster: Path | None = None) -> int:
        """Create or upgrade the schema; seed the calendar (2004-2026) and the department
        roster into empty tables. Returns how many departments were added."""
        schema.upgrade(self.database)
        self.seed_calendar()
        roster = roster if roster is not None else DEFAULT_ROSTER
        if not roster.is_file():
            return 0
        with self.database.session() as session:
            added = directory.seed_departments(session, directory.read_departments_tsv(roster))
        self.seed_catalog(roster.parent)
        return added

    def seed_catalog(self, folder: Path = CATALOG_DIR) -> int:
        """The item catalogue and policies from processes/catalog/, into empty tables."""
        with self.database.session() as session:
            added = catalog.seed(session, folder)
        self.services.catalog.invalidate()
        return added

    def seed_calendar(self) -> int:
        with self.database.session() as session:
            added = workcalendar.seed_from_package(session)
        self.services.calendars.invalidate()
        return added

    def ensure_ready(self) -> None:
        """A fresh database is initialised; an outdated one is reported, never changed silently."""
        if self.is_empty():
            self.init()
            return
        current = schema.current_revision(self.database)
        head = schema.HEAD
        if current != head:
            raise SchemaOutdated(
                f"the database schema is at revision {current}, this govflow needs {head}: "
                "run `govflow db upgrade`"
            )

    # --- people ------------------------------------------------------------------------------

    def login(self, username: str, password: str, via: str) -> tuple[Actor, str, datetime]:
        """Check the password (refusing a user name with too many recent failures) and issue
        a token; a failure is recorded in its own transaction so it counts."""
        now = clock.now()
        ttl = timedelta(minutes=self.settings.token_ttl_minutes)
        window = timedelta(minutes=self.settings.login_lock_minutes)
        try:
            with self.database.session() as session:
                login_guard.check(session, username, now, self.settings.login_max_failures, window)
                actor = directory.authenticate(session, username, password)
                token, expires = tokens.issue(session, actor.username, ttl)
                session.add(
                    AuditEvent(at=now, actor=actor.username, command="login", data={"via": via})
                )
                return actor, token, expires
        except Unauthorized:
            with self.database.session() as session:
                login_guard.record_failure(session, username, now, via)
            raise

    def actor_for_token(self, token: str) -> Actor:
        """Who sends this bearer token (remembered for a few seconds: see TokenCache)."""
        key = tokens.digest(token)

        def load() -> tuple[Actor, datetime]:
            with self.database.read_session() as session:
                return tokens.actor_and_expiry(session, key)

        return self.token_cache.actor(key, load)

    def remembered_actor(self, token: str) -> Actor | None:
        return self.token_cache.remembered(tokens.digest(token))

    def logout(self, token: str, username: str | None) -> None:
        """Revoke the token (with an audit row when the user is known) and forget it here."""
        with self.database.session() as session:
            tokens.revoke(session, token)
            if username is not None:
                session.add(AuditEvent(actor=username, command="logout"))
        self.token_cache.forget(tokens.digest(token))

    def actor(self, username: str | None) -> Actor:
        if username is None:
            return SYSTEM
        with self.database.read_session() as session:
            return directory.load_actor(session, username)

    # --- definitions -------------------------------------------------------------------------

    def lint_paths(self, paths: list[Path]) -> list[Problem]:
        bpmn, forms = deploy_service.collect_files(paths)
        with self.database.read_session() as session:
            return deploy_service.lint(
                session, bpmn, forms, self.settings.forms_dir, self.settings.bpmn_max_bytes
            )

    def deploy_paths(self, paths: list[Path], actor: Actor) -> deploy_service.DeployResult:
        bpmn, forms = deploy_service.collect_files(paths)
        with self.database.session() as session:
            return deploy_service.deploy(
                session, actor, bpmn, forms, self.settings.forms_dir, self.settings.bpmn_max_bytes
            )

    # --- instances ---------------------------------------------------------------------------

    def start(
        self,
        key: str,
        actor: Actor,
        business_key: str | None = None,
        variables: dict[str, Any] | None = None,
        version: int | None = None,
    ) -> Instance:
        return self.runner.start(
            key, actor, version=version, business_key=business_key, variables=variables
        )

    def dispose(self) -> None:
        self.database.dispose()
