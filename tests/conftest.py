"""Test setup: the same suite runs on SQLite (default) and on PostgreSQL.

Set GOVFLOW_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test to run on PostgreSQL.
With CI=true a configured server that cannot be reached fails the run; it is never skipped.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import text

from engine.accounts import directory
from engine.app import Govflow
from engine.config import Settings
from engine.store import schema
from engine.store.db import Database
from tests.support import GovflowHarness

ROOT = Path(__file__).resolve().parent.parent
ROSTER = ROOT / "processes" / "catalog" / "departments.tsv"
PG_URL = os.environ.get("GOVFLOW_TEST_DATABASE_URL", "")


def _is_pg() -> bool:
    return PG_URL.startswith("postgres")


@pytest.fixture(scope="session")
def db_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, seeded database: a file for SQLite, the `test` database for PostgreSQL."""
    if _is_pg():
        database = Database(PG_URL)
        try:
            with database.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        except Exception as exc:  # fail loudly: CI must not silently fall back to SQLite
            pytest.fail(f"PostgreSQL at {PG_URL} is not reachable: {exc}", pytrace=False)
        schema.upgrade(database)
        database.dispose()
        yield PG_URL
        return
    path = tmp_path_factory.mktemp("template") / "govflow.db"
    database = Database(f"sqlite:///{path}")
    schema.upgrade(database)
    with database.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    database.dispose()
    yield str(path)


def _reset_pg(url: str) -> None:
    database = Database(url)
    with database.engine.begin() as conn:
        tables = [
            row[0]
            for row in conn.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                )
            )
        ]
        if tables:
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    database.dispose()


def _fresh_database(db_template: str, directory: Path) -> str:
    if _is_pg():
        _reset_pg(db_template)
        return db_template
    target = directory / "govflow.db"
    shutil.copy(db_template, target)
    return f"sqlite:///{target}"


@pytest.fixture
def database_url(db_template: str, tmp_path: Path) -> str:
    return _fresh_database(db_template, tmp_path)


@pytest.fixture(scope="module")
def module_app(db_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Govflow]:
    """One database for a whole module, for tests that only read or add unrelated rows."""
    url = _fresh_database(db_template, tmp_path_factory.mktemp("module"))
    application = Govflow(
        replace(Settings(), database_url=url, forms_dir=None, script_timeout_s=3.0)
    )
    with application.database.session() as session:
        directory.seed_departments(session, directory.read_departments_tsv(ROSTER))
    application.seed_calendar()
    application.seed_catalog(ROSTER.parent)
    yield application
    application.dispose()


# Scripts get 3 s (not the 2 s default, not less): a loaded CI machine must not turn an
# ordinary script into a time-out; the endless-loop tests still end in 3 s.
@pytest.fixture
def settings(database_url: str) -> Settings:
    return replace(Settings(), database_url=database_url, forms_dir=None, script_timeout_s=3.0)


@pytest.fixture
def app(settings: Settings) -> Iterator[Govflow]:
    application = Govflow(settings)
    with application.database.session() as session:
        directory.seed_departments(session, directory.read_departments_tsv(ROSTER))
    application.seed_calendar()
    application.seed_catalog(ROSTER.parent)
    yield application
    application.dispose()


@pytest.fixture
def gf(app: Govflow, tmp_path: Path) -> GovflowHarness:
    return GovflowHarness(app, tmp_path)
