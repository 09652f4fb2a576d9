"""Job rows: leasing due jobs to executors, giving a lease back, and per-topic figures."""

from __future__ import annotations

import statistics
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from engine.jobs.handlers import policy_for
from engine.store.db import Database
from engine.store.models import Job


@dataclass(frozen=True)
class Lease:
    job_id: str
    token: str
    topic: str


def claim_due(
    database: Database, now: datetime, limit: int, grace_s: float = 30.0
) -> tuple[list[Lease], list[str]]:
    """Lease up to `limit` due jobs: pending ones whose time has come, and running ones whose
    lease ran out (their worker died). A lease lasts the topic's timeout plus `grace_s`.
    Returns the leases and the jobs that are out of attempts."""
    leases: list[Lease] = []
    exhausted: list[str] = []
    with database.write_session() as session:
        query = (
            select(Job)
            .where(
                or_(
                    and_(Job.state == "pending", Job.next_run_at <= now),
                    and_(Job.state == "running", Job.lease_until < now),
                )
            )
            .order_by(Job.next_run_at)
            .limit(limit)
        )
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        for job in session.scalars(query):
            policy = policy_for(job.topic)
            if job.attempts >= max(job.max_attempts, 1):
                exhausted.append(job.id)
                continue
            token = uuid.uuid4().hex
            job.state = "running"
            job.attempts += 1
            job.lease_owner = token
            job.lease_until = now + timedelta(seconds=policy.timeout_s + grace_s)
            job.updated_at = now
            leases.append(Lease(job.id, token, job.topic))
        session.flush()
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
