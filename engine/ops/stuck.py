"""The stuck detector: which live cases are not moving, why, since when, and what to do.

Each reason is a branch over the projections (incidents, jobs, timers, human tasks,
instances), so ops never reads an instance document to find out what is wrong. The branches
are one statement: each walks its index oldest first (joined to its case), and the outer
`ORDER BY since LIMIT n` merges them, so PostgreSQL reads about `n` rows in all (a Merge Append
over the ordered walks) instead of `n` per reason.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    Text,
    and_,
    any_,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal_column,
    null,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, aliased

from engine.config import Settings
from engine.jobs.handlers import queue_for
from engine.runtime.workcalendar import WorkCalendar
from engine.store.custom_plans import plan_for_the_values
from engine.store.models import (
    HumanTask,
    Incident,
    Instance,
    Job,
    MessageSubscription,
    Timer,
)
from engine.store.unindexed import only_checked

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


TIES = {
    reason: i
    for i, reason in enumerate(
        (
            "failed_job",
            "instance_error",
            "job_without_worker",
            "timer_not_fired",
            "task_unclaimed_overdue",
            "no_progress",
        )
    )
}
"""Entries with the same `since` come in this order: incidents first, then jobs, timers, tasks."""
HEAD = (Instance.id, Instance.definition_key, Instance.definition_version, Instance.business_key)
NO_TEXT = cast(null(), Text)


def detect(
    session: Session,
    now: datetime,
    calendar: WorkCalendar,
    thresholds: Thresholds,
    definition_key: str | None = None,
    reason: str | None = None,
    limit: int = 500,
) -> list[StuckCase]:
    """Every stuck case found, oldest first; one entry per cause (a case may have several).
    On PostgreSQL, the rest of the caller's transaction is planned for its values too
    (`custom_plans`)."""
    wanted = REASONS if reason is None else tuple(r for r in REASONS if r == reason)
    if not wanted:
        return []
    plan_for_the_values(session)
    cutoff = now - timedelta(hours=thresholds.no_progress_workhours)
    params: dict[str, Any] = {
        "now": now,
        "job_cutoff": now - timedelta(minutes=thresholds.job_pending_minutes),
        "timer_cutoff": now - timedelta(minutes=thresholds.timer_lag_minutes),
        "idle_before": _idle_before(calendar, now, thresholds.no_progress_workhours, cutoff)
        if "no_progress" in wanted
        else cutoff,
        "key": definition_key,
        "fetch": limit,
    }
    statement = _statement(wanted, bool(definition_key))
    while True:
        rows = _rows(session, statement, params)
        found, dropped = _entries(session, rows, now, calendar, thresholds)
        # a case idle for long enough by the clock but not in office hours is dropped here;
        # `idle_before` leaves none in practice, but should one be, read on past it
        if not dropped or len(rows) < params["fetch"]:
            return found[:limit]
        params["fetch"] += max(dropped, params["fetch"])


# --- the statement -------------------------------------------------------------------------

NOW, JOB_CUTOFF, TIMER_CUTOFF, IDLE_BEFORE, KEY = (
    bindparam(name) for name in ("now", "job_cutoff", "timer_cutoff", "idle_before", "key")
)
FETCH = bindparam("fetch", type_=Integer)


@lru_cache(maxsize=32)
def _statement(wanted: tuple[str, ...], keyed: bool) -> Select[Any]:
    """The `fetch` oldest rows of the wanted reasons' branches, each with its case's head.

    Each branch is ordered and limited on its own, so that its plan is an index walk that
    stops early, and wrapped (SQLite takes no ORDER BY in a member of a UNION); the outer
    ORDER BY then merges the walks and stops after `fetch` rows in all."""
    members: list[Select[Any]] = []
    for model, columns, condition, statuses in _branches(wanted):
        query = select(
            *(value.label(name) for name, value in columns.items()),
            *(c.label(f"case_{c.key}") for c in HEAD),
        )
        if model is not Instance:
            query = query.join_from(model, Instance, Instance.id == model.instance_id)
        query = query.where(condition, Instance.status.in_(statuses))
        if keyed:
            query = query.where(Instance.definition_key == KEY)
        walked = query.order_by(columns["since"]).limit(FETCH).subquery()
        members.append(select(walked))
    merged = union_all(*members).subquery()
    return select(merged).order_by(merged.c.since).limit(FETCH)


def _branches(wanted: tuple[str, ...]) -> list[tuple[Any, dict[str, Any], Any, tuple[str, ...]]]:
    """(table, columns, condition, statuses) of each branch: the rows of the table that meet
    the condition, on a case in one of the statuses."""
    out = []
    if "failed_job" in wanted:
        out.append(
            (
                Incident,
                _columns(
                    "failed_job",
                    Incident.created_at,
                    cast(Incident.id, Text),
                    Incident.element_id,
                    Incident.message,
                ),
                and_(Incident.resolved_at.is_(None), Incident.kind == "job"),
                LIVE,
            )
        )
    if "instance_error" in wanted:
        # one row per case: its oldest open incident that is not a job's; `others` says
        # whether the case has more, to be read after the statement.
        # Asked alone, the open incidents are put in order before any is checked (OFFSET 0
        # keeps the two apart), and checked until `fetch` are found: without statistics
        # PostgreSQL guessed 15 and checked all 15,087 at 1M cases (case row, older
        # incident) before sorting them, 140-180 ms (docs/performance.md, "Sunday night").
        # Among the other reasons it walks them in order already, and sorting them all
        # first cost 8 ms more.
        error = Incident
        if wanted == ("instance_error",):
            in_order = (
                select(Incident)
                .where(Incident.resolved_at.is_(None), Incident.kind != "job")
                .order_by(Incident.created_at, Incident.id)
                .offset(0)
                .subquery()
            )
            error = aliased(Incident, in_order)
        other = aliased(Incident)
        # the case's other incidents are found by its id; the rest only checked, or the
        # index of open incidents serves it, walked whole per incident with no statistics
        same_case = and_(
            other.instance_id == error.instance_id,
            only_checked(and_(other.resolved_at.is_(None), other.kind != "job")),
        )
        older = (other.created_at < error.created_at) | and_(
            other.created_at == error.created_at, other.id < error.id
        )
        out.append(
            (
                error,
                _columns(
                    "instance_error",
                    error.created_at,
                    cast(error.id, Text),
                    error.element_id,
                    error.message,
                    error.kind,
                    others=case((exists().where(same_case, other.id != error.id), "+")),
                ),
                and_(
                    error.resolved_at.is_(None),
                    error.kind != "job",
                    ~exists().where(same_case, older),
                ),
                LIVE,
            )
        )
    if "job_without_worker" in wanted:
        # two index walks (pending by next run, running by lease end), not one OR to sort
        out.append(
            (
                Job,
                _columns("job_pending", Job.next_run_at, Job.id, Job.element_id, Job.topic),
                and_(Job.state == "pending", Job.next_run_at < JOB_CUTOFF),
                LIVE,
            )
        )
        out.append(
            (
                Job,
                _columns(
                    "job_running",
                    Job.lease_until,
                    Job.id,
                    Job.element_id,
                    Job.topic,
                    Job.lease_owner,
                ),
                and_(Job.state == "running", Job.lease_until < JOB_CUTOFF),
                LIVE,
            )
        )
    if "timer_not_fired" in wanted:
        for state, moment in (("waiting", Timer.due_at), ("firing", Timer.fired_at)):
            out.append(
                (
                    Timer,
                    _columns(
                        "timer_not_fired", Timer.due_at, cast(Timer.id, Text), Timer.element_id
                    ),
                    and_(Timer.state == state, moment < TIMER_CUTOFF),
                    LIVE,
                )
            )
    if "task_unclaimed_overdue" in wanted:
        out.append(
            (
                HumanTask,
                _columns(
                    "task_unclaimed_overdue",
                    HumanTask.due_at,
                    HumanTask.id,
                    HumanTask.element_id,
                    HumanTask.name,
                    cast(HumanTask.candidate_groups, Text),
                ),
                and_(
                    HumanTask.state == "open", HumanTask.assignee.is_(None), HumanTask.due_at < NOW
                ),
                LIVE,
            )
        )
    if "no_progress" in wanted:
        # cases that wait on no person and no future timer: on a message or a job nobody
        # will deliver
        out.append(
            (
                Instance,
                _columns("no_progress", Instance.updated_at, NO_TEXT, NO_TEXT),
                and_(
                    Instance.updated_at < IDLE_BEFORE,
                    ~exists().where(
                        HumanTask.instance_id == Instance.id, HumanTask.state == "open"
                    ),
                    ~exists().where(
                        Timer.instance_id == Instance.id,
                        only_checked(and_(Timer.state == "waiting", Timer.due_at >= NOW)),
                    ),
                ),
                ("running", "waiting"),
            )
        )
    return out


def _columns(
    branch: str,
    since: Any,
    ref: Any,
    element: Any,
    label: Any = NO_TEXT,
    extra: Any = NO_TEXT,
    others: Any = NO_TEXT,
) -> dict[str, Any]:
    """What a branch yields besides its case's head: which branch, since when, the id of its
    row, its element, two texts the entry shows, and whether there is more to read about it
    (a case with several incidents). Each column has one type in all branches
    (text, or the moment), so that PostgreSQL takes the UNION ALL as one append of the
    branches and can merge their walks."""

    def as_text(value: Any) -> ColumnElement[Any]:
        return value if value is NO_TEXT else cast(value, Text)

    return {
        "branch": cast(literal_column(f"'{branch}'"), Text),
        "since": since,
        "ref": as_text(ref),
        "element_id": as_text(element),
        "label": as_text(label),
        "extra": as_text(extra),
        "others": as_text(others),
    }


class _Row(NamedTuple):
    """A row of the statement (a plain tuple: its fields are read often, for hundreds of rows)."""

    branch: str
    since: datetime
    ref: str | None
    element_id: str | None
    label: str | None
    extra: str | None
    others: str | None
    case_id: str
    case_definition_key: str
    case_definition_version: int
    case_business_key: str | None


def _rows(session: Session, statement: Select[Any], params: dict[str, Any]) -> list[_Row]:
    """The statement's rows; on PostgreSQL planned without parallel workers: a branch that
    stops after a few hundred rows would otherwise be planned as a Gather Merge whose workers
    take longer to start than the walk takes. The transaction's own setting is put back
    afterwards (a statement that fails ends the transaction, and the setting with it)."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return [_Row._make(row) for row in connection.execute(statement, params)]
    before = connection.execute(
        text(
            "SELECT current_setting('max_parallel_workers_per_gather'), "
            "set_config('max_parallel_workers_per_gather', '0', true)"
        )
    ).scalar_one()
    rows = [_Row._make(row) for row in connection.execute(statement, params)]
    connection.execute(
        text("SELECT set_config('max_parallel_workers_per_gather', :value, true)"),
        {"value": before},
    )
    return rows


