"""The commands that change an instance, each refused (changing nothing) when it should be."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from SpiffWorkflow.exceptions import TaskNotFoundException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from engine.accounts import permissions
from engine.accounts.directory import load_actor
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound, VersionConflict
from engine.runtime import clocks, projections, queries
from engine.runtime.deadlines import ClockAction
from engine.runtime.forms import form_name, validate_submission
from engine.runtime.job_results import retry_failed_job
from engine.runtime.projections import jsonable
from engine.runtime.runner import CommandContext
from engine.runtime.sandbox import storable_problem
from engine.runtime.stepper import StepResult, record_failure
from engine.store import driver_sql, orm_rows, prepared, write_batch
from engine.store.models import HumanTask, Incident, Instance, SlaClock, User

_READ_TASK = "govflow_read_task"
_INSTANCES = Instance.__table__
_TASKS = HumanTask.__table__
# The case and the task as plain columns, run on the driver and made into the ORM objects
# the runner works on (engine/store/orm_rows.py): the ORM query of the two was a quarter of a
# task completion's CPU samples.
_CASE_WITH_TASK = (
    select(*orm_rows.columns(Instance), *orm_rows.columns(HumanTask))
    .select_from(_INSTANCES.join(_TASKS, _TASKS.c.instance_id == _INSTANCES.c.id))
    .where(_TASKS.c.id == bindparam("task_id"))
)
# A command that moves the case on also reads the ids of the case's open task rows, which its
# projections compare with the tasks ready afterwards (projections.sync_human_tasks).
_CASE_WITH_TASK_AND_OPEN_IDS = _CASE_WITH_TASK.add_columns(projections.open_task_ids_of(_INSTANCES))
_INSTANCE_END = len(orm_rows.columns(Instance))
_TASK_END = _INSTANCE_END + len(orm_rows.columns(HumanTask))


def _case_and_task(session: Session, found: Sequence[Any]) -> tuple[Instance, HumanTask]:
    """The case (in the session, as the runner changes it) and the task row (detached, see
    `_task_row`) from a row of the case's columns followed by the task's."""
    task = orm_rows.detached(HumanTask, found[_INSTANCE_END:_TASK_END])
    session.info[_READ_TASK] = task
    return orm_rows.persistent(session, Instance, found[:_INSTANCE_END]), task


def _task_row(session: Session, task_id: str) -> HumanTask:
    """The task row `read_instance` read with the case. Detached: the command writes its
    change with one UPDATE (_save), not through the unit of work (a flush costs several times
    the statement), and the row answers the caller."""
    row: HumanTask = session.info.pop(_READ_TASK)
    assert row.id == task_id, f"read task {row.id}, command for {task_id}"
    return row


def _save(ctx: CommandContext, row: HumanTask, **values: Any) -> None:
    for key, value in values.items():
        setattr(row, key, value)
    write_batch.write(
        ctx.session, *prepared.update_where(HumanTask.__table__, {"id": row.id}, values)
    )


def _require_open(row: HumanTask) -> None:
    if row.state == "completed":
        raise Conflict(
            f"task {row.id} ({row.name}) was already completed by {row.completed_by}",
            {"completed_at": row.completed_at.isoformat() if row.completed_at else None},
        )
    if row.state != "open":
        raise Conflict(f"task {row.id} ({row.name}) is {row.state}: the case has moved on")


def _forbid_unless_candidate(ctx: CommandContext, row: HumanTask) -> None:
    if row.assignee == ctx.actor.username:
        return
    if not permissions.is_candidate(ctx.actor, row.candidate_groups, row.candidate_users):
        groups = ", ".join(row.candidate_groups) or "no department"
        raise Forbidden(
            f"task {row.id} ({row.name}) belongs to {groups}; "
            f"{ctx.actor.username} is not among its candidates"
        )


def _close_candidates(ctx: CommandContext, task_id: str) -> None:
    write_batch.write(ctx.session, projections.DELETE_CANDIDATES, {"task_id": task_id})


def _mark_candidates(ctx: CommandContext, task_id: str, claimed: bool) -> None:
    """The queue entries say whether the task has an assignee: claim-next walks only those
    that do not (queries.next_unclaimed_task)."""
    write_batch.write(
        ctx.session,
        projections.MARK_CANDIDATES_CLAIMED,
        {"of_task": task_id, "is_claimed": claimed},
    )


@dataclass
class _TaskCommand:
    task_id: str
    needs_workflow = False
    allowed_when_suspended = False
    allowed_when_ended = False

    def instance_id_for(self, session: Session) -> str:
        instance_id = session.scalar(
            select(HumanTask.instance_id).where(HumanTask.id == self.task_id)
        )
        if instance_id is None:
            raise NotFound(f"no task {self.task_id}")
        return instance_id

    def read_instance(self, session: Session) -> Instance:
        # The task row comes in the same statement (one round trip, one snapshot: a claim
        # committed before it shows in both rows); `_task_row` then takes it from session.info.
        statement = _CASE_WITH_TASK_AND_OPEN_IDS if self.needs_workflow else _CASE_WITH_TASK
        found = driver_sql.first(statement, {"task_id": self.task_id}, session.connection())
        if found is None:
            raise NotFound(f"no instance {self.instance_id_for(session)}")
        instance, task = _case_and_task(session, found)
        if self.needs_workflow:
            session.info[projections.CASE_TASKS] = projections.CaseTasks.from_column(
                found[_TASK_END], task
            )
        return instance

    def _start(self, ctx: CommandContext) -> HumanTask:
        # Read with the instance row (read_instance), so no claim can fall between the two:
        # one committed after them moves the version on, this command's fence fails and it
        # runs again on the claimed row.
        row = _task_row(ctx.session, self.task_id)
        _require_open(row)
        ctx.task_row = row
        ctx.audit_task_id = row.id
        ctx.audit_element_id = row.element_id
        return row


@dataclass
class ClaimTask(_TaskCommand):
    name = "claim"

    def apply(self, ctx: CommandContext) -> HumanTask:
        row = self._start(ctx)
        if row.assignee == ctx.actor.username:
            ctx.changed = False
            return row
        if row.assignee is not None:
            raise Conflict(f"task {row.id} ({row.name}) is already claimed by {row.assignee}")
        _forbid_unless_candidate(ctx, row)
        _save(ctx, row, assignee=ctx.actor.username, claimed_at=ctx.now)
        _mark_candidates(ctx, row.id, claimed=True)
        return row


@dataclass
class ClaimNextTask(ClaimTask):
    """Take the next unclaimed task from the caller's queues, soonest due first, as a counter
    clerk presses "next" (叫号) instead of picking from the list and racing colleagues for it.

    The pick and the claim are one transaction: on PostgreSQL the picked row stays locked
    until the claim commits and colleagues' picks skip it (SQLite runs one command at a
    time). A claim made meanwhile through another path moves the case's version on, and the
    retry picks again."""

    task_id: str = ""
    ranges: tuple[tuple[str, str], ...] = ()

    def read_instance(self, session: Session) -> Instance:
        statement, params = queries.next_unclaimed_task(list(self.ranges))
        found = driver_sql.first(statement, params, session.connection())
        if found is None:
            unlocked, _ = queries.next_unclaimed_task(list(self.ranges), locked=False)
            if session.execute(unlocked, params).first() is not None:
                # colleagues' picks hold every waiting task it looked at: once they commit or
                # let go, the runner's next try finds the next task, or that none is left
                raise VersionConflict(
                    "every task waiting at the head of the queue was being handed to a colleague"
                )
            departments = ", ".join(v for kind, v in self.ranges if kind == "group") or "none"
            raise NotFound(
                f"no unclaimed task is waiting in your queue (departments: {departments})"
            )
        instance, task = _case_and_task(session, found)
        self.task_id = task.id
        return instance


@dataclass
class UnclaimTask(_TaskCommand):
    name = "unclaim"

    def apply(self, ctx: CommandContext) -> HumanTask:
        row = self._start(ctx)
        if row.assignee is None:
            ctx.changed = False
            return row
        if row.assignee != ctx.actor.username and not permissions.may_manage_assignment(ctx.actor):
            raise Forbidden(
                f"task {row.id} is claimed by {row.assignee}; only they or ops may release it"
            )
        ctx.audit_details["previous_assignee"] = row.assignee
        _save(ctx, row, assignee=None, claimed_at=None)
        _mark_candidates(ctx, row.id, claimed=False)
        return row


@dataclass
class AssignTask(_TaskCommand):
    user: str = ""
    name = "assign"

    def apply(self, ctx: CommandContext) -> HumanTask:
        row = self._start(ctx)
        target = ctx.session.scalars(select(User).where(User.username == self.user)).first()
        if target is None or not target.active:
            raise InvalidInput(
                f"no active user {self.user!r}", [{"path": "$.user", "message": "unknown user"}]
            )
        if not permissions.may_manage_assignment(ctx.actor):
            if row.assignee not in (None, ctx.actor.username):
                raise Conflict(f"task {row.id} is claimed by {row.assignee}")
            _forbid_unless_candidate(ctx, row)
            target_actor = load_actor(ctx.session, self.user)
            if not permissions.is_candidate(
                target_actor, row.candidate_groups, row.candidate_users
            ):
                raise Forbidden(
                    f"{self.user} is not a candidate for task {row.id}; ask ops to assign it"
                )
        ctx.audit_data = {"user": self.user}
        ctx.audit_details["previous_assignee"] = row.assignee
        _save(ctx, row, assignee=self.user, claimed_at=ctx.now)
        _mark_candidates(ctx, row.id, claimed=True)
        return row


@dataclass
class CompleteTask(_TaskCommand):
    data: dict[str, Any] = field(default_factory=dict)
    name = "complete"
    needs_workflow = True

    def apply(self, ctx: CommandContext) -> HumanTask:
        row = self._start(ctx)
        if row.assignee is not None and row.assignee != ctx.actor.username:
            raise Conflict(f"task {row.id} ({row.name}) is claimed by {row.assignee}")
        _forbid_unless_candidate(ctx, row)
        schema = ctx.version.forms.get(form_name(row.form_key)) if row.form_key else None
        errors = validate_submission(schema, self.data)
        if errors:
            raise InvalidInput(
                f"form data is invalid ({len(errors)} problem{'s' if len(errors) != 1 else ''})",
                [e.to_dict() for e in errors],
            )
        for key, value in self.data.items():
            problem = storable_problem(value, key)
            if problem:
                raise InvalidInput(problem, [{"path": f"$.{key}", "message": problem}])
        try:
            task = ctx.workflow.get_task_from_id(UUID(self.task_id))
        except TaskNotFoundException:
            raise Conflict(f"task {row.id} is no longer part of the case") from None
        if task is None or task.state != TaskState.READY:
            raise Conflict(f"task {row.id} ({row.name}) is not ready to be completed")
        task.data.update(self.data)
        task.data["last_completed_by"] = ctx.actor.username
        ctx.run_task(task)
        done: dict[str, Any] = {
            "state": "completed",
            "completed_at": ctx.now,
            "completed_by": ctx.actor.username,
        }
        if row.assignee is None:
            done.update(assignee=ctx.actor.username, claimed_at=ctx.now)
        _save(ctx, row, **done)
        _close_candidates(ctx, row.id)
        ctx.audit_data = jsonable(self.data)
        return row


@dataclass
class _InstanceCommand:
    instance_id: str
    reason: str = ""
    needs_workflow = True
    allowed_when_suspended = False
    allowed_when_ended = False

    def instance_id_for(self, session: Session) -> str:
        return self.instance_id

    def _require_ops(self, ctx: CommandContext) -> None:
        if not ctx.actor.has_role("ops", "admin"):
            raise Forbidden(f"{self.name} needs the ops or admin role")  # type: ignore[attr-defined]
        if self.reason:
            ctx.audit_data = {"reason": self.reason}


def _resolve_open_incidents(ctx: CommandContext, resolution: str) -> None:
    for incident in ctx.session.scalars(
        select(Incident).where(
            Incident.instance_id == ctx.instance.id, Incident.resolved_at.is_(None)
        )
    ):
        incident.resolved_at = ctx.now
        incident.resolved_by = f"{ctx.actor.username} ({resolution})"


@dataclass
class CancelInstance(_InstanceCommand):
    name = "cancel"
    allowed_when_suspended = True

    def apply(self, ctx: CommandContext) -> None:
        self._require_ops(ctx)
        ctx.workflow.cancel()
        ctx.forced_status = "cancelled"
        _resolve_open_incidents(ctx, "instance cancelled")


@dataclass
class SuspendInstance(_InstanceCommand):
    name = "suspend"
    needs_workflow = False

    def apply(self, ctx: CommandContext) -> None:
        self._require_ops(ctx)
        ctx.forced_status = "suspended"


@dataclass
class ResumeInstance(_InstanceCommand):
    name = "resume"
    allowed_when_suspended = True

    def apply(self, ctx: CommandContext) -> None:
        self._require_ops(ctx)
        if ctx.instance.status != "suspended":
            raise Conflict(f"instance {ctx.instance.id} is not suspended")
        _ = ctx.workflow


@dataclass
class RetryIncident:
    incident_id: int
    reason: str = ""
    name = "retry"
    needs_workflow = True
    allowed_when_suspended = False
    allowed_when_ended = False

    def instance_id_for(self, session: Session) -> str:
        incident = session.get(Incident, self.incident_id)
        if incident is None:
            raise NotFound(f"no incident {self.incident_id}")
        return incident.instance_id

    def apply(self, ctx: CommandContext) -> Incident:
        if not ctx.actor.has_role("ops", "admin"):
            raise Forbidden("retrying an incident needs the ops or admin role")
        incident = ctx.session.get(Incident, self.incident_id)
        assert incident is not None
        if incident.resolved_at is not None:
            raise Conflict(f"incident {incident.id} is already resolved")
        ctx.audit_data = {"incident": incident.id, "reason": self.reason}
        ctx.audit_element_id = incident.element_id
        if incident.kind == "job":
            retry_failed_job(ctx.session, incident, ctx.now)
            _ = ctx.workflow
        elif incident.task_id:
            try:
                task = ctx.workflow.get_task_from_id(UUID(incident.task_id))
            except TaskNotFoundException:
                task = None
            if task is not None and task.state == TaskState.ERROR:
                task._set_state(TaskState.FUTURE)
                try:
                    task.task_spec._update(task)
                except Exception as exc:  # the element fails again at once
                    result = StepResult()
                    record_failure(result, exc, task)
                    ctx.failures.extend(result.failures)
        else:
            _ = ctx.workflow
        incident.resolved_at = ctx.now
        incident.resolved_by = ctx.actor.username
        return incident


@dataclass
class ChangeClock:
    """Start, pause, resume or stop one of a case's SLA clocks (补正, 特别程序, ...)."""

    instance_id: str
    action: str
    clock_name: str = "case"
    workdays: int | None = None
    reason: str = ""
    name = "clock"
    needs_workflow = False
    allowed_when_suspended = True
    allowed_when_ended = False

    def instance_id_for(self, session: Session) -> str:
        return self.instance_id

    def apply(self, ctx: CommandContext) -> SlaClock:
        if not ctx.actor.has_role("clerk", "ops", "admin"):
            raise Forbidden("changing a case's clock needs the clerk, ops or admin role")
        if ctx.actor.has_role("clerk") and not ctx.actor.has_role("ops", "admin"):
            queries.require_instance_visible(ctx.session, ctx.actor, ctx.instance.id)
        action = ClockAction(self.action, self.clock_name, self.workdays, self.reason)
        try:
            row = clocks.apply(
                ctx.session, ctx.instance.id, action, ctx.services.calendars.get(), ctx.now
            )
        except clocks.ClockError as exc:
            raise Conflict(str(exc)) from None
        ctx.audit_data = {
            "clock": self.clock_name,
            "action": self.action,
            "workdays": self.workdays,
            "reason": self.reason or None,
        }
        ctx.audit_details["due_date"] = row.due_date.isoformat()
        return row
