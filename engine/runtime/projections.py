"""Deriving the queryable tables from an instance's workflow, inside the command's transaction.

The worklist, element counters, timers and message subscriptions are never edited on their
own: after every command they are brought in line with the document, so they cannot drift.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5
from zoneinfo import ZoneInfo

from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import (
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from engine.bpmn.specs import GovflowServiceTask, GovflowUserTask
from engine.runtime import assignment, deadlines
from engine.runtime.sandbox import Sandbox
from engine.store import prepared, write_batch
from engine.store.models import (
    ElementState,
    HumanTask,
    Incident,
    Instance,
    MessageSubscription,
    TaskCandidate,
    Timer,
)

ACTIVE_STATES = TaskState.WAITING | TaskState.READY | TaskState.STARTED

# A task that closes leaves no candidates behind: the worklist is the candidates table.
DELETE_CANDIDATES = delete(TaskCandidate.__table__).where(
    TaskCandidate.__table__.c.task_id == bindparam("task_id")
)
MARK_CANDIDATES_CLAIMED = (
    update(TaskCandidate.__table__)
    .where(TaskCandidate.__table__.c.task_id == bindparam("of_task"))
    .values(claimed=bindparam("is_claimed"))
)


def all_tasks(workflow: BpmnWorkflow) -> Iterator[Task]:
    yield from workflow.tasks.values()
    for subprocess in workflow.subprocesses.values():
        yield from subprocess.tasks.values()


def element_id(task: Task) -> str | None:
    return getattr(task.task_spec, "bpmn_id", None)


def snapshot_states(workflow: BpmnWorkflow) -> dict[UUID, int]:
    return {task.id: task._state for task in all_tasks(workflow)}


def active_elements(workflow: BpmnWorkflow) -> dict[str, int]:
    """Tokens per element now (boundary events are not counted: they wait on their host)."""
    active: dict[str, int] = defaultdict(int)
    for task in all_tasks(workflow):
        element = element_id(task)
        if element is None or not task._state & ACTIVE_STATES:
            continue
        if isinstance(task.task_spec, BoundaryEvent):
            continue
        active[element] += 1
    return active


@dataclass(frozen=True)
class WaitKinds:
    """Which waits a version's elements can leave behind besides user tasks. The runner skips
    the projections a version cannot have: each one is a query in every command."""

    timers: bool
    messages: bool
    jobs: bool


EVERY_WAIT = WaitKinds(timers=True, messages=True, jobs=True)


def wait_kinds(specs: Iterable[BpmnProcessSpec]) -> WaitKinds:
    timers = messages = jobs = False
    for spec in specs:
        for task_spec in spec.task_specs.values():
            for definition in _definitions(getattr(task_spec, "event_definition", None)):
                timers = timers or isinstance(definition, TimerEventDefinition)
                messages = messages or isinstance(definition, MessageEventDefinition)
            jobs = jobs or bool(
                isinstance(task_spec, GovflowServiceTask) and getattr(task_spec, "topic", None)
            )
    return WaitKinds(timers, messages, jobs)


class ElementCounter:
    """Counts tokens that passed, failed or were cancelled per element during one command.

    `active_before` (tokens per element when the command loaded the case) lets the element
    table be brought up to date by writing only the elements that changed; None when the
    stored rows may not match the loaded workflow (a migration), which rewrites them all.
    """

    def __init__(self, before: dict[UUID, int], active_before: dict[str, int] | None) -> None:
        self.before = before
        self.active_before = active_before
        self.completed: dict[str, int] = defaultdict(int)
        self.failed: dict[str, int] = defaultdict(int)
        self.cancelled: dict[str, int] = defaultdict(int)
        self._seen: set[UUID] = set()

    @property
    def started_at_load(self) -> bool:
        """Whether any task was started (a parked service task, a running subprocess) when
        the command loaded the case; True when the stored rows may not match (a migration)."""
        return self.active_before is None or any(
            state == TaskState.STARTED for state in self.before.values()
        )

    def account(self, tasks: list[Task] | Iterator[Task]) -> None:
        for task in tasks:
            if task.id in self._seen:
                continue
            element = element_id(task)
            if element is None:
                continue
            old = self.before.get(task.id)
            state = task._state
            if state == old:
                continue
            if state == TaskState.COMPLETED:
                self._seen.add(task.id)
                self.completed[element] += 1
            elif state == TaskState.ERROR:
                self._seen.add(task.id)
                self.failed[element] += 1
            elif state == TaskState.CANCELLED and old is not None and old & ACTIVE_STATES:
                self._seen.add(task.id)
                if not isinstance(task.task_spec, BoundaryEvent):
                    self.cancelled[element] += 1

    def summary(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = {}
        for name, counts in (
            ("completed", self.completed),
            ("failed", self.failed),
            ("cancelled", self.cancelled),
        ):
            if counts:
                result[name] = dict(counts)
        return result


def jsonable(value: Any) -> Any:
    """Case data for display and search: dates as ISO text, decimals as text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal | UUID):
        return str(value)
    return repr(value)


