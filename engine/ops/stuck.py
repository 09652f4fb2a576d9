"""The stuck detector: which live cases are not moving, why, since when, and what to do.

Each reason is one query over the projections (incidents, jobs, timers, human tasks,
instances), so ops never reads an instance document to find out what is wrong.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session

from engine.config import Settings
from engine.jobs.handlers import queue_for
from engine.runtime.workcalendar import WorkCalendar
from engine.store.models import (
    HumanTask,
    Incident,
    Instance,
    Job,
    MessageSubscription,
    Timer,
)

LIVE = ("running", "waiting", "error")
REASONS = (
    "failed_job",
    "job_without_worker",
    "timer_not_fired",
    "task_unclaimed_overdue",
    "no_progress",
    "instance_error",
)


@dataclass(frozen=True)
class Thresholds:
    """How long each kind of waiting may last before it counts as stuck."""

    job_pending_minutes: float = 15.0
    timer_lag_minutes: float = 5.0
    no_progress_workhours: float = 8.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(
            settings.stuck_job_pending_minutes,
            settings.stuck_timer_lag_minutes,
            settings.stuck_no_progress_workhours,
        )


@dataclass
class StuckCase:
    instance_id: str
    definition_key: str
    version: int
    business_key: str | None
    reason: str
    since: datetime
    detail: str
    action: str
    element_id: str | None = None
    refs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Head:
    """The few columns of a case a stuck entry shows (never its document)."""

    id: str
    definition_key: str
    definition_version: int
    business_key: str | None


HEAD = (Instance.id, Instance.definition_key, Instance.definition_version, Instance.business_key)


def _live(query: Any, definition_key: str | None) -> Any:
    query = query.where(Instance.status.in_(LIVE))
    return query.where(Instance.definition_key == definition_key) if definition_key else query


def _with_heads(
    session: Session,
    model: Any,
    columns: tuple[Any, ...],
    condition: Any,
    order: Any,
    key: str | None,
    limit: int,
) -> list[tuple[Any, _Head]]:
    """Rows of `model` on live cases that meet `condition`, oldest first, each with its case.
    Only `columns` of `model` are read, as plain rows: job payloads and task data stay on
    disk, and no ORM object is built for the hundreds of rows a backlog gives."""
    heads = [c.label(f"case_{c.key}") for c in HEAD]
    query = (
        select(*columns, *heads)
        .select_from(model)
        .join(Instance, Instance.id == model.instance_id)
        .where(condition)
    )
    found = session.execute(_live(query, key).order_by(order).limit(limit)).all()
    width = len(columns)
    return [(r, _Head(*r[width:])) for r in found]


def _case(row: Any, reason: str, since: datetime, detail: str, action: str, **kw: Any) -> StuckCase:
    return StuckCase(
        row.id,
        row.definition_key,
        row.definition_version,
        row.business_key,
        reason,
        since,
        detail,
        action,
        **kw,
    )


def detect(
    session: Session,
    now: datetime,
    calendar: WorkCalendar,
    thresholds: Thresholds,
    definition_key: str | None = None,
    reason: str | None = None,
    limit: int = 500,
) -> list[StuckCase]:
    """Every stuck case found, oldest first; one entry per cause (a case may have several)."""
    found: list[StuckCase] = []
    wanted = set(REASONS) if reason is None else {reason}
    key = definition_key
    if wanted & {"failed_job", "instance_error"}:
        found += _incidents(session, key, wanted, limit)
    if "job_without_worker" in wanted:
        found += _jobs(session, key, now, thresholds, limit)
    if "timer_not_fired" in wanted:
        found += _timers(session, key, now, thresholds, limit)
    if "task_unclaimed_overdue" in wanted:
        found += _unclaimed(session, key, now, limit)
    if "no_progress" in wanted:
        found += _no_progress(session, now, calendar, thresholds, key, limit)
    found.sort(key=lambda c: c.since)
    return found[:limit]


def _incidents(session: Session, key: str | None, wanted: set[str], limit: int) -> list[StuckCase]:
    condition = Incident.resolved_at.is_(None)
    if wanted == {"failed_job"}:
        condition = and_(condition, Incident.kind == "job")
    elif "failed_job" not in wanted:
        condition = and_(condition, Incident.kind != "job")
    columns = (
        Incident.id,
        Incident.instance_id,
        Incident.kind,
        Incident.element_id,
        Incident.message,
        Incident.created_at,
    )
    found = _with_heads(session, Incident, columns, condition, Incident.created_at, key, limit)
    instances = {incident.instance_id: head for incident, head in found}
    out: list[StuckCase] = []
    other: dict[str, list[Any]] = defaultdict(list)  # incident rows per case
    for incident, head in found:
        if incident.kind == "job":
            if "failed_job" in wanted:
                out.append(
                    _case(
                        head,
                        "failed_job",
                        incident.created_at,
                        f"the job at {incident.element_id} failed: {incident.message[:300]}",
                        f"fix the cause, then retry incident {incident.id} "
                        f"(POST /api/incidents/{incident.id}/retry, govflow ops retry "
                        f"{incident.id})",
                        element_id=incident.element_id,
                        refs={"incident_id": incident.id},
                    )
                )
        else:
            other[incident.instance_id].append(incident)
    if "instance_error" in wanted:
        for instance_id, incidents in other.items():
            first = incidents[0]
            listed = "; ".join(
                f"#{i.id} {i.kind} at {i.element_id or '-'}: {i.message[:160]}" for i in incidents
            )
            out.append(
                _case(
                    instances[instance_id],
                    "instance_error",
                    first.created_at,
                    f"the case is in error: {listed}",
                    "fix the process or the data (PUT /api/ops/instances/{id}/variables), then "
                    "retry the incidents, or move the token past the failed element".replace(
                        "{id}", instance_id
                    ),
                    element_id=first.element_id,
                    refs={"incident_ids": [i.id for i in incidents]},
                )
            )
    return out


def _jobs(
    session: Session, key: str | None, now: datetime, limits: Thresholds, limit: int
) -> list[StuckCase]:
    cutoff = now - timedelta(minutes=limits.job_pending_minutes)
    columns = (
        Job.id,
        Job.instance_id,
        Job.topic,
        Job.state,
        Job.element_id,
        Job.next_run_at,
        Job.lease_until,
        Job.lease_owner,
        Job.updated_at,
    )
    # Two index walks (pending by next run, running by lease end) rather than one OR that
    # has to sort every stale job.
    found = _with_heads(
        session,
        Job,
        columns,
        and_(Job.state == "pending", Job.next_run_at < cutoff),
        Job.next_run_at,
        key,
        limit,
    ) + _with_heads(
        session,
        Job,
        columns,
        and_(Job.state == "running", Job.lease_until < cutoff),
        Job.lease_until,
        key,
        limit,
    )
    out = []
    for job, head in found:
        if job.state == "pending":
            since = job.next_run_at
            detail = (
                f"job {job.id} ({job.topic}) has waited for a worker since "
                f"{since:%Y-%m-%d %H:%M} UTC"
            )
        else:
            since = job.lease_until or job.updated_at
            detail = (
                f"job {job.id} ({job.topic}) was taken by {job.lease_owner}, whose lease ran out "
                "and no worker took it again"
            )
        out.append(
            _case(
                head,
                "job_without_worker",
                since,
                detail,
                f"start a worker for the topic: govflow worker --queues {queue_for(job.topic)} "
                "(or check the broker)",
                element_id=job.element_id,
                refs={"job_id": job.id, "topic": job.topic},
            )
        )
    return out


def _timers(
    session: Session, key: str | None, now: datetime, limits: Thresholds, limit: int
) -> list[StuckCase]:
    cutoff = now - timedelta(minutes=limits.timer_lag_minutes)
    condition = or_(
        and_(Timer.state == "waiting", Timer.due_at < cutoff),
        and_(Timer.state == "firing", Timer.fired_at < cutoff),
    )
    columns = (Timer.id, Timer.instance_id, Timer.element_id, Timer.due_at)
    found = _with_heads(session, Timer, columns, condition, Timer.due_at, key, limit)
    out = []
    for timer, head in found:
        lag = (now - timer.due_at).total_seconds() / 60
        out.append(
            _case(
                head,
                "timer_not_fired",
                timer.due_at,
                f"timer {timer.element_id} was due {lag:.0f} minutes ago and has not fired",
                "check that the scheduler runs (govflow scheduler, started by govflow serve)",
                element_id=timer.element_id,
                refs={"timer_id": timer.id},
            )
        )
    return out


def _unclaimed(session: Session, key: str | None, now: datetime, limit: int) -> list[StuckCase]:
    condition = and_(
        HumanTask.state == "open", HumanTask.assignee.is_(None), HumanTask.due_at < now
    )
    columns = (
        HumanTask.id,
        HumanTask.instance_id,
        HumanTask.name,
        HumanTask.element_id,
        HumanTask.due_at,
        HumanTask.candidate_groups,
    )
    found = _with_heads(session, HumanTask, columns, condition, HumanTask.due_at, key, limit)
    out = []
    for task, head in found:
        assert task.due_at is not None
        groups = ", ".join(task.candidate_groups or []) or "its candidates"
        out.append(
            _case(
                head,
                "task_unclaimed_overdue",
                task.due_at,
                f"task {task.name or task.element_id} was due {task.due_at:%Y-%m-%d %H:%M} UTC "
                f"and nobody of {groups} has claimed it",
                f"assign it to a clerk of {groups} (POST /api/tasks/{task.id}/assign)",
                element_id=task.element_id,
                refs={"task_id": task.id},
            )
        )
    return out


def _no_progress(
    session: Session,
    now: datetime,
    calendar: WorkCalendar,
    limits: Thresholds,
    definition_key: str | None,
    limit: int,
) -> list[StuckCase]:
    """Cases that have not changed for X office hours and wait on no person and no future
    timer: they wait on a message or a job nobody will deliver."""
    cutoff = now - timedelta(hours=limits.no_progress_workhours)
    open_task = exists().where(HumanTask.instance_id == Instance.id, HumanTask.state == "open")
    future_timer = exists().where(
        Timer.instance_id == Instance.id, Timer.state == "waiting", Timer.due_at >= now
    )
    query = (
        select(*HEAD, Instance.updated_at)
        .where(
            Instance.status.in_(("running", "waiting")),
            Instance.updated_at < cutoff,
            ~open_task,
            ~future_timer,
        )
        .order_by(Instance.updated_at)
        .limit(limit)
    )
    if definition_key:
        query = query.where(Instance.definition_key == definition_key)
    rows = session.execute(query).all()
    if not rows:
        return []
    ids = [r.id for r in rows]
    waits: dict[str, list[str]] = defaultdict(list)
    for instance_id, name, element in session.execute(
        select(
            MessageSubscription.instance_id,
            MessageSubscription.message_name,
            MessageSubscription.element_id,
        ).where(MessageSubscription.instance_id.in_(ids))
    ):
        waits[instance_id].append(f"message {name!r} at {element}")
    for instance_id, topic, count in session.execute(
        select(Job.instance_id, Job.topic, func.count())
        .where(Job.instance_id.in_(ids), Job.state.in_(("pending", "running")))
        .group_by(Job.instance_id, Job.topic)
    ):
        waits[instance_id].append(f"{count} job(s) on {topic}")
    out = []
    for row in rows:
        hours = calendar.workhours_between(row.updated_at, now)
        if hours < limits.no_progress_workhours:
            continue
        waiting = "; ".join(waits.get(row.id, [])) or "nothing the engine knows of"
        out.append(
            _case(
                row,
                "no_progress",
                row.updated_at,
                f"no progress for {hours:.1f} office hours, waiting on {waiting}",
                "send what it waits for (POST /api/messages), or move the token "
                f"(POST /api/ops/instances/{row.id}/move), or cancel it",
                refs={"waiting_on": waits.get(row.id, [])},
            )
        )
    return out