def _idle_before(calendar: WorkCalendar, now: datetime, hours: float, cutoff: datetime) -> datetime:
    """A moment such that a case last changed before it has been idle for `hours` office
    hours by `now`, and one changed at or after it has not (to the microsecond): office hours
    only grow the earlier the start, so a binary search over `workhours_between` finds it.
    It lets the statement leave out the cases the office-hours test would drop."""
    if hours <= 0:
        return cutoff

    def idle_enough(moment: datetime) -> bool:
        return calendar.workhours_between(moment, now) >= hours

    high = cutoff  # excluded already: fewer clock hours than `hours` since
    step = timedelta(days=1)
    low = high - step
    while not idle_enough(low):
        high = low
        step *= 2
        if step > timedelta(days=366 * 64):
            return high  # never that many office hours: nothing is idle long enough
        low = high - step
    while high - low > timedelta(microseconds=1):
        middle = low + (high - low) // 2
        if idle_enough(middle):
            low = middle
        else:
            high = middle
    return high


# --- the entries ---------------------------------------------------------------------------


def _case(
    row: _Row, reason: str, since: datetime, detail: str, action: str, **kw: Any
) -> StuckCase:
    return StuckCase(
        row.case_id,
        row.case_definition_key,
        row.case_definition_version,
        row.case_business_key,
        reason,
        since,
        detail,
        action,
        **kw,
    )


