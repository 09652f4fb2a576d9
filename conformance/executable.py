"""Conformance harness for the executable-model corpus (../shared/conformance/executable).

Each model is deployed into a fresh govflow on its own SQLite file, started, and driven the way
the source engine's test drives it (conformance/scenarios.py), on a frozen clock that only moves
when the harness lets timers fire. Negative models must be refused at deploy. Nothing here
reaches into the engine's internals beyond the commands and projections its users have, except
signal broadcast, which govflow has no public entry for (see `Driver.signal`).

    .venv/bin/python -m conformance.executable [--only SUBSTRING] [--json PATH]
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import multiprocessing
import resource
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.util import BpmnEvent
from sqlalchemy import select
from sqlalchemy.orm import Session

from conformance import CONFORMANCE
from engine.accounts.actor import SYSTEM, Actor
from engine.app import Govflow
from engine.config import Settings
from engine.errors import GovflowError
from engine.jobs import store as job_store
from engine.jobs.execution import run_job
from engine.jobs.outbox import MESSAGE_TOPIC
from engine.runtime import clock, commands, messages, queries
from engine.runtime.deploy import FORM_SUFFIX
from engine.runtime.forms import form_name
from engine.runtime.job_results import ApplyJobResult
from engine.runtime.runner import CommandContext
from engine.runtime.scheduler import Scheduler
from engine.store.models import HumanTask, Instance, Job, Timer

REPO = Path(__file__).resolve().parent.parent
CORPUS = CONFORMANCE / "executable"
DEFAULT_JSON = REPO / "conformance" / "results" / "executable.json"
BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
EPOCH = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
"""The frozen clock starts on a Monday morning inside the seeded calendar years."""
MODEL_SECONDS = 20.0
MODEL_MEMORY = 2 * 2**30
"""Wall-clock budget for one model; the engine's own step limit bounds each command."""
MAX_ROUNDS = 60


class ScenarioFailed(AssertionError):
    """The model ran, but not the way its source test says it should."""


class OutOfTime(ScenarioFailed):
    pass


@dataclass
class Row:
    file: str
    origin: str
    license: str
    kind: str
    elements: list[str]
    namespaces: list[str]
    expected: str
    source_test: str

    @property
    def source(self) -> str:
        return self.file.split("/", 1)[0]


def read_manifest(corpus: Path = CORPUS) -> list[Row]:
    rows: list[Row] = []
    with (corpus / "MANIFEST.tsv").open(encoding="utf-8", newline="") as handle:
        for record in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            covered = record["elements_covered | extension_namespaces"]
            elements, _, namespaces = covered.partition("|")
            rows.append(
                Row(
                    file=record["file"],
                    origin=record["origin"],
                    license=record["license"],
                    kind=record["kind"],
                    elements=elements.split(),
                    namespaces=namespaces.replace("ext:", "").split(),
                    expected=record["expected_behaviour"],
                    source_test=record["source_test"],
                )
            )
    return rows


# --- the model files ------------------------------------------------------------------------


@dataclass
class ModelInfo:
    """What the harness needs to know about a BPMN file without the engine: names of
    elements (for expectations written with the source test's task names), the processes it
    defines and the processes it calls."""

    path: Path
    root: Any
    names: dict[str, str] = field(default_factory=dict)
    processes: list[str] = field(default_factory=list)
    called: set[str] = field(default_factory=set)
    none_starts: set[str] = field(default_factory=set)


def _local(tag: Any) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def read_model(path: Path) -> ModelInfo:
    root = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True))
    info = ModelInfo(path, root.getroot())
    for element in root.iter():
        ident = element.get("id") if isinstance(element.tag, str) else None
        if ident:
            info.names[ident] = " ".join((element.get("name") or "").split())
    for process in root.getroot().iter(f"{{{BPMN}}}process"):
        if process.get("isExecutable", "true") != "true":
            continue
        pid = process.get("id")
        info.processes.append(pid)
        for start in process.findall(f"{{{BPMN}}}startEvent"):
            if not any(_local(c.tag).endswith("EventDefinition") for c in start):
                info.none_starts.add(pid)
    for call in root.getroot().iter(f"{{{BPMN}}}callActivity"):
        if call.get("calledElement"):
            info.called.add(call.get("calledElement"))
    return info


