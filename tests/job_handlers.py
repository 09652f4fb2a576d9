"""Handlers used only by the tests (loaded through GOVFLOW_HANDLER_MODULES / load_modules)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from engine.jobs.handlers import JobContext, handler


@handler("test.flaky", max_attempts=3, backoff_s=2.0, timeout_s=5.0)
def flaky(ctx: JobContext, variables: dict[str, Any]) -> dict[str, Any]:
    if ctx.attempt < int(variables.get("succeed_on", 3)):
        raise RuntimeError(f"transient failure on attempt {ctx.attempt}")
    return {"flaky_done_on": ctx.attempt}


@handler("test.slow", max_attempts=3, backoff_s=0.1, timeout_s=2.0)
def slow(ctx: JobContext, variables: dict[str, Any]) -> dict[str, Any]:
    marker = Path(variables["marker"])
    first_run = not marker.exists()
    with marker.open("a", encoding="utf-8") as handle:
        handle.write(f"attempt {ctx.attempt}\n")
    if first_run:
        time.sleep(60)  # the test kills the worker here
    return {"slow_done_on": ctx.attempt}


OUTAGES: set[str] = set()
"""Systems the tests have switched off; `test.outside` fails while "outside" is in here."""


@handler("test.outside", max_attempts=2, backoff_s=1.0, timeout_s=5.0)
def outside(ctx: JobContext, variables: dict[str, Any]) -> dict[str, Any]:
    if "outside" in OUTAGES:
        raise ConnectionError("the outside system does not answer")
    return {"outside_answered_on": ctx.attempt}


SEEN_WHILE_RUNNING: list[Any] = []
"""What `test.peek` saw of its own job row while it ran: (state, started_at)."""


@handler("test.peek", max_attempts=1, backoff_s=1.0, timeout_s=5.0)
def peek(ctx: JobContext, variables: dict[str, Any]) -> dict[str, Any]:
    from sqlalchemy import select

    from engine.store.models import Job

    with ctx.database.read_session() as session:
        SEEN_WHILE_RUNNING.append(
            session.execute(select(Job.state, Job.started_at).where(Job.id == ctx.job_id)).one()
        )
    return {"peeked": True}