def _entries(
    session: Session,
    rows: list[_Row],
    now: datetime,
    calendar: WorkCalendar,
    limits: Thresholds,
) -> tuple[list[StuckCase], int]:
    """The entries of the rows, oldest first, and how many rows the office-hours test left
    out."""
    several = [r.case_id for r in rows if r.others]  # only cases in error have `others`
    idle = [r.case_id for r in rows if r.branch == "no_progress"]
    errors = _incidents_of(session, several)
    waits = _waits_of(session, idle)
    found: list[StuckCase] = []
    dropped = 0
    for row in rows:
        branch = row.branch
        if branch == "no_progress":
            hours = calendar.workhours_between(row.since, now)
            if hours < limits.no_progress_workhours:
                dropped += 1
                continue
            found.append(_no_progress(row, hours, waits.get(row.case_id, [])))
        elif branch == "instance_error":
            # the case's one incident; or, should the others have been resolved since the
            # statement read them (another snapshot), still this one
            listed = errors.get(row.case_id) or [
                _Incident(int(row.ref or 0), row.extra or "", row.element_id, row.label or "")
            ]
            found.append(_instance_error(row, listed))
        elif branch == "timer_not_fired":
            found.append(_timer(row, now))
        else:
            found.append(BUILD[branch](row))
    found.sort(key=lambda c: (c.since, TIES[c.reason]))
    return found, dropped