def needed_files(path: Path, corpus_rows: list[Row], corpus: Path = CORPUS) -> list[Path]:
    """The file plus the corpus files in its folder that define the processes it calls
    (transitively)."""
    folder = path.parent
    siblings = [
        corpus / r.file
        for r in corpus_rows
        if (corpus / r.file).parent == folder
        and r.kind != "negative"
        and r.file.endswith((".bpmn", ".xml"))
    ]
    defined: dict[str, Path] = {}
    infos: dict[Path, ModelInfo] = {}
    for sibling in siblings:
        try:
            infos[sibling] = read_model(sibling)
        except etree.XMLSyntaxError:
            continue
        for pid in infos[sibling].processes:
            defined.setdefault(pid, sibling)
    wanted = [path]
    queue = [path]
    while queue:
        current = queue.pop()
        info = infos.get(current) or read_model(current)
        for called in sorted(info.called):
            target = defined.get(called)
            if target is not None and target not in wanted:
                wanted.append(target)
                queue.append(target)
    return wanted


CAMUNDA = "http://camunda.org/schema/1.0/bpmn"
HARNESS_GROUP = "conformance"
OPEN_FORM: dict[str, Any] = {"type": "object"}
"""The schema deployed for a form key a model names: accepts any data (the corpus has no
form definitions govflow reads)."""


FLOW_IDS = False
"""Diagnostic only (--add-missing-flow-ids): give id-less sequence flows an id, to measure
how many models an engine fix for them would unlock. Off for the real results."""


def adapt_assignment(source: Path, target: Path, forms: set[str]) -> int:
    """Copy a model, giving user tasks that name nobody a candidate group.

    govflow refuses a user task with no candidate group, user, assignee or department lane
    ("nobody can claim it"): a deployment policy, not BPMN semantics. The corpus models come
    from engines without that policy, so the harness adds `camunda:candidateGroups` and
    reports how many tasks it adapted; everything else in the file stays as it was. The
    form keys the model names are added to `forms` (the harness deploys an open schema for
    each, as govflow wants every referenced form to exist)."""
    tree = etree.parse(str(source), etree.XMLParser(resolve_entities=False, no_network=True))
    adapted = 0
    for task in tree.getroot().iter(f"{{{BPMN}}}userTask"):
        named = any(
            task.get(f"{{{CAMUNDA}}}{attr}") for attr in ("candidateGroups", "candidateUsers")
        ) or task.get(f"{{{CAMUNDA}}}assignee")
        if named or task.find(f"{{{BPMN}}}potentialOwner") is not None:
            continue
        task.set(f"{{{CAMUNDA}}}candidateGroups", HARNESS_GROUP)
        adapted += 1
    if FLOW_IDS:
        for number, flow in enumerate(tree.getroot().iter(f"{{{BPMN}}}sequenceFlow")):
            if not flow.get("id"):
                flow.set("id", f"harness_flow_{number}")
                adapted += 1
    for node in tree.getroot().iter(f"{{{BPMN}}}userTask", f"{{{BPMN}}}startEvent"):
        key = node.get(f"{{{CAMUNDA}}}formKey")
        if key and not key.strip().startswith("${"):
            forms.add(form_name(key))
    target.parent.mkdir(parents=True, exist_ok=True)
    if adapted:
        encoding = tree.docinfo.encoding or "UTF-8"
        tree.write(str(target), xml_declaration=True, encoding=encoding)
    else:
        shutil.copyfile(source, target)
    return adapted


# --- driving govflow ------------------------------------------------------------------------


@dataclass
class SignalInstance:
    """Broadcast a signal into one case. govflow has no signal API of its own (signals thrown
    inside a case are caught inside it); the harness delivers signals the source tests send
    from outside through the same runner command path every other change uses."""

    instance_id: str
    signal_name: str
    payload: dict[str, Any] = field(default_factory=dict)
    name = "signal"
    needs_workflow = True
    allowed_when_suspended = False
    allowed_when_ended = False

    def instance_id_for(self, session: Session) -> str:
        return self.instance_id

    def apply(self, ctx: CommandContext) -> int:
        event = BpmnEvent(SignalEventDefinition(self.signal_name), payload=dict(self.payload))
        caught = ctx.workflow.event_manager.catch(event, internal=False)
        if not caught:
            ctx.changed = False
        ctx.audit_data = {"signal": self.signal_name}
        return int(caught)