def current_variables(workflow: BpmnWorkflow) -> dict[str, Any]:
    """What the case data looks like now: the last step's data plus every active branch's."""
    if workflow.completed:
        return dict(workflow.data)
    merged: dict[str, Any] = {}
    if workflow.last_task is not None:
        merged.update(workflow.last_task.data)
    active = [t for t in all_tasks(workflow) if t._state & ACTIVE_STATES]  # with call activities
    for task in sorted(active, key=lambda t: t.last_state_change):
        merged.update(task.data)
    return merged


def sync_element_states(
    session: Session, instance_id: str, workflow: BpmnWorkflow, counter: ElementCounter
) -> None:
    active = active_elements(workflow)
    if counter.active_before is None:
        _rewrite_element_states(session, instance_id, active, counter)
        return
    before = counter.active_before
    changed = (
        {e for e in set(active) | set(before) if active.get(e, 0) != before.get(e, 0)}
        | set(counter.completed)
        | set(counter.failed)
        | set(counter.cancelled)
    )
    if not changed:
        return
    rows = [
        {
            "instance_id": instance_id,
            "element_id": element,
            "active": active.get(element, 0),
            "completed": counter.completed.get(element, 0),
            "failed": counter.failed.get(element, 0),
            "cancelled": counter.cancelled.get(element, 0),
        }
        for element in sorted(changed)
    ]
    write_batch.write(session, _element_upsert(session.get_bind().dialect.name), rows)


@cache
def _element_upsert(dialect: str) -> Any:
    """INSERT ... ON CONFLICT DO UPDATE, which SQLite and PostgreSQL both have: one statement
    per command instead of a SELECT, then an UPDATE or INSERT per element. Built once (a
    Core statement on the table, executed with a list of rows, stays in the compiled cache)."""
    table = ElementState.__table__
    statement = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(table)
    added = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[table.c.instance_id, table.c.element_id],
        set_={
            "active": added.active,
            "completed": table.c.completed + added.completed,
            "failed": table.c.failed + added.failed,
            "cancelled": table.c.cancelled + added.cancelled,
        },
    )


def _rewrite_element_states(
    session: Session, instance_id: str, active: dict[str, int], counter: ElementCounter
) -> None:
    rows = {
        row.element_id: row
        for row in session.scalars(
            select(ElementState).where(ElementState.instance_id == instance_id)
        )
    }
    elements = (
        set(rows)
        | set(active)
        | set(counter.completed)
        | set(counter.failed)
        | set(counter.cancelled)
    )
    for element in elements:
        row = rows.get(element)
        if row is None:
            row = ElementState(
                instance_id=instance_id,
                element_id=element,
                active=0,
                completed=0,
                failed=0,
                cancelled=0,
            )
            session.add(row)
        row.active = active.get(element, 0)
        row.completed = (row.completed or 0) + counter.completed.get(element, 0)
        row.failed = (row.failed or 0) + counter.failed.get(element, 0)
        row.cancelled = (row.cancelled or 0) + counter.cancelled.get(element, 0)


# Built once, run with bound values: building and cache-keying a statement in every command
# costs more Python than sending it (see engine/store/prepared.py).
_CASE_TASK_ROWS = select(HumanTask).where(
    HumanTask.instance_id == bindparam("instance_id"),
    or_(HumanTask.state == "open", HumanTask.id.in_(bindparam("ready", expanding=True))),
)

