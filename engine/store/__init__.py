"""Persistence: SQLAlchemy models, database wiring and Alembic migrations."""