def worker_for(task: HumanTask) -> Actor:
    """An actor allowed to complete the task: its assignee if it has one, a member of its
    candidate groups otherwise (the source tests complete tasks as whoever they belong to)."""
    users = list(task.candidate_users or ())
    username = task.assignee or (users[0] if users else "conformance")
    return Actor(username, SYSTEM.roles, frozenset(task.candidate_groups or ()))


def _norm(text: str | None) -> str:
    return " ".join((text or "").split()).lower()


class Driver:
    """One model's run: a govflow on a temporary database, the frozen clock, and the
    instances started so far. Scenarios call these methods and its `expect_*` checks."""

    def __init__(self, app: Govflow, frozen: clock.FrozenClock, info: ModelInfo) -> None:
        self.app = app
        self.clock = frozen
        self.info = info
        self.names = dict(info.names)
        self.deployed: list[str] = []
        self.instances: list[str] = []
        self.deadline = time.monotonic() + MODEL_SECONDS
        self.log: list[str] = []
        self.timers_fired = 0

    # --- basics ---------------------------------------------------------------------------

    @property
    def instance(self) -> str:
        if not self.instances:
            raise ScenarioFailed("no instance was started")
        return self.instances[0]

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise OutOfTime(f"model took longer than {MODEL_SECONDS:g} s")

    def name_of(self, element_id: str | None) -> str:
        return self.names.get(element_id or "", "") or (element_id or "")

    def matches(self, element_id: str | None, name: str | None, ref: str) -> bool:
        wanted = _norm(ref)
        return wanted in (_norm(element_id), _norm(name), _norm(self.names.get(element_id or "")))

    def start(
        self, key: str | None = None, business_key: str | None = None, **variables: Any
    ) -> str:
        key = key or self.default_start()
        instance = self.app.start(key, SYSTEM, business_key, variables)
        self.instances.append(instance.id)
        self.log.append(f"start {key}")
        self.settle()
        return instance.id

    def startable(self) -> list[str]:
        """Top-level processes of the model with a none start event: what the source engine
        starts (all pools of a collaboration). Processes that start on a timer, message or
        signal only are left to those."""
        return [
            p
            for p in self.info.processes
            if p in self.deployed and p not in self.info.called and p in self.info.none_starts
        ]

    def default_start(self) -> str:
        candidates = self.startable()
        if not candidates:
            raise ScenarioFailed(f"no process with a none start event; deployed: {self.deployed}")
        return candidates[0]

    def detail(self, instance_id: str | None = None) -> dict[str, Any]:
        with self.app.database.read_session() as session:
            return queries.instance_detail(
                session, instance_id or self.instance, self.app.services.calendars.get()
            )

    def all_instances(self) -> list[Instance]:
        with self.app.database.read_session() as session:
            return list(session.scalars(select(Instance).order_by(Instance.started_at)))

    def open_tasks(self, instance_id: str | None = None) -> list[HumanTask]:
        with self.app.database.read_session() as session:
            query = select(HumanTask).where(HumanTask.state == "open")
            if instance_id is not None:
                query = query.where(HumanTask.instance_id == instance_id)
            return list(session.scalars(query.order_by(HumanTask.created_at)))

    def task_names(self, instance_id: str | None = None) -> list[str]:
        return sorted(self.name_of(t.element_id) for t in self.open_tasks(instance_id))

    # --- actions --------------------------------------------------------------------------

    def complete(self, ref: str, **data: Any) -> None:
        """Complete the open user task whose element id or name is `ref` (any instance)."""
        self.check_time()
        for task in self.open_tasks():
            if self.matches(task.element_id, task.name, ref):
                self.app.runner.execute(commands.CompleteTask(task.id, data), worker_for(task))
                self.log.append(f"complete {ref}")
                self.settle()
                return
        raise ScenarioFailed(f"no open task {ref!r}; open: {self.task_names()}")

    def message(
        self, name: str, payload: dict[str, Any] | None = None, key: str | None = None
    ) -> str:
        self.check_time()
        delivery = messages.deliver(self.app.runner, SYSTEM, name, payload or {}, key)
        if delivery.started:
            self.instances.append(delivery.instance_id)
        self.log.append(f"message {name}")
        self.settle()
        return delivery.instance_id

    def signal(self, name: str, payload: dict[str, Any] | None = None) -> int:
        """Broadcast a signal to every live case; returns how many caught it."""
        self.check_time()
        caught = 0
        for row in self.all_instances():
            if row.status in ("completed", "cancelled"):
                continue
            caught += int(
                self.app.runner.execute(SignalInstance(row.id, name, payload or {}), SYSTEM) > 0
            )
        self.log.append(f"signal {name} -> {caught}")
        self.settle()
        return caught

    def start_by_signal(self, key: str, name: str) -> str:
        instance = self.app.runner.start(
            key, SYSTEM, message=BpmnEvent(SignalEventDefinition(name), payload={})
        )
        self.instances.append(instance.id)
        self.settle()
        return instance.id

    def advance(self, **delta: float) -> int:
        """Move the clock and let due timers fire; returns how many fired."""
        self.clock.advance(timedelta(**delta))
        return self.tick()

    def tick(self) -> int:
        self.check_time()
        fired = 0
        for _ in range(20):
            count = Scheduler(self.app).tick()
            self.adopt_new_instances()
            if not count:
                break
            fired += count
        self.timers_fired += fired
        self.settle()
        return fired

    def next_timer(self) -> datetime | None:
        with self.app.database.read_session() as session:
            due = session.scalars(
                select(Timer.due_at).where(Timer.state == "waiting").order_by(Timer.due_at)
            ).first()
        if due is None:
            return None
        return due if due.tzinfo else due.replace(tzinfo=UTC)

    def fire_next_timer(self) -> bool:
        due = self.next_timer()
        if due is None:
            return False
        if due >= self.clock.current:
            # timers fire strictly after their due time
            self.clock.set(due + timedelta(seconds=1))
        self.log.append(f"timer at {due.isoformat()}")
        return self.tick() > 0

    def adopt_new_instances(self) -> None:
        for row in self.all_instances():
            if row.id not in self.instances:
                self.instances.append(row.id)

    def settle(self) -> int:
        """Run jobs until none is due: deliver thrown messages, complete external service
        tasks with empty output (no handler code is part of these models)."""
        moved = 0
        for _ in range(20):
            leases, _ = job_store.claim_due(self.app.database, clock.now(), 50)
            if not leases:
                break
            for lease in leases:
                with self.app.database.read_session() as session:
                    job = session.get(Job, lease.job_id)
                    topic = job.topic if job else None
                if topic == MESSAGE_TOPIC:
                    run_job(self.app, lease.job_id, lease.token)
                else:
                    self.app.runner.execute(
                        ApplyJobResult(lease.job_id, lease.token, "ok", output={}), SYSTEM
                    )
                moved += 1
        self.adopt_new_instances()
        return moved

    def drive(
        self,
        data: dict[str, dict[str, Any]] | None = None,
        timers: bool = True,
        rounds: int = MAX_ROUNDS,
    ) -> None:
        """The generic driver: complete every open user task (with the data given for its id
        or name, else empty), fire due timers by moving the clock, until every case has ended
        or nothing can move."""
        data = data or {}
        for _ in range(rounds):
            self.check_time()
            tasks = self.open_tasks()
            if tasks:
                task = tasks[0]
                payload = next(
                    (v for k, v in data.items() if self.matches(task.element_id, task.name, k)),
                    {},
                )
                self.app.runner.execute(
                    commands.CompleteTask(task.id, dict(payload)), worker_for(task)
                )
                self.log.append(f"complete {self.name_of(task.element_id)}")
                self.settle()
                continue
            if self.settle():
                continue
            live = [r for r in self.all_instances() if r.status not in ("completed", "cancelled")]
            if not live or not timers:
                return
            if not self.fire_next_timer():
                return

    # --- expectations ---------------------------------------------------------------------

    def element_counts(self, instance_id: str | None = None) -> dict[str, dict[str, int]]:
        ids = [instance_id] if instance_id else self.instances
        totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for ident in ids:
            for element in self.detail(ident)["elements"]:
                for state in ("active", "completed", "failed", "cancelled"):
                    totals[element["element_id"]][state] += element[state]
        return totals

    def _count(self, ref: str, state: str, instance_id: str | None = None) -> int:
        return sum(
            counts[state]
            for element, counts in self.element_counts(instance_id).items()
            if self.matches(element, None, ref)
        )

    def expect_status(self, *wanted: str, instance_id: str | None = None) -> None:
        status = self.detail(instance_id)["status"]
        if status not in wanted:
            raise ScenarioFailed(f"status {status}, expected {'/'.join(wanted)}; {self.summary()}")

    def expect_tasks(self, *refs: str, instance_id: str | None = None) -> None:
        """The open user tasks are exactly these (as a multiset, by id or name)."""
        tasks = self.open_tasks(instance_id)
        left = list(tasks)
        for ref in refs:
            hit = next((t for t in left if self.matches(t.element_id, t.name, ref)), None)
            if hit is None:
                raise ScenarioFailed(f"expected open task {ref!r}; open: {self.task_names()}")
            left.remove(hit)
        if left:
            extra = [self.name_of(t.element_id) for t in left]
            raise ScenarioFailed(f"unexpected open tasks {extra}; expected {list(refs)}")

    def expect_completed(self, *refs: str, times: int | None = None) -> None:
        for ref in refs:
            count = self._count(ref, "completed")
            if count == 0 or (times is not None and count != times):
                raise ScenarioFailed(
                    f"{ref!r} completed {count} time(s), expected {times or 'at least 1'}"
                )

    def expect_not_completed(self, *refs: str) -> None:
        for ref in refs:
            if self._count(ref, "completed"):
                raise ScenarioFailed(f"{ref!r} completed but should not have")

    def expect_cancelled(self, *refs: str) -> None:
        for ref in refs:
            if not self._count(ref, "cancelled"):
                raise ScenarioFailed(f"{ref!r} was not cancelled")

    def expect_active(self, *refs: str) -> None:
        for ref in refs:
            if not self._count(ref, "active"):
                raise ScenarioFailed(f"{ref!r} is not active; {self.summary()}")

    def expect_vars(self, instance_id: str | None = None, **wanted: Any) -> None:
        variables = self.detail(instance_id)["variables"]
        for key, value in wanted.items():
            if variables.get(key, "<missing>") != value:
                raise ScenarioFailed(
                    f"variable {key}={variables.get(key, '<missing>')!r}, expected {value!r}"
                )

    def expect_incident(self, contains: str = "", instance_id: str | None = None) -> str:
        incidents = [i for i in self.detail(instance_id)["incidents"] if not i["resolved_at"]]
        hits = [i for i in incidents if contains.lower() in i["message"].lower()]
        if not hits:
            raise ScenarioFailed(
                f"expected an incident mentioning {contains!r}; got "
                f"{[i['message'] for i in incidents]}"
            )
        return hits[0]["message"]

    def expect_no_incidents(self) -> None:
        for ident in self.instances:
            open_ = [i for i in self.detail(ident)["incidents"] if not i["resolved_at"]]
            if open_:
                raise ScenarioFailed(f"incident: {open_[0]['message'][:300]}")

    def expect_timers(self, count: int) -> None:
        with self.app.database.read_session() as session:
            waiting = list(session.scalars(select(Timer).where(Timer.state == "waiting")))
        if len(waiting) != count:
            raise ScenarioFailed(
                f"{len(waiting)} waiting timer(s), expected {count}: "
                f"{[t.element_id for t in waiting]}"
            )

    def expect_instances(self, count: int, key: str | None = None) -> None:
        rows = [r for r in self.all_instances() if key is None or r.definition_key == key]
        if len(rows) != count:
            raise ScenarioFailed(f"{len(rows)} instance(s) of {key or 'any'}, expected {count}")

    def summary(self) -> str:
        parts = []
        for ident in self.instances[:4]:
            detail = self.detail(ident)
            incidents = [i["message"][:160] for i in detail["incidents"] if not i["resolved_at"]]
            parts.append(
                f"{detail['definition_key']}={detail['status']} open={self.task_names(ident)}"
                + (f" incidents={incidents}" if incidents else "")
            )
        return "; ".join(parts)


