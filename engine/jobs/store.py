"""Job rows: leasing due jobs to executors, giving a lease back, and per-topic figures."""

from __future__ import annotations

import statistics
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from engine.jobs.handlers import policy_for
from engine.store import write_batch
from engine.store.db import Database
from engine.store.models import Job


@dataclass(frozen=True)
class Lease:
    job_id: str
    token: str
    topic: str


# Built once: a dispatcher woken by every new job runs a round per job (engine/jobs/wakeup.py),
# and its rows are read as plain rows and leased in one batched UPDATE, sent with the commit,
# instead of ORM objects flushed one by one (docs/performance.md, "Monday").
_DUE = (
    select(Job.id, Job.topic, Job.attempts, Job.max_attempts)
    .where(
        or_(
            and_(Job.state == "pending", Job.next_run_at <= bindparam("now")),
            and_(Job.state == "running", Job.lease_until < bindparam("now")),
        )
    )
    .order_by(Job.next_run_at)
    .limit(bindparam("limit"))
)
_DUE_LOCKED = _DUE.with_for_update(skip_locked=True)
_LEASE = (
    update(Job)
    .where(Job.id == bindparam("job_id"))
    .values(
        state="running",
        attempts=Job.attempts + 1,
        lease_owner=bindparam("token"),
        lease_until=bindparam("until"),
        updated_at=bindparam("now"),
    )
)


def claim_due(
    database: Database, now: datetime, limit: int, grace_s: float = 30.0
) -> tuple[list[Lease], list[str]]:
    """Lease up to `limit` due jobs: pending ones whose time has come, and running ones whose
    lease ran out (their worker died). A lease lasts the topic's timeout plus `grace_s`.
    Returns the leases and the jobs that are out of attempts."""
    leases: list[Lease] = []
    exhausted: list[str] = []
    leased: list[dict[str, Any]] = []
    with database.write_session() as session:
        # the rows stay locked until the commit: SKIP LOCKED on PostgreSQL, the write lock
        # taken up front on SQLite
        locked = session.get_bind().dialect.name == "postgresql"
        rows = session.execute(_DUE_LOCKED if locked else _DUE, {"now": now, "limit": limit})
        for job_id, topic, attempts, max_attempts in rows:
            if attempts >= max(max_attempts, 1):
                exhausted.append(job_id)
                continue
            token = uuid.uuid4().hex
            until = now + timedelta(seconds=policy_for(topic).timeout_s + grace_s)
            leased.append({"job_id": job_id, "token": token, "until": until, "now": now})
            leases.append(Lease(job_id, token, topic))
        if leased:
            write_batch.write(session, _LEASE, leased)
    return leases, exhausted


def release(database: Database, lease: Lease, now: datetime) -> None:
    """Give a lease back without counting the attempt (the executor could not take the job)."""
    with database.write_session() as session:
        job = session.get(Job, lease.job_id)
        if job is not None and job.state == "running" and job.lease_owner == lease.token:
            job.state = "pending"
            job.attempts = max(0, job.attempts - 1)
            job.lease_owner = None
            job.lease_until = None
            job.updated_at = now
            session.flush()


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(share * 100) - 1]


def metrics(session: Session, since: datetime | None = None) -> dict[str, dict[str, Any]]:
    """Per topic: jobs by state, and seconds from creation to completion (p50, p95)."""
    figures: dict[str, dict[str, Any]] = {}
    for topic, state, count in session.execute(
        select(Job.topic, Job.state, func.count()).group_by(Job.topic, Job.state)
    ):
        entry = figures.setdefault(
            topic, {"pending": 0, "running": 0, "completed": 0, "failed": 0, "cancelled": 0}
        )
        entry[state] = int(count)
    query = select(Job.topic, Job.created_at, Job.completed_at).where(Job.completed_at.is_not(None))
    if since is not None:
        query = query.where(Job.completed_at >= since)
    latencies: dict[str, list[float]] = {}
    for topic, created, completed in session.execute(query):
        latencies.setdefault(topic, []).append((completed - created).total_seconds())
    for topic, entry in figures.items():
        values = sorted(latencies.get(topic, []))
        entry["latency_p50_s"] = _percentile(values, 0.50)
        entry["latency_p95_s"] = _percentile(values, 0.95)
    return figures