def _among(session: Session, column: Any, ids: list[str]) -> ColumnElement[bool]:
    """`column IN ids`; on PostgreSQL as one array parameter (`= ANY`), so that the statement
    is one text whatever the number of ids: an IN list of hundreds of parameters takes longer
    to build than to run."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam("ids", ids, type_=ARRAY(String)))
    return column.in_(ids)


@dataclass(frozen=True)
class _Incident:
    id: int
    kind: str
    element_id: str | None
    message: str


def _failed_job(row: _Row) -> StuckCase:
    incident = int(row.ref)
    return _case(
        row,
        "failed_job",
        row.since,
        f"the job at {row.element_id} failed: {row.label[:300]}",
        f"fix the cause, then retry incident {incident} "
        f"(POST /api/incidents/{incident}/retry, govflow ops retry {incident})",
        element_id=row.element_id,
        refs={"incident_id": incident},
    )


def _incidents_of(session: Session, instance_ids: list[str]) -> dict[str, list[Any]]:
    """The open incidents that are not a job's of each case, oldest first."""
    found: dict[str, list[Any]] = defaultdict(list)
    if not instance_ids:
        return found
    for incident in session.execute(
        select(
            Incident.id, Incident.instance_id, Incident.kind, Incident.element_id, Incident.message
        )
        .where(
            _among(session, Incident.instance_id, instance_ids),
            Incident.resolved_at.is_(None),
            Incident.kind != "job",
        )
        .order_by(Incident.created_at, Incident.id)
    ):
        found[incident.instance_id].append(incident)
    return found


def _instance_error(row: _Row, incidents: list[Any]) -> StuckCase:
    listed = "; ".join(
        f"#{i.id} {i.kind} at {i.element_id or '-'}: {i.message[:160]}" for i in incidents
    )
    return _case(
        row,
        "instance_error",
        row.since,
        f"the case is in error: {listed}",
        "fix the process or the data (PUT /api/ops/instances/{id}/variables), then "
        "retry the incidents, or move the token past the failed element".replace(
            "{id}", row.case_id
        ),
        element_id=row.element_id,
        refs={"incident_ids": [i.id for i in incidents]},
    )


