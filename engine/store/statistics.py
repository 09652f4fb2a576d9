"""Whether PostgreSQL keeps the planner's statistics of govflow's busiest tables fresh.

The worklists, the next-task pick, the stuck detector and the searches are planned on
those statistics, and autovacuum is what refreshes them. With autovacuum off, for the
server or for a table, a table is never analyzed unless someone runs ANALYZE, and plans
chosen on guesses can walk whole tables (docs/performance.md, "Sunday, an Intel Xeon").
`govflow serve` and `govflow db check` say so, with what to do.
"""

from __future__ import annotations

from sqlalchemy import text

from engine.store.db import Database

# the tables the hot queries read, and that grow with every case
BUSY_TABLES = (
    "instances",
    "human_tasks",
    "task_candidates",
    "element_states",
    "jobs",
    "timers",
    "incidents",
    "audit_events",
)

_OFF = {"false", "off", "no", "n", "f", "0"}

_SETTINGS = text(
    """
    SELECT c.relname, c.reloptions, current_setting('autovacuum')
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() AND c.relname = ANY(:tables)
    ORDER BY c.relname
    """
)


def _disabled_on_table(options: list[str] | None) -> bool:
    for option in options or ():
        name, _, value = option.partition("=")
        if name == "autovacuum_enabled" and value.lower() in _OFF:
            return True
    return False


def autovacuum_problems(database: Database) -> list[str]:
    """What keeps autovacuum from analyzing the busy tables, one sentence each with what to
    do; empty when nothing does, and on SQLite (which plans without such statistics)."""
    if database.dialect != "postgresql":
        return []
    with database.engine.connect() as connection:
        rows = connection.execute(_SETTINGS, {"tables": list(BUSY_TABLES)}).all()
    if not rows:
        return []
    remedy = (
        "the planner's statistics are never refreshed and queries slow down as the tables "
        "grow: turn autovacuum on, or run ANALYZE after large changes (for example nightly)"
    )
    if rows[0][2] != "on":
        return [f"PostgreSQL's autovacuum is off for the whole server; {remedy}"]
    tables = [name for name, options, _ in rows if _disabled_on_table(options)]
    if not tables:
        return []
    return [f"autovacuum is off for table(s) {', '.join(tables)}; {remedy}"]