# --- one model ------------------------------------------------------------------------------


@dataclass
class Result:
    file: str
    source: str
    kind: str
    elements: list[str]
    outcome: str
    reason: str
    seconds: float = 0.0
    processes: list[str] = field(default_factory=list)
    adapted_tasks: int = 0
    stub_forms: list[str] = field(default_factory=list)
    cause: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "source": self.source,
            "kind": self.kind,
            "elements": self.elements,
            "outcome": self.outcome,
            "reason": self.reason,
            "seconds": round(self.seconds, 3),
            "processes": self.processes,
            "adapted_tasks": self.adapted_tasks,
            "stub_forms": self.stub_forms,
            "cause": self.cause,
        }


class Template:
    """One initialised database copied for every model, so each gets a fresh govflow
    without paying for schema creation and calendar seeding each time."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.path = workdir / "template.db"
        app = self._app(self.path)
        # no department roster: lanes and candidate groups of foreign models name none
        app.init(roster=workdir / "no-roster.tsv")
        app.dispose()

    @staticmethod
    def _app(path: Path) -> Govflow:
        settings = replace(
            Settings(),
            database_url=f"sqlite:///{path}",
            forms_dir=None,
            max_steps_per_command=2_000,
            max_steps_per_instance=20_000,
        )
        return Govflow(settings)

    def fresh(self, name: str) -> Govflow:
        target = self.workdir / f"{name}.db"
        target.unlink(missing_ok=True)
        shutil.copyfile(self.path, target)
        return self._app(target)


def _problems_text(exc: GovflowError) -> str:
    details = getattr(exc, "details", None)
    items = details if isinstance(details, list) else (details or {}).get("problems", [])
    if isinstance(details, dict) and not items:
        items = details.get("details", []) if isinstance(details.get("details"), list) else []
    lines = []
    for item in items or []:
        if isinstance(item, dict):
            where = Path(str(item.get("file", ""))).name
            lines.append(f"{where}:{item.get('line')}: {item.get('message')}")
    return "; ".join(lines) or exc.message


def _one_line(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run_model(row: Row, rows: list[Row], template: Template, index: int) -> Result:
    from conformance.scenarios import DEFAULT, SCENARIOS

    began = time.monotonic()
    result = Result(row.file, row.source, row.kind, row.elements, "fail", "")
    scenario = SCENARIOS.get(row.file, DEFAULT)
    if scenario.out_of_scope and row.kind != "negative":
        result.outcome, result.reason = "out_of_scope", scenario.out_of_scope
        return result
    path = CORPUS / row.file
    files_used: list[Path] = [path]
    app = template.fresh(f"m{index}")
    frozen = clock.FrozenClock(EPOCH)
    try:
        with clock.use_clock(frozen):
            files = [CORPUS / f for f in scenario.files] if scenario.files else None
            files = files or needed_files(path, rows)
            files += [CORPUS / f for f in scenario.extra_files]
            files_used = files
            copies = []
            forms: set[str] = set()
            workdir = template.workdir / f"m{index}"
            for original in files:
                copy = workdir / original.relative_to(CORPUS)
                result.adapted_tasks += adapt_assignment(original, copy, forms)
                copies.append(copy)
            for form in sorted(forms):
                schema = workdir / "forms" / f"{form}{FORM_SUFFIX}"
                schema.parent.mkdir(parents=True, exist_ok=True)
                schema.write_text(json.dumps(OPEN_FORM), encoding="utf-8")
                copies.append(schema)
            result.stub_forms = sorted(forms)
            try:
                deployed = app.deploy_paths(copies, SYSTEM)
            except GovflowError as exc:
                text = _problems_text(exc)
                if row.kind == "negative":
                    result.outcome, result.reason = "pass", f"refused: {_one_line(text)}"
                else:
                    result.reason = f"deploy refused: {_one_line(text)}"
                return result
            result.processes = [p["key"] for p in deployed.to_dict()["processes"]]
            if row.kind == "negative":
                result.reason = "deployed, but the model is invalid and must be refused"
                return result
            driver = Driver(app, frozen, read_model(path))
            for extra in files[1:]:
                driver.names.update(read_model(extra).names)
            driver.deployed = result.processes
            scenario.run(driver)
            result.outcome = "pass"
            result.reason = scenario.describe or "ran to the expected end state"
    except ScenarioFailed as exc:
        result.reason = _one_line(str(exc))
    except GovflowError as exc:
        result.reason = _one_line(f"{type(exc).__name__}: {exc.message}")
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        at = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
        result.reason = _one_line(f"{type(exc).__name__}: {exc}{at}")
    finally:
        app.dispose()
        result.seconds = time.monotonic() - began
        result.cause = diagnose(result, files_used)
    return result


def _child(row: Row, rows: list[Row], template: Template, index: int, pipe: Any) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MODEL_MEMORY, MODEL_MEMORY))
    try:
        pipe.send(run_model(row, rows, template, index))
    except MemoryError:
        pipe.send(None)
    finally:
        pipe.close()


def run_isolated(row: Row, rows: list[Row], template: Template, index: int) -> Result:
    """Run one model in a forked child with a memory cap and a hard time limit: a model that
    sends the engine into a runaway loop is reported as such instead of taking the run down."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(row, rows, template, index, send))
    began = time.monotonic()
    child.start()
    send.close()
    result = None
    if receive.poll(MODEL_SECONDS * 3):
        try:
            result = receive.recv()
        except EOFError:
            result = None
    child.join(timeout=5)
    if child.is_alive():
        child.kill()
        child.join()
    if result is None:
        result = Result(row.file, row.source, row.kind, row.elements, "fail", "")
        result.reason = (
            f"runaway: no result within {MODEL_SECONDS * 3:.0f} s or "
            f"{MODEL_MEMORY // 2**30} GiB (exit code {child.exitcode})"
        )
        result.cause = "engine: runaway execution (time or memory)"
        result.seconds = time.monotonic() - began
    return result