# session.info key: the CaseTasks a task command read with the case (commands.read_instance),
# so that sync_human_tasks need not read them again.
CASE_TASKS = "govflow_case_tasks"


def open_task_ids_of(instances: Any) -> Any:
    """A column for a read of the case row: the ids of the case's open task rows, as one
    comma-separated string (so the case row comes once however many tasks are open), which
    `sync_human_tasks` compares with the tasks ready afterwards instead of reading the rows."""
    tasks = HumanTask.__table__.alias("other_tasks")
    # the separator as SQL text: as a parameter, SQLAlchemy renders it into the SQL at every
    # run (a literal-execute parameter), which keeps the statement off the driver path
    return (
        select(func.aggregate_strings(tasks.c.id, literal_column("','")))
        .where(tasks.c.instance_id == instances.c.id, tasks.c.state == "open")
        .scalar_subquery()
    )


@dataclass
class CaseTasks:
    """What a command read of its case's task rows with the case: the ids of the open ones,
    and the row of the task it works on (whose state the command may change), if any."""

    open_ids: set[str]
    commanded: HumanTask | None = None

    @classmethod
    def from_column(cls, ids: str | None, commanded: HumanTask | None = None) -> CaseTasks:
        """From the value of an `open_task_ids_of` column."""
        return cls(set(ids.split(",")) if ids else set(), commanded)

    def known(self) -> set[str]:
        if self.commanded is None:
            return set(self.open_ids)
        return self.open_ids | {self.commanded.id}

    def still_open(self) -> set[str]:
        if self.commanded is not None and self.commanded.state != "open":
            return self.open_ids - {self.commanded.id}
        return self.known()