def _job(row: _Row) -> StuckCase:
    job_id, topic = row.ref, row.label
    if row.branch == "job_pending":
        detail = (
            f"job {job_id} ({topic}) has waited for a worker since {row.since:%Y-%m-%d %H:%M} UTC"
        )
    else:
        detail = (
            f"job {job_id} ({topic}) was taken by {row.extra}, whose lease ran out "
            "and no worker took it again"
        )
    return _case(
        row,
        "job_without_worker",
        row.since,
        detail,
        f"start a worker for the topic: govflow worker --queues {queue_for(topic)} "
        "(or check the broker)",
        element_id=row.element_id,
        refs={"job_id": job_id, "topic": topic},
    )


def _timer(row: _Row, now: datetime) -> StuckCase:
    lag = (now - row.since).total_seconds() / 60
    return _case(
        row,
        "timer_not_fired",
        row.since,
        f"timer {row.element_id} was due {lag:.0f} minutes ago and has not fired",
        "check that the scheduler runs (govflow scheduler, started by govflow serve)",
        element_id=row.element_id,
        refs={"timer_id": int(row.ref)},
    )


def _unclaimed(row: _Row) -> StuckCase:
    groups = ", ".join(json.loads(row.extra or "null") or []) or "its candidates"
    return _case(
        row,
        "task_unclaimed_overdue",
        row.since,
        f"task {row.label or row.element_id} was due {row.since:%Y-%m-%d %H:%M} UTC "
        f"and nobody of {groups} has claimed it",
        f"assign it to a clerk of {groups} (POST /api/tasks/{row.ref}/assign)",
        element_id=row.element_id,
        refs={"task_id": row.ref},
    )


def _waits_of(session: Session, instance_ids: list[str]) -> dict[str, list[str]]:
    """What each case waits on: its message subscriptions and its unfinished jobs."""
    waits: dict[str, list[str]] = defaultdict(list)
    if not instance_ids:
        return waits
    for instance_id, name, element in session.execute(
        select(
            MessageSubscription.instance_id,
            MessageSubscription.message_name,
            MessageSubscription.element_id,
        ).where(_among(session, MessageSubscription.instance_id, instance_ids))
    ):
        waits[instance_id].append(f"message {name!r} at {element}")
    unfinished = Job.state.in_(("pending", "running"))
    if session.get_bind().dialect.name == "postgresql":
        # each case's jobs found by its id, one LATERAL subquery per case, the state only
        # checked: with `= ANY(ids)` and no statistics, PostgreSQL read all 30,000 unfinished
        # jobs at 1M cases and matched each against the 500 ids (23 ms), or, the state only
        # checked, all 353,705 jobs (65 ms)
        idle = (
            func.unnest(bindparam("ids", sorted(set(instance_ids)), type_=ARRAY(String)))
            .table_valued("id")
            .render_derived(name="idle")
        )
        jobs = (
            select(Job.topic, func.count().label("count"))
            .where(Job.instance_id == idle.c.id, only_checked(unfinished))
            .group_by(Job.topic)
            .lateral("its_jobs")
        )
        counted = select(idle.c.id, jobs.c.topic, jobs.c.count).select_from(idle).join(jobs, true())
    else:
        counted = (
            select(Job.instance_id, Job.topic, func.count())
            .where(Job.instance_id.in_(instance_ids), unfinished)
            .group_by(Job.instance_id, Job.topic)
        )
    for instance_id, topic, count in session.execute(counted):
        waits[instance_id].append(f"{count} job(s) on {topic}")
    return waits


def _no_progress(row: _Row, hours: float, waits: list[str]) -> StuckCase:
    waiting = "; ".join(waits) or "nothing the engine knows of"
    return _case(
        row,
        "no_progress",
        row.since,
        f"no progress for {hours:.1f} office hours, waiting on {waiting}",
        "send what it waits for (POST /api/messages), or move the token "
        f"(POST /api/ops/instances/{row.case_id}/move), or cancel it",
        refs={"waiting_on": waits},
    )


BUILD = {
    "failed_job": _failed_job,
    "job_pending": _job,
    "job_running": _job,
    "task_unclaimed_overdue": _unclaimed,
}
"""The entry of a row, by its branch (the branches that need more than the row aside)."""