# --- the whole corpus -----------------------------------------------------------------------


def run_all(only: str | None = None, quiet: bool = False) -> list[Result]:
    rows = read_manifest()
    selected = [r for r in rows if r.kind in ("executable", "negative")]
    if only:
        selected = [r for r in selected if only in r.file]
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="govflow-conformance-") as tmp:
        template = Template(Path(tmp))
        for index, row in enumerate(selected):
            result = run_isolated(row, rows, template, index)
            results.append(result)
            (Path(tmp) / f"m{index}.db").unlink(missing_ok=True)
            shutil.rmtree(Path(tmp) / f"m{index}", ignore_errors=True)
            if not quiet:
                print(f"{result.outcome:12} {result.seconds:5.1f}s {row.file}", flush=True)
                if result.outcome != "pass":
                    print(f"{'':19}{result.reason[:300]}", flush=True)
    return results


def families(results: list[Result]) -> dict[str, dict[str, int]]:
    table: dict[str, Counter[str]] = defaultdict(Counter)
    for result in results:
        if result.kind != "executable":
            continue
        for element in result.elements:
            table[element][result.outcome] += 1
            table[element]["models"] += 1
    return {
        name: {k: counts.get(k, 0) for k in ("models", "pass", "fail", "out_of_scope")}
        for name, counts in sorted(table.items())
    }