@cache
def _insert_tasks(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (id) DO NOTHING: a row a ready task already has is kept as it
    is (a task retried after an incident keeps its id and its closed row)."""
    statement = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(
        HumanTask.__table__
    )
    return statement.on_conflict_do_nothing(index_elements=["id"])


def _candidates_of_open_task() -> Any:
    """INSERT INTO task_candidates SELECT <the values> FROM the task's row WHERE it is open:
    the rows of a task whose existing closed row the insert above kept are not added
    (candidate rows exist only for open tasks, queries.list_tasks). The name and business key
    are the row's own."""
    table = TaskCandidate.__table__
    names = ("task_id", "kind", "value", "due_at", "priority", "created_at", "claimed")
    values = select(
        *(bindparam(name, type_=table.c[name].type) for name in names),
        HumanTask.name,
        HumanTask.business_key,
    ).where(HumanTask.id == bindparam("task_id"), HumanTask.state == "open")
    return insert(table).from_select([*names, "name", "business_key"], values)


_INSERT_CANDIDATES = _candidates_of_open_task()


def ready_human_tasks(workflow: BpmnWorkflow) -> list[Task]:
    return [t for t in all_tasks(workflow) if t._state == TaskState.READY and t.task_spec.manual]


def sync_human_tasks(
    session: Session,
    instance: Instance,
    workflow: BpmnWorkflow,
    sandbox: Sandbox,
    now: datetime,
    tz: ZoneInfo,
    *,
    new_case: bool = False,
    read: CaseTasks | None = None,
) -> list[tuple[Task, str]]:
    """Open rows for new ready user tasks, close rows whose task went away.

    Returns (task, problem) for assignment attributes that could not be evaluated.
    A case this command started (`new_case`) has no rows yet, so none are read. `read` is what
    the command read of the case's rows with the case. A ready task not among them may still
    have a closed row (one retried after an incident keeps its id; that goes through a command
    that does not read them first); the inserts below keep such a row as it is.
    """
    problems: list[tuple[Task, str]] = []
    ready = {str(t.id): t for t in ready_human_tasks(workflow)}
    rows: dict[str, HumanTask] = {}
    if new_case:
        known: set[str] = set()
        open_ids: set[str] = set()
    elif read is not None:
        known, open_ids = read.known(), read.still_open()
    else:
        # One query for the open rows and any row a ready task already has.
        rows = {
            row.id: row
            for row in session.scalars(
                _CASE_TASK_ROWS, {"instance_id": instance.id, "ready": sorted(ready)}
            )
        }
        known = set(rows)
        open_ids = {row.id for row in rows.values() if row.state == "open"}
    new_rows: list[dict[str, Any]] = []
    new_candidates: list[dict[str, Any]] = []
    closed = {"state": "cancelled", "completed_at": now}
    for task_id in sorted(open_ids - set(ready)):
        write_batch.write(
            session, *prepared.update_where(HumanTask.__table__, {"id": task_id}, closed)
        )
        write_batch.write(session, DELETE_CANDIDATES, {"task_id": task_id})
        if task_id in rows:  # the row read above, as written, without a flush writing it again
            for name, value in closed.items():
                set_committed_value(rows[task_id], name, value)
    for task_id, task in ready.items():
        if task_id in known:
            continue
        spec = task.task_spec
        raw = spec.assignment if isinstance(spec, GovflowUserTask) else {}
        resolved = assignment.evaluate(raw, task.data, sandbox, now, tz)
        due_notes = deadlines.Notes()
        if isinstance(raw.get("due_date"), str) and "${" in raw["due_date"]:
            with deadlines.collecting() as due_notes:
                assignment.evaluate({"due_date": raw["due_date"]}, task.data, sandbox, now, tz)
        for problem in resolved.problems:
            problems.append((task, problem))
        new_rows.append(
            {
                "id": task_id,
                "instance_id": instance.id,
                "element_id": element_id(task) or spec.name,
                "name": getattr(spec, "bpmn_name", None) or spec.name,
                "definition_key": instance.definition_key,
                "business_key": instance.business_key,
                "state": "open",
                "assignee": resolved.assignee,
                "candidate_groups": resolved.candidate_groups,
                "candidate_users": resolved.candidate_users,
                "form_key": resolved.form_key,
                "due_at": resolved.due_at,
                "due_basis": due_notes.single_basis,
                "due_provisional_year": due_notes.provisional_year,
                "follow_up_at": resolved.follow_up_at,
                "priority": resolved.priority,
                "created_at": now,
                "claimed_at": now if resolved.assignee else None,
                "completed_at": None,
                "completed_by": None,
            }
        )
        sort_keys = {
            "due_at": resolved.due_at,
            "priority": resolved.priority,
            "created_at": now,
            "claimed": resolved.assignee is not None,
        }
        new_candidates += [
            {"task_id": task_id, "kind": "group", "value": group, **sort_keys}
            for group in resolved.candidate_groups
        ] + [
            {"task_id": task_id, "kind": "user", "value": user, **sort_keys}
            for user in resolved.candidate_users
        ]
    # Core inserts: the rows are not needed as objects in this command, and the unit of work
    # costs more than the statements (a step's biggest share on SQLite).
    if new_rows:
        write_batch.write(session, _insert_tasks(session.get_bind().dialect.name), new_rows)
    if new_candidates:
        write_batch.write(session, _INSERT_CANDIDATES, new_candidates)
    return problems


def _timer_due(task: Task) -> datetime | None:
    value = task.internal_data.get("event_value")
    if not value:
        return None
    if isinstance(value, dict):  # a cycle: {"cycles", "next", "duration"}
        return datetime.fromisoformat(value["next"]) if value.get("cycles") != 0 else None
    try:
        if isinstance(value, str) and value.upper().startswith("R"):
            _cycles, start, _duration = TimerEventDefinition.parse_iso_recurring_interval(value)
            return start
        return TimerEventDefinition.get_datetime(value)
    except Exception:
        return None


def _timer_notes(task: Task, sandbox: Sandbox) -> deadlines.Notes:
    """What the timer's expression counted on the calendar (its basis and unknown years),
    found by evaluating it once more the way Spiff did."""
    expression = getattr(task.task_spec.event_definition, "expression", None) or ""
    notes = deadlines.Notes()
    if "workday" not in expression:
        return notes
    # a failing expression was already reported by the timer itself
    with deadlines.collecting() as notes, contextlib.suppress(Exception):
        sandbox.evaluate(expression, task.data)
    return notes


def _definitions(definition: Any) -> list[Any]:
    """The event definitions a task waits on: one, or each of a multiple event's (an
    event-based gateway waits on all its targets' events at once; so does a start event with
    several definitions)."""
    if isinstance(definition, MultipleEventDefinition):
        return list(definition.event_definitions)
    return [definition] if definition is not None else []


def _still_waited(task: Task) -> list[Any]:
    """The task's definitions minus those a parallel multiple event has already caught."""
    seen = [event.event_definition for event in task.internal_data.get("seen_events", [])]
    return [d for d in _definitions(task.task_spec.event_definition) if d not in seen]


def _message_triggered_subprocesses(
    instance_id: str, workflow: BpmnWorkflow
) -> dict[tuple[str, str], str]:
    """Message event subprocesses: Spiff creates them only when their message comes, so no
    task waits for it; the case subscribes under a stable id of the start event instead."""
    if workflow.completed:
        return {}
    found: dict[tuple[str, str], str] = {}
    for spec_name in getattr(workflow.spec.start, "trigger_specs", []):
        spec = workflow.subprocess_specs.get(spec_name)
        for start in getattr(spec, "bpmn_start_events", []):
            definition = start.event_definition
            if isinstance(definition, MessageEventDefinition):
                key = str(uuid5(NAMESPACE_URL, f"{instance_id}/{spec_name}/{start.name}"))
                found[(key, definition.name)] = getattr(start, "bpmn_id", None) or start.name
    return found


def sync_waits(
    session: Session, instance_id: str, workflow: BpmnWorkflow, sandbox: Sandbox, now: datetime
) -> None:
    """Timers and message subscriptions of the tasks that now wait for an event."""
    timers: dict[str, tuple[str, datetime, Task]] = {}
    subscriptions: dict[tuple[str, str], str] = {}
    for task in all_tasks(workflow):
        if task._state != TaskState.WAITING or not hasattr(task.task_spec, "event_definition"):
            continue
        element = element_id(task) or task.task_spec.name
        for definition in _still_waited(task):
            if isinstance(definition, TimerEventDefinition):
                due = _timer_due(task)
                if due is not None:
                    timers[str(task.id)] = (element, due, task)
            elif isinstance(definition, MessageEventDefinition):
                subscriptions[(str(task.id), definition.name)] = element
    subscriptions.update(_message_triggered_subprocesses(instance_id, workflow))
    existing_timers = {
        row.task_id: row
        for row in session.scalars(
            select(Timer).where(
                Timer.instance_id == instance_id, Timer.state.in_(("waiting", "firing"))
            )
        )
    }
    for task_id, row in existing_timers.items():
        if task_id not in timers:
            row.state = "done"
            row.fired_at = row.fired_at or now
        else:
            row.state = "waiting"
            row.due_at = timers[task_id][1]
    for task_id, (element, due, task) in timers.items():
        if task_id not in existing_timers:
            notes = _timer_notes(task, sandbox)
            session.add(
                Timer(
                    instance_id=instance_id,
                    task_id=task_id,
                    element_id=element,
                    due_at=due,
                    basis=notes.single_basis,
                    provisional_year=notes.provisional_year,
                    created_at=now,
                )
            )
    existing_subs = {
        (row.task_id, row.message_name): row
        for row in session.scalars(
            select(MessageSubscription).where(MessageSubscription.instance_id == instance_id)
        )
    }
    for wait, row in existing_subs.items():
        if wait not in subscriptions:
            session.delete(row)
    for (task_id, name), element in subscriptions.items():
        if (task_id, name) not in existing_subs:
            session.add(
                MessageSubscription(
                    instance_id=instance_id, task_id=task_id, element_id=element, message_name=name
                )
            )


def open_incident_count(session: Session, instance_id: str) -> int:
    return len(
        list(
            session.scalars(
                select(Incident.id).where(
                    Incident.instance_id == instance_id, Incident.resolved_at.is_(None)
                )
            )
        )
    )


def derive_status(workflow: BpmnWorkflow, open_incidents: int) -> str:
    if open_incidents:
        return "error"
    if workflow.completed or workflow.is_completed():
        return "completed"
    if ready_human_tasks(workflow):
        return "running"
    return "waiting"
