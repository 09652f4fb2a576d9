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
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from engine.accounts import directory
from engine.app import Govflow
from engine.config import Settings
from engine.store import schema
from engine.store.db import Database
from tests.support import GovflowHarness

ROOT = Path(__file__).resolve().parent.parent
ROSTER = ROOT / "processes" / "catalog" / "departments.tsv"
PG_URL = os.environ.get("GOVFLOW_TEST_DATABASE_URL", "")


SNAPSHOT = "seed_snapshot"


def _is_pg() -> bool:
    return PG_URL.startswith("postgres")


def _worker_url(url: str) -> str:
    """Under pytest-xdist (`make test` runs two workers) each worker has its own PostgreSQL
    database, `<name>_gw0` and so on, created when missing; alone, the configured one."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    server, _, name = url.rpartition("/")
    mine = f"{name}_{worker}"
    admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            known = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": mine})
            if known.first() is None:
                conn.execute(text(f'CREATE DATABASE "{mine}"'))
    finally:
        admin.dispose()
    return f"{server}/{mine}"


def _seed(url: str) -> None:
    """The roster, the calendar and the catalogue, once into the template: seeding them
    for every test cost about 0.4 s a test (the catalogue files are parsed each time)."""
    application = Govflow(replace(Settings(), database_url=url, forms_dir=None))
    with application.database.session() as session:
        directory.seed_departments(session, directory.read_departments_tsv(ROSTER))
    application.seed_calendar()
    application.seed_catalog(ROSTER.parent)
    application.dispose()


def _public_tables(conn: Any) -> list[str]:
    return [
        row[0]
        for row in conn.execute(
            text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            )
        )
    ]


@pytest.fixture(scope="session")
def db_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, seeded database: a file for SQLite, the `test` database for PostgreSQL
    (with its seeded rows kept in the seed_snapshot schema)."""
    if _is_pg():
        try:
            url = _worker_url(PG_URL)
            database = Database(url)
            with database.engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {SNAPSHOT} CASCADE"))
                conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        except Exception as exc:  # fail loudly: CI must not silently fall back to SQLite
            pytest.fail(f"PostgreSQL at {PG_URL} is not reachable: {exc}", pytrace=False)
        schema.upgrade(database)
        _seed(url)
        # the seeded rows are kept aside; each test's reset copies them back on the server
        with database.engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {SNAPSHOT}"))
            for table in _public_tables(conn):
                conn.execute(text(f"CREATE TABLE {SNAPSHOT}.{table} AS TABLE public.{table}"))
        database.dispose()
        yield url
        return
    path = tmp_path_factory.mktemp("template") / "govflow.db"
    database = Database(f"sqlite:///{path}")
    schema.upgrade(database)
    database.dispose()
    _seed(f"sqlite:///{path}")
    database = Database(f"sqlite:///{path}")
    with database.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    database.dispose()
    yield str(path)


def _reset_pg(url: str) -> None:
    """Every table emptied, then the seeded rows copied back (foreign keys are not checked
    while they are: the snapshot was consistent when taken)."""
    database = Database(url)
    with database.engine.begin() as conn:
        tables = _public_tables(conn)
        if tables:
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        for table in tables:
            conn.execute(text(f"INSERT INTO public.{table} SELECT * FROM {SNAPSHOT}.{table}"))
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
    yield application
    application.dispose()


# Scripts get 3 s (not the 2 s default, not less): a loaded CI machine must not turn an
# ordinary script into a time-out; the endless-loop tests still end in 3 s.
@pytest.fixture
def settings(database_url: str) -> Settings:
    return replace(Settings(), database_url=database_url, forms_dir=None, script_timeout_s=3.0)


@pytest.fixture
def app(settings: Settings) -> Iterator[Govflow]:
    application = Govflow(settings)  # the template holds the roster, calendar and catalogue
    yield application
    application.dispose()


@pytest.fixture
def gf(app: Govflow, tmp_path: Path) -> GovflowHarness:
    return GovflowHarness(app, tmp_path)