def report(results: list[Result]) -> dict[str, Any]:
    overall: dict[str, Counter[str]] = defaultdict(Counter)
    for result in results:
        overall[result.kind][result.outcome] += 1
        overall[f"{result.kind}:{result.source}"][result.outcome] += 1
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "corpus": str(CORPUS),
        "counts": {k: dict(v) for k, v in sorted(overall.items())},
        "families": families(results),
        "models": [r.to_dict() for r in results],
    }


CAUSES: list[tuple[str, str]] = [
    ("is not available in scripts", "lint: condition names a variable the sandbox blocks"),
    ("which is not defined", "lint: error/escalation reference to an undefined definition"),
    ("has no end event", "lint: (sub)process without an end event"),
    ("sits inside a loop", "lint: parallel gateway inside a loop"),
    (
        "has no condition and is not the gateway",
        "model relies on SpiffWorkflow's test parser: an unconditioned gateway flow is taken "
        "when `choice` equals its name",
    ),
    ("condition of sequence flow", "lint: condition is not a Python expression"),
    (
        "is a Quartz cron",
        "Quartz cron on a process's timer start event (the scheduler reads ISO 8601 only)",
    ),
    ("cannot be evaluated", "timer expression not understood (Quartz cron / expression)"),
    ("must specify a cardinality or a collection", "multi-instance over camunda:collection"),
    ("Unsupported Catch Event", "compensation events unsupported by the parser"),
    ("Duplicate task spec name: None", "element without an id"),
    (
        "data object could not be set",
        "the source test writes data into a pass-through task by hand",
    ),
    (
        "Expected an output item",
        "the source test writes the multi-instance output item into a pass-through task by hand",
    ),
    (
        "does not start on message",
        "message start beside a none start: the runner runs the none start before the message",
    ),
    ("no case is waiting for message", "message cannot be delivered (no subscription)"),
    ("is not waiting for message", "message not caught (correlation / payload)"),
    (
        "deployed, but the model is invalid",
        "negative model refused only by plain SpiffWorkflow (govflow runs a business rule task "
        "without a decision as a pass-through, by design)",
    ),
    ("Error evaluating expression '${", "Camunda expression (${...}) not evaluated"),
    ("Error evaluating expression", "condition fails on data the model reads"),
    ("camunda:", "Camunda extension not supported"),
    ("not JSON serializable", "engine crash serialising a multi-instance task"),
]


