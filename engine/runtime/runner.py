"""The one code path every change to an instance goes through.

load -> refresh timers -> apply command -> engine steps -> prune history -> projections ->
save document and projections in one transaction, fenced by `UPDATE ... WHERE version = :seen`.
A fence that fails (another command got there first) rolls everything back and the command is
tried again on the fresh state; a command that is refused changes nothing.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from threading import Lock
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.simple import NoneEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import CycleTimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from engine.accounts.actor import Actor
from engine.bpmn.parser import START_FORM
from engine.config import Settings
from engine.errors import Conflict, GovflowError, InvalidInput, NotFound, VersionConflict
from engine.jobs.outbox import queue_messages, sync_jobs
from engine.ops.metrics import observe_command
from engine.runtime import case_records, clock, clocks, deadlines, projections, work_orders
from engine.runtime.case_helpers import STATUS_NAMES, CaseHelpers
from engine.runtime.catalog import CatalogProvider
from engine.runtime.deadlines import DeadlineHelpers
from engine.runtime.forms import form_name, validate_submission
from engine.runtime.history import prune_history
from engine.runtime.projections import EVERY_WAIT, ElementCounter, WaitKinds, jsonable, wait_kinds
from engine.runtime.sandbox import storable_problem
from engine.runtime.scripting import GovflowScriptEngine, make_script_engine
from engine.runtime.serializer import dump_workflow, load_workflow, spec_from_json
from engine.runtime.stepper import Failure, StepResult, record_failure, run_engine_steps
from engine.runtime.workcalendar import CalendarProvider, OfficeHours
from engine.store import driver_sql, prepared, version_fence, write_batch
from engine.store.db import Database
from engine.store.models import (
    AuditEvent,
    CaseStatus,
    DefinitionVersion,
    HumanTask,
    Incident,
    Instance,
    ProcessDefinition,
    TaskCandidate,
)

log = logging.getLogger("govflow.runner")

ENDED = ("completed", "cancelled")


@dataclass
class LoadedVersion:
    """A deployed definition version, restored once and shared read-only."""

    id: int
    definition_key: str
    version: int
    spec: BpmnProcessSpec
    subprocess_specs: dict[str, BpmnProcessSpec]
    forms: dict[str, Any]
    waits: WaitKinds = EVERY_WAIT


class VersionCache:
    """Restored specs by definition version id (least recently used ones are dropped)."""

    def __init__(self, capacity: int = 256) -> None:
        self.capacity = capacity
        self._items: OrderedDict[int, LoadedVersion] = OrderedDict()
        self._lock = Lock()

    def get(self, session: Session, version_id: int) -> LoadedVersion:
        with self._lock:
            cached = self._items.get(version_id)
            if cached is not None:
                self._items.move_to_end(version_id)
                return cached
        row = session.get(DefinitionVersion, version_id)
        if row is None:
            raise NotFound(f"definition version {version_id} does not exist")
        definition = session.get(ProcessDefinition, row.definition_id)
        assert definition is not None
        spec, subprocess_specs = spec_from_json(row.spec)
        loaded = LoadedVersion(
            row.id,
            definition.key,
            row.version,
            spec,
            subprocess_specs,
            dict(row.forms or {}),
            wait_kinds([spec, *subprocess_specs.values()]),
        )
        with self._lock:
            self._items[version_id] = loaded
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return loaded


@dataclass
class Services:
    """What commands need besides the database session."""

    settings: Settings
    database: Database
    script_engine: GovflowScriptEngine
    calendars: CalendarProvider
    catalog: CatalogProvider
    versions: VersionCache = field(default_factory=VersionCache)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    @classmethod
    def create(cls, settings: Settings, database: Database) -> Services:
        office = OfficeHours.parse(settings.office_opens, settings.office_closes, settings.timezone)
        calendars = CalendarProvider(database, office)
        catalog = CatalogProvider(database)
        helpers = {
            **DeadlineHelpers(calendars).namespace(),
            **CaseHelpers(catalog, office.tz).namespace(),
        }
        engine = make_script_engine(settings.script_timeout_s, helpers)
        return cls(settings, database, engine, calendars, catalog)


class Command(Protocol):
    """A change to one instance. `apply` may refuse by raising a GovflowError."""

    name: str
    needs_workflow: bool
    allowed_when_suspended: bool
    allowed_when_ended: bool

    def instance_id_for(self, session: Session) -> str: ...

    def apply(self, ctx: CommandContext) -> Any: ...


@runtime_checkable
class ReadsItsInstance(Protocol):
    """A command that reads its case row itself, in one statement (a task command reads it
    through the task instead of routing first and reading second)."""

    def read_instance(self, session: Session) -> Instance: ...


class CommandContext:
    """The state a command works on: the instance row, the actor and (lazily) the workflow."""

    def __init__(
        self, services: Services, session: Session, instance: Instance, actor: Actor
    ) -> None:
        self.services = services
        self.session = session
        self.instance = instance
        self.actor = actor
        self.now = clock.now()
        self.failures: list[Failure] = []
        self.incidents: list[tuple[str, str | None, str | None, str]] = []
        self.audit_task_id: str | None = None
        self.task_row: HumanTask | None = None  # a task command's row (detached: see commands)
        self.audit_element_id: str | None = None
        self.audit_data: dict[str, Any] | None = None
        self.audit_details: dict[str, Any] = {}
        self.forced_status: str | None = None
        self.run_steps = True
        self.changed = True
        self._workflow: BpmnWorkflow | None = None
        self.counter: ElementCounter | None = None
        self.status_at_load = instance.status

    @property
    def version(self) -> LoadedVersion:
        return self.services.versions.get(self.session, self.instance.definition_version_id)

    @property
    def loaded(self) -> bool:
        return self._workflow is not None

    @property
    def workflow(self) -> BpmnWorkflow:
        if self._workflow is None:
            version = self.version
            self._workflow = load_workflow(
                self.instance.document,
                version.spec,
                version.subprocess_specs,
                self.services.script_engine,
            )
            self.counter = ElementCounter(
                projections.snapshot_states(self._workflow),
                projections.active_elements(self._workflow),
            )
        return self._workflow

    @property
    def waits(self) -> WaitKinds:
        """The waits whose tables the command must bring in line: all of them after a
        migration (the stored rows may hold the old version's)."""
        migrated = self.counter is None or self.counter.active_before is None
        return EVERY_WAIT if migrated else self.version.waits

    def adopt(self, workflow: BpmnWorkflow) -> None:
        """Use a freshly created workflow (start command)."""
        self._workflow = workflow
        self.counter = ElementCounter({}, {})

    def use_workflow(self, workflow: BpmnWorkflow) -> None:
        """Work on a workflow restored another way (a migration onto another version): the
        stored projections may hold elements of the old version, so all are rewritten."""
        self._workflow = workflow
        self.counter = ElementCounter(projections.snapshot_states(workflow), None)

    def run_task(self, task: Task) -> None:
        """Run one task (a completed user task), containing its failure."""
        self._contained(task, task.run)

    def run_task_completion(self, task: Task) -> None:
        """Complete a parked task (a service task whose job finished), containing failures."""
        self._contained(task, task.complete)

    def _contained(self, task: Task, action: Callable[[], Any]) -> None:
        result = StepResult()
        try:
            action()
        except Exception as exc:
            record_failure(result, exc, task)
        self.failures.extend(result.failures)

    def add_incident(
        self, kind: str, message: str, task_id: str | None = None, element_id: str | None = None
    ) -> None:
        self.incidents.append((kind, task_id, element_id, message))


def _is_retryable(exc: DBAPIError) -> bool:
    """Serialization failures, deadlocks, a locked SQLite file, and a connection that died
    (the pool pings only idle connections, engine/store/pool_liveness.py). Running a command
    again is safe: if its first try did commit, the version fence makes the second see it."""
    if exc.connection_invalidated:
        return True
    text = str(exc.orig) if exc.orig is not None else str(exc)
    code = getattr(exc.orig, "sqlstate", None)
    return code in ("40001", "40P01") or "database is locked" in text


class Runner:
    """Executes commands against instances, one transaction each."""

    def __init__(self, services: Services) -> None:
        self.services = services

    @property
    def settings(self) -> Settings:
        return self.services.settings

    # --- starting ----------------------------------------------------------------------------

    def start(
        self,
        definition_key: str,
        actor: Actor,
        *,
        version: int | None = None,
        business_key: str | None = None,
        variables: dict[str, Any] | None = None,
        message: BpmnEvent | None = None,
        start_timer: str | None = None,
    ) -> Instance:
        """Start a case; with `message`, deliver it to the process's message start event;
        with `start_timer`, let that timer start event fire at once (the scheduler's start)."""
        began = time.perf_counter()
        with self.services.database.write_session() as session:
            instance = self._start_in(
                session,
                definition_key,
                actor,
                version,
                business_key,
                variables,
                message,
                start_timer,
            )
        observe_command("start", time.perf_counter() - began, "ok")
        return instance

    def start_many(
        self, definition_key: str, actor: Actor, batch: list[dict[str, Any]]
    ) -> list[Instance]:
        """Start one case per variables dict in a single transaction: all start or none do
        (an import must never be half done)."""
        with self.services.database.write_session() as session:
            return [
                self._start_in(session, definition_key, actor, None, None, variables, None, None)
                for variables in batch
            ]

    def _start_in(
        self,
        session: Session,
        definition_key: str,
        actor: Actor,
        version: int | None,
        business_key: str | None,
        variables: dict[str, Any] | None,
        message: BpmnEvent | None,
        start_timer: str | None,
    ) -> Instance:
        variables = dict(variables or {})
        for key, value in variables.items():
            problem = storable_problem(value, key)
            if problem:
                raise InvalidInput(problem, [{"path": f"$.variables.{key}", "message": problem}])
        found = driver_sql.first(
            _LATEST_VERSION if version is None else _GIVEN_VERSION,
            {"key": definition_key} if version is None else {"key": definition_key, "v": version},
            session.connection(),
        )
        if found is None:
            latest = session.scalar(
                select(ProcessDefinition.latest_version).where(
                    ProcessDefinition.key == definition_key
                )
            )
            if latest is None:
                raise NotFound(f"no process definition {definition_key!r} is deployed")
            wanted = version if version is not None else latest
            raise NotFound(f"process {definition_key!r} has no version {wanted}")
        version_id, version_number = found
        loaded = self.services.versions.get(session, version_id)
        if message is None and start_timer is None:
            _validate_start_form(loaded, variables)
        instance = Instance(
            id=str(uuid.uuid4()),
            definition_version_id=version_id,
            definition_key=definition_key,
            definition_version=version_number,
            business_key=business_key,
            status="running",
            version=1,
            document="",
            variables={},
            started_by=actor.username,
            started_at=clock.now(),
            updated_at=clock.now(),
        )
        # written with its first document by the flush in _finish: one INSERT, not an INSERT
        # of an empty case and an UPDATE (unless something flushes earlier: a start script
        # drawing the day's first case number opens a savepoint, which flushes)
        session.add(instance)
        ctx = CommandContext(self.services, session, instance, actor)
        workflow = BpmnWorkflow(
            loaded.spec, loaded.subprocess_specs, script_engine=self.services.script_engine
        )
        workflow.task_tree.data.update(variables)
        ctx.adopt(workflow)
        ctx.audit_data = jsonable(variables)
        with deadlines.collecting() as notes:
            notes.session = session
            if start_timer is not None:
                _fire_start_timer(workflow, start_timer, ctx.now)
                ctx.audit_details["timer"] = start_timer
            if message is not None:
                _open_start_events(workflow)
                if workflow.event_manager.catch(message, internal=False) == 0:
                    raise NotFound(
                        f"process {definition_key!r} does not start on message "
                        f"{message.event_definition.name!r}"
                    )
                _withdraw_none_starts(workflow)
                ctx.audit_details["message"] = message.event_definition.name
            self._finish(ctx, "start", fenced=False, notes=notes)
        return instance

    # --- commands ----------------------------------------------------------------------------

    def execute(self, command: Command, actor: Actor) -> Any:
        began = time.perf_counter()
        outcome = "error"
        try:
            result = self._execute_with_retries(command, actor)
            outcome = "ok"
            return result
        except GovflowError as exc:
            outcome = exc.code
            raise
        finally:
            observe_command(command.name, time.perf_counter() - began, outcome)

    def _execute_with_retries(self, command: Command, actor: Actor) -> Any:
        attempts = max(1, self.settings.command_retries)
        last_error: Exception | None = None
        for attempt in range(attempts):
            try:
                return self._execute_once(command, actor)
            except VersionConflict as exc:
                last_error = exc
            except (OperationalError, DBAPIError) as exc:
                if not _is_retryable(exc):
                    raise
                last_error = exc
            time.sleep(min(0.2, 0.002 * (2**attempt)) * random.random())
        if isinstance(last_error, DBAPIError) and last_error.connection_invalidated:
            raise last_error  # the database is away, not the instance busy
        raise Conflict(
            f"instance kept changing while {command.name} ran; tried {attempts} times",
            {"last_error": str(last_error)},
        )

    def _execute_once(self, command: Command, actor: Actor) -> Any:
        with self.services.database.write_session() as session:
            if isinstance(command, ReadsItsInstance):
                instance = command.read_instance(session)
            else:
                instance_id = command.instance_id_for(session)
                found = session.get(Instance, instance_id)
                if found is None:
                    raise NotFound(f"no instance {instance_id}")
                instance = found
            if instance.status == "suspended" and not command.allowed_when_suspended:
                raise Conflict(f"instance {instance.id} is suspended; resume it first")
            if instance.status in ENDED and not command.allowed_when_ended:
                raise Conflict(f"instance {instance.id} is {instance.status}")
            ctx = CommandContext(self.services, session, instance, actor)
            with deadlines.collecting() as notes:
                notes.session = session
                if command.needs_workflow and ctx.version.waits.timers:
                    self._refresh_timers(ctx)
                result = command.apply(ctx)
                if (
                    ctx.changed
                    or notes.clock_actions
                    or notes.statuses
                    or notes.work_orders
                    or notes.case_items
                ):
                    self._finish(ctx, command.name, fenced=True, notes=notes)
            return result

    def _refresh_timers(self, ctx: CommandContext) -> None:
        try:
            ctx.workflow.refresh_timers()
        except Exception as exc:
            result = StepResult()
            record_failure(result, exc, None)
            ctx.failures.extend(result.failures)

    # --- the common tail ---------------------------------------------------------------------

    def _finish(
        self, ctx: CommandContext, command_name: str, fenced: bool, notes: deadlines.Notes
    ) -> None:
        session, instance = ctx.session, ctx.instance
        seen = instance.version
        details = dict(ctx.audit_details)
        values: dict[str, Any] = {"updated_at": ctx.now}
        if ctx.loaded:
            workflow = ctx.workflow
            counter = ctx.counter
            assert counter is not None
            if ctx.run_steps and ctx.forced_status is None:
                budget = self._step_budget(instance)
                steps = run_engine_steps(workflow, budget, counter.account)
                ctx.failures.extend(steps.failures)
                values["steps_executed"] = (instance.steps_executed or 0) + steps.executed
                details["executed"] = steps.executed
                if steps.runaway:
                    ctx.add_incident(
                        "runaway",
                        f"stopped after executing {steps.executed} tasks in one command "
                        f"(limit {budget}); a loop without a wait state may be running away",
                    )
            counter.account(prune_history(workflow))
            counter.account(projections.all_tasks(workflow))
            outgoing = [
                event
                for event in workflow.get_events()
                if isinstance(event.event_definition, MessageEventDefinition)
            ]
            values["document"] = dump_workflow(workflow)
            values["variables"] = jsonable(projections.current_variables(workflow))
        # The status goes in the fenced UPDATE when it is known now; a second UPDATE follows
        # only when the projections below change it (an assignment that failed).
        expected = self._known_status(ctx, len(ctx.incidents) + len(ctx.failures))
        if expected is not None:
            values["status"] = expected
            if expected in ENDED and instance.ended_at is None:
                values["ended_at"] = ctx.now
        if fenced:
            version_fence.advance(
                session,
                Instance.__table__,
                instance.id,
                seen,
                values,
                fence=f"instance {instance.id} changed under {command_name}",
            )
            session.flush()
        else:
            values["version"] = seen + 1
            for key, value in values.items():
                setattr(instance, key, value)
            session.flush()
        if ctx.loaded:
            workflow = ctx.workflow
            assert ctx.counter is not None
            waits = ctx.waits
            projections.sync_element_states(session, instance.id, workflow, ctx.counter)
            problems = projections.sync_human_tasks(
                session,
                instance,
                workflow,
                self.services.script_engine.sandbox,
                ctx.now,
                self.services.tz,
                new_case=not fenced,  # only a start runs unfenced: its case is new
                read=session.info.pop(projections.CASE_TASKS, None),
            )
            for task, problem in problems:
                ctx.add_incident("assignment", problem, str(task.id), projections.element_id(task))
            if waits.timers or waits.messages:
                projections.sync_waits(
                    session, instance.id, workflow, self.services.script_engine.sandbox, ctx.now
                )
            if waits.jobs:
                sync_jobs(
                    session, instance, workflow, ctx.now, parked_at_load=ctx.counter.started_at_load
                )
            queue_messages(session, instance, outgoing, ctx.now)
            if outgoing:
                details["messages"] = [e.event_definition.name for e in outgoing]
            self._apply_clock_actions(ctx, notes)
            self._apply_case_notes(ctx, notes)
            for failure in ctx.failures:
                ctx.add_incident("failed", failure.message, failure.task_id, failure.element_id)
            self._write_incidents(ctx)
            summary = ctx.counter.summary()
            if summary:
                details["elements"] = summary
        status = self._known_status(ctx, len(ctx.incidents))
        if status is None:
            status = projections.derive_status(
                ctx.workflow, projections.open_incident_count(session, instance.id)
            )
        if ctx.failures:
            details["failures"] = [f.message for f in ctx.failures]
        if status != expected:
            status_values: dict[str, Any] = {"status": status}
            if status in ENDED and instance.ended_at is None:
                status_values["ended_at"] = ctx.now
            write_batch.write(
                session,
                *prepared.update_where(Instance.__table__, {"id": instance.id}, status_values),
            )
        set_committed_value(instance, "status", status)
        details["status"] = status
        write_batch.write(
            session,
            _AUDIT_INSERT,
            {
                "at": ctx.now,
                "actor": ctx.actor.username,
                "command": command_name,
                "instance_id": instance.id,
                "task_id": ctx.audit_task_id,
                "element_id": ctx.audit_element_id,
                "data": ctx.audit_data,
                "details": details,
            },
        )

    def _apply_clock_actions(self, ctx: CommandContext, notes: deadlines.Notes) -> None:
        if not notes.clock_actions:
            return
        calendar = self.services.calendars.get()
        applied = []
        for action in notes.clock_actions:
            try:
                row = clocks.apply(ctx.session, ctx.instance.id, action, calendar, ctx.now)
                applied.append(f"{action.action} {action.name}: due {row.due_date.isoformat()}")
            except clocks.ClockError as exc:
                ctx.add_incident("clock", f"sla_{action.action}({action.name!r}): {exc}")
        ctx.audit_details["clocks"] = applied

    def _apply_case_notes(self, ctx: CommandContext, notes: deadlines.Notes) -> None:
        session, instance = ctx.session, ctx.instance
        if notes.business_key and notes.business_key != instance.business_key:
            # queued with the command's other writes (write_batch), in this order: after the
            # new task and queue rows they rename, before the commit
            key = {"business_key": notes.business_key}
            write_batch.write(session, *prepared.update_where(_INSTANCES, {"id": instance.id}, key))
            write_batch.write(
                session, *prepared.update_where(_TASKS, {"instance_id": instance.id}, key)
            )
            write_batch.write(
                session, _RENAME_QUEUES, {"case_id": instance.id, "new_key": notes.business_key}
            )
            for held in list(session.identity_map.values()):
                if isinstance(held, HumanTask) and held.instance_id == instance.id:
                    set_committed_value(held, "business_key", notes.business_key)
            set_committed_value(instance, "business_key", notes.business_key)
            if ctx.task_row is not None:
                ctx.task_row.business_key = notes.business_key
            ctx.audit_details["business_key"] = notes.business_key
        if notes.statuses:
            write_batch.write(
                session,
                _ADD_CASE_STATUS,
                [
                    {
                        "instance_id": instance.id,
                        "code": code,
                        "name": STATUS_NAMES[code],
                        "note": note,
                        "actor": ctx.actor.username,
                        "at": ctx.now,
                    }
                    for code, note in notes.statuses
                ],
            )
        if notes.work_orders:
            work_orders.apply(
                session,
                instance,
                notes.work_orders,
                self.services.calendars.get(),
                ctx.now,
                notes.work_order_number,
            )
        if notes.case_items or notes.statuses:
            case_records.apply(
                session,
                instance.id,
                notes.case_items,
                [code for code, _ in notes.statuses],
                self.services.calendars.get(),
                ctx.now,
            )
        if notes.statuses:
            last = notes.statuses[-1][0]
            write_batch.write(
                session,
                *prepared.update_where(_INSTANCES, {"id": instance.id}, {"case_status": last}),
            )
            set_committed_value(instance, "case_status", last)
            ctx.audit_details["case_status"] = [STATUS_NAMES[c] for c, _ in notes.statuses]

    @staticmethod
    def _known_status(ctx: CommandContext, incidents_written: int) -> str | None:
        """The instance's status after the command, or None when it depends on incidents
        opened before this command (only an instance in error, suspended or ended can have
        any: a running or waiting one would be in error), which takes a query."""
        if ctx.forced_status:
            return ctx.forced_status
        if not ctx.loaded:
            return ctx.instance.status
        if ctx.status_at_load not in ("running", "waiting"):
            return None
        return projections.derive_status(ctx.workflow, incidents_written)

    def _step_budget(self, instance: Instance) -> int:
        lifetime_left = self.settings.max_steps_per_instance - (instance.steps_executed or 0)
        return max(0, min(self.settings.max_steps_per_command, lifetime_left))

    def _write_incidents(self, ctx: CommandContext) -> None:
        if not ctx.incidents:
            return
        for kind, task_id, element, message in ctx.incidents:
            ctx.session.add(
                Incident(
                    instance_id=ctx.instance.id,
                    task_id=task_id,
                    element_id=element,
                    kind=kind,
                    message=message,
                    created_at=ctx.now,
                )
            )
        ctx.session.flush()


# inline: no RETURNING of the new id, which nobody reads (and a write sent in a batch cannot
# return rows)
_AUDIT_INSERT = insert(AuditEvent.__table__).inline()

# A case's notes, queued with the command's other writes instead of a round trip each (the
# case number's rewrite was three; docs/performance.md, "Monday"); the plain updates are
# prepared.update_where's. Bound names differ from the columns', which an UPDATE would take
# for values to set.
_INSTANCES, _TASKS, _QUEUES = Instance.__table__, HumanTask.__table__, TaskCandidate.__table__
_RENAME_QUEUES = (
    update(_QUEUES)
    .where(
        _QUEUES.c.task_id.in_(
            select(_TASKS.c.id).where(_TASKS.c.instance_id == bindparam("case_id"))
        )
    )
    .values(business_key=bindparam("new_key"))
)
_ADD_CASE_STATUS = insert(CaseStatus.__table__).inline()  # no RETURNING of the new ids

# A case start needs the version's id and number only: the spec comes from the VersionCache.
# Loading the version row whole read its BPMN sources, spec and forms as JSON on every start
# (1.2 against 0.4 ms of CPU for the window service; docs/performance.md, "Monday").
_VERSION_OF = select(DefinitionVersion.id, DefinitionVersion.version).join(
    ProcessDefinition, ProcessDefinition.id == DefinitionVersion.definition_id
)
_LATEST_VERSION = _VERSION_OF.where(
    ProcessDefinition.key == bindparam("key"),
    DefinitionVersion.version == ProcessDefinition.latest_version,
)
_GIVEN_VERSION = _VERSION_OF.where(
    ProcessDefinition.key == bindparam("key"), DefinitionVersion.version == bindparam("v")
)


def _open_start_events(workflow: BpmnWorkflow) -> None:
    """Run only the workflow's own start machinery, so its start events wait and no start
    event (a none start beside the message start, say) has run yet."""
    while ready := [
        t
        for t in workflow.get_tasks(state=TaskState.READY)
        if t.workflow is workflow and t.task_spec.name in ("Start", "StartEventSplit")
    ]:
        for task in ready:
            task.run()


def _withdraw_none_starts(workflow: BpmnWorkflow) -> None:
    """A case started by a message starts there only, not also at a none start event."""
    for task in workflow.get_tasks(state=TaskState.READY):
        spec = task.task_spec
        if (
            task.workflow is workflow
            and isinstance(spec, StartEvent)
            and isinstance(spec.event_definition, NoneEventDefinition)
        ):
            task.cancel()


def _fire_start_timer(workflow: BpmnWorkflow, element_id: str, now: Any) -> None:
    """Make the timer start event `element_id` of a new case due now (the scheduler decided
    it is), before the engine first looks at it."""
    past = (now - timedelta(microseconds=1)).isoformat()
    for task in projections.all_tasks(workflow):
        spec = task.task_spec
        if (
            task._state & TaskState.NOT_FINISHED_MASK
            and getattr(spec, "bpmn_id", None) == element_id
        ):
            if isinstance(getattr(spec, "event_definition", None), CycleTimerEventDefinition):
                # each occurrence starts its own case: inside the case the cycle fires once
                task._set_internal_data(event_value={"cycles": 1, "next": past, "duration": 0})
            else:
                task._set_internal_data(event_value=past)
            return
    raise NotFound(f"the process has no timer start event {element_id!r}")


def _validate_start_form(loaded: LoadedVersion, variables: dict[str, Any]) -> None:
    """A process whose none start event has a form gets its start data checked against it."""
    for spec in loaded.spec.start.outputs:
        form_key = (getattr(spec, "extensions", None) or {}).get(START_FORM)
        if not form_key:
            continue
        schema = loaded.forms.get(form_name(form_key))
        errors = validate_submission(schema, variables)
        if errors:
            raise InvalidInput(
                f"the start data is invalid ({len(errors)} problem(s))",
                [{**e.to_dict(), "path": e.path.replace("$", "$.variables", 1)} for e in errors],
            )
