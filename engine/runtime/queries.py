"""Read-only views: worklists, task details and instance details, with permission checks."""

from __future__ import annotations

import base64
import binascii
import functools
import json
from datetime import datetime
from typing import Any

from sqlalchemy import (
    and_,
    bindparam,
    case,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
    union,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from engine.accounts import permissions
from engine.accounts.actor import Actor
from engine.errors import Forbidden, InvalidInput, NotFound
from engine.runtime import clock, clocks
from engine.runtime.calendar_ops import provisional_instances
from engine.runtime.case_helpers import STATUS_NAMES
from engine.runtime.workcalendar import WorkCalendar
from engine.store import orm_rows
from engine.store.custom_plans import plan_for_the_values
from engine.store.models import (
    AuditEvent,
    CaseStatus,
    ElementState,
    HumanTask,
    Incident,
    Instance,
    SlaClock,
    TaskCandidate,
)
from engine.store.unindexed import exists_per_row, only_checked

TASK_SCOPES = ("mine", "group", "all")
TASK_STATES = ("open", "completed", "cancelled", "any")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def soon_limit(calendar: WorkCalendar, now: datetime) -> datetime:
    """Due within one working day means due by the close of the next working day."""
    return calendar.end_of_workday(calendar.add_workdays(calendar.today(now), 1).day)


def task_to_dict(
    row: HumanTask, now: datetime | None = None, soon: datetime | None = None
) -> dict[str, Any]:
    now = now or clock.now()
    is_open = row.state == "open" and row.due_at is not None
    overdue = bool(is_open and row.due_at < now)
    return {
        "id": row.id,
        "instance_id": row.instance_id,
        "definition_key": row.definition_key,
        "business_key": row.business_key,
        "element_id": row.element_id,
        "name": row.name,
        "state": row.state,
        "assignee": row.assignee,
        "candidate_groups": list(row.candidate_groups or []),
        "candidate_users": list(row.candidate_users or []),
        "form_key": row.form_key,
        "priority": row.priority,
        "due_at": _iso(row.due_at),
        "follow_up_at": _iso(row.follow_up_at),
        "overdue": overdue,
        "due_soon": bool(is_open and not overdue and soon is not None and row.due_at <= soon),
        "due_provisional_year": row.due_provisional_year,
        "created_at": _iso(row.created_at),
        "claimed_at": _iso(row.claimed_at),
        "completed_at": _iso(row.completed_at),
        "completed_by": row.completed_by,
    }


def _due_filters(due_at: Any, overdue: bool | None, due_soon_until: datetime | None) -> list[Any]:
    """The worklist's due-date filters on a `due_at` column (the task's or its candidates')."""
    filters: list[Any] = []
    if overdue is not None:
        now = clock.now()
        filters.append(
            and_(due_at.is_not(None), due_at < now)
            if overdue
            else or_(due_at.is_(None), due_at >= now)
        )
    if due_soon_until is not None:
        filters += [due_at.is_not(None), due_at >= clock.now(), due_at <= due_soon_until]
    return filters


# Worklist order (soonest due first, none last; then priority; then age) on the candidate
# rows, which carry copies of the task's sort keys, and on the task rows.
QUEUE_ORDER = (
    TaskCandidate.due_at.asc().nulls_last(),
    TaskCandidate.priority.desc(),
    TaskCandidate.created_at,
)
TASK_ORDER = (
    HumanTask.due_at.asc().nulls_last(),
    HumanTask.priority.desc(),
    HumanTask.created_at,
)


def _queue_heads(
    ranges: list[tuple[str, str]],
    limit: int,
    overdue: bool | None,
    due_soon_until: datetime | None,
    q: str | None = None,
) -> Any:
    """The first `limit` task ids of each candidate range in worklist order, read from
    `ix_task_candidates_queue` (an index walk that stops early, whatever the queue's size).
    The first `limit` of the merged ranges are among these.

    With `q`, only tasks whose name or business key holds it, read from the queue rows'
    copies: a search reads the clerk's queues and no other task (a LIKE '%...%' can use no
    B-tree index; on the task rows PostgreSQL read all of them, 3M at the scale of
    docs/performance.md). On PostgreSQL the trigram index `ix_task_candidates_text` finds
    the matches of a text that is rare, the queue walk stops early for one that is common."""
    matching = [_holds(q, TaskCandidate.name, TaskCandidate.business_key)] if q else []
    parts = []
    for kind, value in ranges:
        head = (
            select(TaskCandidate.task_id)
            .where(
                TaskCandidate.kind == kind,
                TaskCandidate.value == value,
                *_due_filters(TaskCandidate.due_at, overdue, due_soon_until),
                *matching,
            )
            .order_by(*QUEUE_ORDER)
            .limit(limit)
            .subquery()
        )
        parts.append(select(head.c.task_id))
    return union_all(*parts) if len(parts) > 1 else parts[0]


def _holds(q: str, name: Any = HumanTask.name, business_key: Any = HumanTask.business_key) -> Any:
    """A task whose name or business key holds `q`, in upper or lower case alike on every
    database (SQLite's LIKE ignores the case of ASCII letters, PostgreSQL's does not: a
    work order number "ZG..." typed "zg" was found on one and not the other); % and _ are
    no wildcards. PostgreSQL's trigram index serves ILIKE as it serves LIKE."""
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    return or_(name.ilike(pattern, escape="\\"), business_key.ilike(pattern, escape="\\"))


def queue_ranges(actor: Actor, group: str | None = None) -> list[tuple[str, str]]:
    """The candidate entries (kind, value) that make up an actor's queue: each of their
    departments and their own name, or one department when `group` names it (their own, or
    any for ops and admin)."""
    groups = set(actor.departments)
    if group is not None:
        if group not in groups and not actor.has_role("ops", "admin"):
            raise Forbidden(f"{actor.username} is not in department {group!r}")
        return [("group", group)]
    return [*(("group", g) for g in sorted(groups)), ("user", actor.username)]


# How many entries of each queue that could be handed out the pick of the next task
# considers; rows another clerk's pick holds are skipped among them, and when all are held
# the command tries again (commands.ClaimNextTask).
NEXT_TASK_LOOKAHEAD = 32


def next_unclaimed_task(
    ranges: list[tuple[str, str]], *, locked: bool = True
) -> tuple[Any, dict[str, str]]:
    """The statement and parameters that read the case and task row of the first unclaimed
    task of the ranges, in worklist order (soonest due first, then priority), skipping tasks
    of suspended or ended cases.

    On PostgreSQL the task row is locked (FOR NO KEY UPDATE SKIP LOCKED) until the claim
    commits, so clerks asking at the same moment get different tasks instead of conflicting
    on one (SQLite runs one write transaction at a time). With `locked=False`, the same pick
    without the lock: whether a pick that found nothing did so only because colleagues' picks
    held every entry it looked at."""
    params: dict[str, str] = {}
    for index, (kind, value) in enumerate(ranges):
        params[f"kind_{index}"] = kind
        params[f"value_{index}"] = value
    return _next_unclaimed_statement(len(ranges), locked), params


_NOT_HANDED_OUT = ("suspended", "completed", "cancelled")


@functools.cache
def _next_unclaimed_statement(range_count: int, locked: bool) -> Any:
    """One statement per number of ranges, with the ranges as parameters: building it costs
    more than running it, and the same SQL text lets the driver prepare it once."""
    # the statuses are written into the SQL: an expanding IN list is rendered anew on every
    # execution
    live = and_(
        HumanTask.state == "open",
        HumanTask.assignee.is_(None),
        Instance.status.not_in([literal_column(f"'{s}'") for s in _NOT_HANDED_OUT]),
    )
    # Whether a queue entry's task may be handed out, as a scalar subquery: PostgreSQL runs it
    # per entry as the walk of `ix_task_candidates_queue` meets it, and the walk stops after
    # NEXT_TASK_LOOKAHEAD entries. Written as a join (or EXISTS), the planner may hash every
    # unclaimed task instead, on an estimate: 650 ms for a department of 38,000 open tasks.
    # The checks are in the select list, not the WHERE: there they would let a partial index
    # of open tasks serve the lookup, and on a table never analyzed PostgreSQL takes it and
    # walks every open task for each entry (1,141 buffers for 8 entries of a queue of 100,
    # 24 by the primary key; docs/performance.md, "Sunday, an Intel Xeon").
    handed_out = (
        select(case((live, HumanTask.id)))
        .select_from(HumanTask)
        .join(Instance, Instance.id == HumanTask.instance_id)
        .where(HumanTask.id == TaskCandidate.task_id)
        .scalar_subquery()
    )
    parts = []
    for index in range(range_count):
        head = (
            select(TaskCandidate.task_id)
            .where(
                TaskCandidate.kind == bindparam(f"kind_{index}"),
                TaskCandidate.value == bindparam(f"value_{index}"),
                TaskCandidate.claimed == false(),  # ix_task_candidates_unclaimed
                handed_out.is_not(None),
            )
            .order_by(*QUEUE_ORDER)
            .limit(NEXT_TASK_LOOKAHEAD)
            .subquery()
        )
        parts.append(select(head.c.task_id))
    # The heads come first (each an index walk that stops early), then their rows by key: a
    # plan that starts from the tasks would walk every unclaimed task of every department.
    # MATERIALIZED keeps the planner (PostgreSQL 12+, SQLite 3.35+) from merging the two.
    heads = (
        (union_all(*parts) if len(parts) > 1 else parts[0]).cte("heads").prefix_with("MATERIALIZED")
    )
    # The two rows as plain columns, in the order store.orm_rows makes them into objects. The
    # checks are asked again here, as the lock's recheck of a row a colleague just changed
    # needs them, but only checked: the partial index of unclaimed tasks would serve them,
    # walked whole (the unclaimed tasks of every department) for the few heads.
    pick = (
        select(*orm_rows.columns(Instance), *orm_rows.columns(HumanTask))
        .select_from(heads)
        .join(HumanTask, HumanTask.id == heads.c.task_id)
        .join(Instance, Instance.id == HumanTask.instance_id)
        .where(only_checked(live))
        .order_by(*TASK_ORDER, HumanTask.id)
        .limit(1)
    )
    if not locked:
        return pick
    return pick.with_for_update(of=HumanTask.__table__, skip_locked=True, key_share=True)


def list_tasks(
    session: Session,
    actor: Actor,
    scope: str = "group",
    group: str | None = None,
    state: str = "open",
    overdue: bool | None = None,
    q: str | None = None,
    limit: int = 200,
    due_soon_until: datetime | None = None,
) -> list[HumanTask]:
    """A worklist, sorted by due date (soonest first), then priority. With `due_soon_until`,
    only tasks not yet overdue that are due by then."""
    if scope not in TASK_SCOPES:
        raise InvalidInput(f"scope must be one of {', '.join(TASK_SCOPES)}")
    if state not in TASK_STATES:
        raise InvalidInput(f"state must be one of {', '.join(TASK_STATES)}")
    limit = max(1, min(limit, 1000))
    if q:
        # a generic plan, made once for any text after a statement's fifth run, cannot ask
        # the trigram index (a one-character text made it walk the whole index: 151 ms)
        plan_for_the_values(session)
    query = select(HumanTask)
    from_queue_heads = scope == "group" and state == "open"
    if state != "any" and not from_queue_heads:
        query = query.where(HumanTask.state == state)
    if scope == "mine":
        query = query.where(HumanTask.assignee == actor.username)
    elif scope == "group":
        ranges = queue_ranges(actor, group)
        if from_queue_heads:
            # Candidate rows exist only for open tasks and carry the sort keys: the heads'
            # rows are found by their primary key, the state only checked.
            heads = _queue_heads(ranges, limit, overdue, due_soon_until, q)
            query = query.where(HumanTask.id.in_(heads), only_checked(HumanTask.state == state))
        else:
            candidate = or_(
                *(and_(TaskCandidate.kind == k, TaskCandidate.value == v) for k, v in ranges)
            )
            query = query.where(
                exists().where(TaskCandidate.task_id == HumanTask.id).where(candidate)
            )
    else:
        if not actor.has_role("ops", "admin"):
            raise Forbidden("listing all tasks needs the ops or admin role")
        if group is not None:
            query = query.where(
                exists().where(
                    TaskCandidate.task_id == HumanTask.id,
                    TaskCandidate.kind == "group",
                    TaskCandidate.value == group,
                )
            )
    query = query.where(*_due_filters(HumanTask.due_at, overdue, due_soon_until))
    if q and not from_queue_heads:
        query = query.where(_holds(q))
    query = query.order_by(*TASK_ORDER).limit(limit)
    return list(session.scalars(query))


def get_task(session: Session, actor: Actor, task_id: str) -> HumanTask:
    row = session.get(HumanTask, task_id)
    if row is None:
        raise NotFound(f"no task {task_id}")
    if not permissions.may_see_task(actor, row.assignee, row.candidate_groups, row.candidate_users):
        raise Forbidden(f"task {task_id} belongs to {', '.join(row.candidate_groups) or 'nobody'}")
    return row


def instance_to_dict(row: Instance) -> dict[str, Any]:
    return {
        "id": row.id,
        "definition_key": row.definition_key,
        "version": row.definition_version,
        "business_key": row.business_key,
        "status": row.status,
        "started_at": _iso(row.started_at),
        "started_by": row.started_by,
        "updated_at": _iso(row.updated_at),
        "ended_at": _iso(row.ended_at),
        "case_status": row.case_status,
        "case_status_name": STATUS_NAMES.get(row.case_status or 0),
    }


def instance_detail(
    session: Session, instance_id: str, calendar: WorkCalendar | None = None
) -> dict[str, Any]:
    row = session.get(Instance, instance_id)
    if row is None:
        raise NotFound(f"no instance {instance_id}")
    tasks = session.scalars(
        select(HumanTask).where(HumanTask.instance_id == instance_id).order_by(HumanTask.created_at)
    )
    incidents = session.scalars(
        select(Incident).where(Incident.instance_id == instance_id).order_by(Incident.id)
    )
    elements = session.scalars(
        select(ElementState)
        .where(ElementState.instance_id == instance_id)
        .order_by(ElementState.element_id)
    )
    history = session.scalars(
        select(AuditEvent).where(AuditEvent.instance_id == instance_id).order_by(AuditEvent.id)
    )
    now = clock.now()
    soon = soon_limit(calendar, now) if calendar is not None else None
    clock_rows = session.scalars(
        select(SlaClock).where(SlaClock.instance_id == instance_id).order_by(SlaClock.name)
    )
    statuses = session.scalars(
        select(CaseStatus).where(CaseStatus.instance_id == instance_id).order_by(CaseStatus.id)
    )
    return {
        **instance_to_dict(row),
        "variables": row.variables or {},
        "case_statuses": [
            {"code": c.code, "name": c.name, "note": c.note, "actor": c.actor, "at": _iso(c.at)}
            for c in statuses
        ],
        "clocks": [clocks.to_dict(c, calendar, now) for c in clock_rows] if calendar else [],
        "tasks": [task_to_dict(t, now, soon) for t in tasks],
        "incidents": [
            {
                "id": i.id,
                "instance_id": i.instance_id,
                "kind": i.kind,
                "element_id": i.element_id,
                "task_id": i.task_id,
                "message": i.message,
                "created_at": _iso(i.created_at),
                "resolved_at": _iso(i.resolved_at),
                "resolved_by": i.resolved_by,
            }
            for i in incidents
        ],
        "elements": [
            {
                "element_id": e.element_id,
                "active": e.active,
                "completed": e.completed,
                "failed": e.failed,
                "cancelled": e.cancelled,
            }
            for e in elements
        ],
        "history": [
            {
                "at": _iso(h.at),
                "actor": h.actor,
                "command": h.command,
                "task_id": h.task_id,
                "element_id": h.element_id,
                "data": h.data,
                "details": h.details,
            }
            for h in history
        ],
    }


def _encode_cursor(started_at: datetime, instance_id: str) -> str:
    raw = json.dumps([started_at.isoformat(), instance_id]).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        started, instance_id = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        return datetime.fromisoformat(started), str(instance_id)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(
            "cursor is not one this API handed out", [{"path": "cursor", "message": "invalid"}]
        ) from None


def _clerk_visible(actor: Actor, instance: Any = Instance) -> Any:
    """Cases a clerk may look at: started by them, or with a task they hold, did or may take.
    `instance` is the entity the condition is on (an alias of a subquery, say).

    A task they did is one they hold: completing a task makes its completer the assignee, and
    no command changes the assignee of a task that is no longer open; so `completed_by` is
    not asked.

    Each case's task rows are found by its id, and the assignee and the queue only checked:
    PostgreSQL may otherwise run the EXISTS as hashed subplans, reading every task the clerk
    ever held and the whole queue to check a single case (1 s at 1M cases without
    statistics; docs/performance.md, "Sunday, a slower AMD EPYC"), or AND the assignee's
    index, every task the clerk ever did, into each case's check (18 ms a case; "Sunday
    night"). For queries whose cases are few by their keys: one id, one business key, a
    window of the newest."""
    of_case = HumanTask.instance_id == instance.id
    held = only_checked(HumanTask.assignee == actor.username)
    in_queue = TaskCandidate.task_id == HumanTask.id
    mine = exists_per_row(select(HumanTask.id).where(of_case, held))
    queued = exists_per_row(
        select(HumanTask.id).where(of_case, in_queue, only_checked(_queue_of(actor)))
    )
    return or_(instance.started_by == actor.username, mine, queued)


def _queue_of(actor: Actor) -> Any:
    """The queue entries a clerk may take: their departments' and their own by name."""
    return or_(
        and_(TaskCandidate.kind == "group", TaskCandidate.value.in_(sorted(actor.departments))),
        and_(TaskCandidate.kind == "user", TaskCandidate.value == actor.username),
    )


def _own_task_rows(actor: Actor) -> list[Any]:
    """The case ids of the tasks the clerk holds (or did) and of those they may take, from
    the clerk's own rows: the assignee's index and the queue's."""
    return [
        select(HumanTask.instance_id).where(HumanTask.assignee == actor.username),
        select(HumanTask.instance_id)
        .join(TaskCandidate, TaskCandidate.task_id == HumanTask.id)
        .where(_queue_of(actor)),
    ]


NEWEST_WINDOW = 500
"""How many of the newest matching cases a clerk's case list checks one by one before it
turns to the clerk's own rows for the older ones."""

FEW_TASK_ROWS = 1000
"""Below this many task rows, the clerk's cases past the window are read by their ids; from
it on, the cases are walked newest first and each checked against the ids."""

NEWEST_FIRST = (Instance.started_at.desc(), Instance.id.desc())


def _older_than(started_at: datetime, instance_id: str) -> Any:
    """After the case (`started_at`, `instance_id`) in newest-first order."""
    return or_(
        Instance.started_at < started_at,
        and_(Instance.started_at == started_at, Instance.id < instance_id),
    )


def _clerk_newest(session: Session, actor: Actor, query: Any, wanted: int) -> list[Instance]:
    """The newest `wanted` cases of `query` the clerk may see, from whichever end is short.

    A clerk with a busy queue sees many of the newest cases: checked one by one, a window of
    them fills the page. A clerk who sees few (a small department, a desk that started
    nothing) would have the whole table checked that way (3.4 s at 1M cases); past the
    window, the cases they started come from the starter's index, and those with their tasks
    from their task rows: read by id when the rows are few, else walked newest first against
    a hash of them (reading each case of 12,000 by id took 0.4-0.7 s).

    The window ends at a case read first, and is bounded by it, not by a count: each
    statement sees the cases committed when it starts, so a case started or closed between
    two of them would otherwise slip between the window and the rest, or be in both."""
    edge = session.execute(
        query.with_only_columns(Instance.started_at, Instance.id)
        .order_by(*NEWEST_FIRST)
        .offset(NEWEST_WINDOW - 1)
        .limit(1)
    ).first()
    window = query
    if edge is not None:
        window = query.where(~_older_than(edge.started_at, edge.id))
    newest = aliased(Instance, window.subquery())
    found = list(
        session.scalars(
            select(newest)
            .where(_clerk_visible(actor, newest))
            .order_by(newest.started_at.desc(), newest.id.desc())
            .limit(wanted)
        )
    )
    if len(found) == wanted or edge is None:
        return found
    rest = wanted - len(found)
    past = _older_than(edge.started_at, edge.id)
    started = (
        query.with_only_columns(Instance.id)
        .where(Instance.started_by == actor.username, past)
        .order_by(*NEWEST_FIRST)
        .limit(rest)
        .subquery()
    )
    own = _own_task_rows(actor)
    counted = union_all(*own).limit(FEW_TASK_ROWS).subquery()
    few = session.scalar(select(func.count()).select_from(counted)) < FEW_TASK_ROWS
    theirs_ids = Instance.id.in_(union(*own))
    theirs = (
        query.with_only_columns(Instance.id)
        .where(theirs_ids if few else only_checked(theirs_ids), past)
        .order_by(*NEWEST_FIRST)
        .limit(rest)
        .subquery()
    )
    older = session.scalars(
        select(Instance)
        .where(Instance.id.in_(union(select(started.c.id), select(theirs.c.id))))
        .order_by(*NEWEST_FIRST)
        .limit(rest)
    )
    return [*found, *older]


def sees_everything(actor: Actor) -> bool:
    return actor.has_role("ops", "admin", "designer")


def require_instance_visible(session: Session, actor: Actor, instance_id: str) -> Instance:
    row = session.get(Instance, instance_id)
    if row is None:
        raise NotFound(f"no instance {instance_id}")
    if sees_everything(actor):
        return row
    visible = session.scalar(
        select(Instance.id).where(Instance.id == instance_id, _clerk_visible(actor))
    )
    if visible is None:
        groups = {
            g
            for t in session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id))
            for g in t.candidate_groups or []
        }
        if not actor.departments.intersection(groups):
            raise Forbidden(
                f"instance {instance_id} has no work for {actor.username}'s departments"
            )
    return row