def diagnose(result: Result, files: list[Path]) -> str:
    """A short cause for a failure, for the summary: structural problems of the model that
    govflow does not handle first (they explain every later symptom), then message patterns."""
    if result.outcome != "fail":
        return ""
    texts = []
    for path in files:
        try:
            texts.append(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
    source = "\n".join(texts)
    if "calledDecisionId" in source or "decisionRef" in source:
        return "engine: DMN decisions are not deployed (business rule task with a decision)"
    if "adHocSubProcess" in source:
        return "engine: ad-hoc subprocess has no activation API"
    if "compensateEventDefinition" in source:
        return "compensation events unsupported"
    if "no case is waiting for message" in result.reason and 'triggeredByEvent="true"' in source:
        return "message start of an event subprocess has no subscription (projections)"
    for needle, cause in CAUSES:
        if needle in result.reason:
            return cause
    return "behaviour differs from the source test"


def print_summary(data: dict[str, Any]) -> None:
    print("\nCounts (kind[:source] -> outcome):")
    for key, counts in data["counts"].items():
        print(f"  {key:40} " + "  ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    print("\nElement families (executable models: pass/models, out_of_scope):")
    for name, counts in data["families"].items():
        print(
            f"  {name:28} {counts['pass']:3}/{counts['models']:<3} "
            f"out_of_scope={counts['out_of_scope']}"
        )
    failed = [m for m in data["models"] if m["outcome"] == "fail"]
    causes = Counter(m["cause"] for m in failed)
    if causes:
        print("\nFailure causes (count, example):")
        for cause, count in causes.most_common():
            example = next(m["file"] for m in failed if m["cause"] == cause)
            print(f"  {count:3}  {cause}\n       e.g. {example}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="run only the models whose path contains this")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results")
    parser.add_argument("--quiet", action="store_true", help="no line per model")
    parser.add_argument(
        "--add-missing-flow-ids",
        action="store_true",
        help="diagnostic: give id-less sequence flows ids (what an engine fix would unlock)",
    )
    args = parser.parse_args(argv)
    global FLOW_IDS
    FLOW_IDS = args.add_missing_flow_ids
    if not (CORPUS / "MANIFEST.tsv").is_file():
        print(f"corpus not found at {CORPUS}", file=sys.stderr)
        return 2
    logging.disable(logging.WARNING)
    results = run_all(args.only, args.quiet)
    data = report(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print_summary(data)
    print(f"\nresults written to {args.json}")
    return 0


def iter_rows(kind: str) -> Iterator[Row]:
    yield from (r for r in read_manifest() if r.kind == kind)


if __name__ == "__main__":
    # run the package module, so scenarios and harness share one set of classes
    from conformance.executable import main as package_main

    raise SystemExit(package_main())