def list_instances(
    session: Session,
    actor: Actor,
    status: str | None = None,
    definition_key: str | None = None,
    business_key: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
    calendar: WorkCalendar | None = None,
    overdue: bool | None = None,
    due_soon: bool | None = None,
    provisional: bool | None = None,
) -> tuple[list[Instance], str | None]:
    """Newest first, a page at a time (keyset pagination, stable under inserts). Overdue and
    due-soon look at the cases' running SLA clocks."""
    query = select(Instance)
    now = clock.now()
    for wanted, soon in ((overdue, False), (due_soon, True)):
        if wanted is None or calendar is None:
            continue
        matching = select(SlaClock.instance_id).where(clocks.overdue_filter(calendar, now, soon))
        query = query.where(Instance.id.in_(matching) if wanted else Instance.id.not_in(matching))
    if provisional is not None:
        condition = provisional_instances()
        query = query.where(condition if provisional else ~condition)
    if status:
        query = query.where(Instance.status == status)
    if definition_key:
        query = query.where(Instance.definition_key == definition_key)
    if business_key:
        query = query.where(Instance.business_key == business_key)
    if cursor:
        query = query.where(_older_than(*_decode_cursor(cursor)))
    limit = max(1, min(limit, 500))
    if sees_everything(actor):
        rows = list(session.scalars(query.order_by(*NEWEST_FIRST).limit(limit + 1)))
    elif business_key:
        visible = query.where(_clerk_visible(actor))
        rows = list(session.scalars(visible.order_by(*NEWEST_FIRST).limit(limit + 1)))
    else:
        rows = _clerk_newest(session, actor, query, limit + 1)
    next_cursor = (
        _encode_cursor(rows[limit - 1].started_at, rows[limit - 1].id)
        if len(rows) > limit
        else None
    )
    return rows[:limit], next_cursor
