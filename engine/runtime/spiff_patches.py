"""Guards for SpiffWorkflow 3.2.0 traps, applied once when `engine` is imported.

Each guard has a regression test in tests/test_spiff_guards.py:

- The task iterator stops descending at depth 1000, so after ~330 loop iterations a workflow
  looks finished and `is_completed()` says True with work left. The depth limit is lifted and
  the recursive ancestry walks (`is_descendant_of`, `find_ancestor`, the parallel gateway's
  `remove_ancestor`) are made iterative so deep histories cannot exhaust the Python stack.
- A join merges whole branch data, dropping one branch's change to a key another branch left
  alone; it now merges three-way against the data at the split (engine.runtime.data_merge).
- Timers read `datetime.now()` directly; they now read engine.runtime.clock so tests and ops
  tooling can move time without sleeping.
- Multi-instance instances know nothing of their position; each now gets Camunda's
  `loopCounter` (0, 1, 2 ...) in its data, so `camunda:assignee="kermit_${loopCounter}"` gives
  each instance its own assignee. The variable is local to the instance, as in Camunda: it is
  not merged back into the process data, and neither is the instance's input item (without
  which a sequential multi-instance over a collection failed at its second instance).
  (`nrOfInstances`, `nrOfActiveInstances` and
  `nrOfCompletedInstances` are given to expressions by engine.runtime.scripting.)
- Call activities pass all data in and out; with Camunda's `camunda:in` / `camunda:out`
  mappings they now pass only what is mapped (`source`, `sourceExpression`, `target`,
  `variables="all"`), as Camunda does. Without mappings nothing changes.
- `spiffworkflow:payloadExpression` / `variableName` on a signal, error or escalation: a throw
  sends the expression's value and a catch stores it in the variable, as in SpiffWorkflow's
  own dialect (the parser copies them into the events' extensions).
- An error or escalation is caught by every matching boundary event, the catch-all ones too;
  a catch-all now leaves it to a sibling that names the code.
- An error end event nothing catches used to end the case as if all were well; it now fails
  the element, so the case shows an incident (as Camunda 8 does, and Camunda 7 with
  enableExceptionsAfterUnhandledBpmnError).
- A caught escalation or error gives its code to `camunda:escalationCodeVariable` /
  `camunda:errorCodeVariable` when the catching event names one.
- A thrown message carries the whole task data; with `camunda:expression` on its definition
  it now carries that expression's value: `{resultVariable: value}`, or the value itself if
  it is a dict, or `{name: value}` when the expression is a variable name (any other value,
  having no variable to land in, leaves the payload as the task data).
- `spiffworkflow:preScript` / `postScript` (kept in the spec's extensions by the parser) run
  when the element becomes ready and when it completes, as in SpiffWorkflow's own dialect.
- Flowable's `terminateAll="true"` on a terminate end event ends the whole case, not only the
  (event) subprocess it is in.
- One engine step ran every subprocess active at its start; when an earlier one's boundary
  event cancelled a later one (an error in one instance of a parallel multi-instance
  subprocess), the step failed looking up the cancelled parent ("task not found") and the
  runner retried it for ever. Subprocesses whose parent is gone are now skipped.
- Event subprocesses ignore `isInterrupting`: an interrupting one now cancels the rest of its
  scope when its start event fires, as BPMN says; and a scope whose flow has ended no longer
  waits for ever on an event subprocess that was never triggered (a timer start still
  pending): that event subprocess is withdrawn and the scope completes.
"""

from __future__ import annotations

import inspect
import re
import sys
from copy import deepcopy
from datetime import datetime, tzinfo
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowDataException, WorkflowTaskException
from SpiffWorkflow.bpmn.specs.bpmn_task_spec import BpmnTaskSpec
from SpiffWorkflow.bpmn.specs.control import _EndJoin
from SpiffWorkflow.bpmn.specs.event_definitions import timer as timer_module
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import (
    CodeEventDefinition,
    ErrorEventDefinition,
    ItemAwareEventDefinition,
)
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.end_event import EndEvent
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import MultiInstanceTask
from SpiffWorkflow.bpmn.specs.mixins.parallel_gateway import ParallelGateway
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import CallActivity, SubWorkflowTask
from SpiffWorkflow.bpmn.specs.mixins.unstructured_join import UnstructuredJoin
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.bpmn.util.task import BpmnTaskIterator
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException, TaskNotFoundException
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskIterator, TaskState

from engine.bpmn.compat import POST_SCRIPT, PRE_SCRIPT
from engine.bpmn.parser import (
    CALL_IN,
    CALL_OUT,
    CODE_VARIABLE,
    EVENT_SUBPROCESS_START,
    MESSAGE_EXPRESSION,
    MESSAGE_RESULT,
    PAYLOAD_EXPRESSION,
    PAYLOAD_VARIABLE,
    TERMINATE_ALL,
)
from engine.runtime import clock
from engine.runtime.data_merge import three_way_merge

LOOP_COUNTER = "loopCounter"

UNLIMITED_DEPTH = sys.maxsize
_applied = False


def _lift_depth_default(cls: type) -> None:
    init = cls.__init__
    params = list(inspect.signature(init).parameters.values())
    with_defaults = [p for p in params if p.default is not inspect.Parameter.empty]
    defaults = list(init.__defaults__ or ())
    for index, param in enumerate(with_defaults[: len(defaults)]):
        if param.name == "max_depth":
            defaults[index] = UNLIMITED_DEPTH
    init.__defaults__ = tuple(defaults)


def _is_descendant_of(self: Task, task: Task) -> bool:
    current = self.parent
    while current is not None:
        if current is task:
            return True
        current = current.parent
    return False


def _find_ancestor(self: Task, spec_name: str) -> Task | None:
    current = self.parent
    while current is not None:
        if current.task_spec.name == spec_name:
            return current
        current = current.parent
    return None


def _ancestry(task: Task) -> list[Task]:
    chain = []
    current: Task | None = task
    while current is not None:
        chain.append(current)
        current = current.parent
    return chain


def deepest_common_ancestor(tasks: list[Task]) -> Task | None:
    """The nearest task that every given task descends from (or is)."""
    if not tasks:
        return None
    chain = _ancestry(tasks[0])
    for other in tasks[1:]:
        members = {id(t): index for index, t in enumerate(chain)}
        current: Task | None = other
        while current is not None and id(current) not in members:
            current = current.parent
        if current is None:
            return None
        chain = chain[members[id(current)] :]
    return chain[0]


def _merging_join_run_hook(self: UnstructuredJoin, my_task: Task) -> bool:
    workflow = my_task.workflow
    cutoff = 0.0
    previous = _find_ancestor(my_task, self.name)
    if previous is not None:
        cutoff = previous.last_state_change
    arrived = [
        task
        for task in workflow.tasks.values()
        if task.task_spec == self
        and task is not my_task
        and task.has_state(TaskState.FINISHED_MASK)
        and task.last_state_change >= cutoff
        and not _is_descendant_of(my_task, task)
    ]
    arrived.sort(key=lambda t: t.last_state_change)
    inputs = [t.parent for t in arrived if t.parent is not None]
    if my_task.parent is not None:
        inputs.append(my_task.parent)
    base_task = deepest_common_ancestor(inputs)
    base = base_task.data if base_task is not None else {}
    my_task.data = three_way_merge(base, [t.data for t in inputs])
    for task in arrived:
        if task.has_state(TaskState.COMPLETED):
            task._drop_children(force=True)
    return True


def _parallel_threshold(self: ParallelGateway, my_task: Task) -> bool:
    tasks = my_task.workflow.get_tasks(spec_name=self.name)
    waiting_inputs = set(self.inputs)

    def remove_ancestor(task: Task | None) -> None:
        while task is not None:
            if task.task_spec in waiting_inputs:
                waiting_inputs.remove(task.task_spec)
                return
            task = task.parent

    for task in tasks:
        if _is_descendant_of(task, my_task):
            remove_ancestor(task)
        elif _is_descendant_of(my_task, task):
            continue
        elif task.parent.state == TaskState.COMPLETED and task.parent.task_spec in waiting_inputs:
            waiting_inputs.remove(task.parent.task_spec)
    return len(waiting_inputs) == 0


def _mi_create_child(
    self: MultiInstanceTask, my_task: Task, item: Any, key_or_index: Any = None
) -> None:
    """SpiffWorkflow's `create_child`, giving the instance its `loopCounter` first."""
    task_spec = my_task.workflow.spec.task_specs[self.task_spec]
    if not task_spec.completed_event.is_connected(self.merge_child):
        task_spec.completed_event.connect(self.merge_child)
    counter = sum(1 for _ in self._instances(my_task))
    child = my_task._add_child(task_spec, TaskState.WAITING)
    child.triggered = True
    if self.input_item is not None and self.input_item.exists(my_task):
        raise WorkflowDataException(
            f"Multiinstance input item {self.input_item.bpmn_id} already exists.", my_task
        )
    if self.output_item is not None and self.output_item.exists(my_task):
        raise WorkflowDataException(
            f"Multiinstance output item {self.output_item.bpmn_id} already exists.", my_task
        )
    if self.input_item is not None:
        self.input_item.set(child, deepcopy(item))
    if key_or_index is not None:
        child.internal_data["key_or_index"] = key_or_index
    else:
        child.internal_data["item"] = item
    child.internal_data[LOOP_COUNTER] = counter
    child.data[LOOP_COUNTER] = counter
    child.task_spec._update(child)


_original_mi_merge_child = MultiInstanceTask.merge_child


def _mi_merge_child(self: MultiInstanceTask, workflow: Any, child: Task) -> None:
    """Merge an instance back without its local variables: `loopCounter`, and the input
    item when the instance's data is merged whole (no output item): SpiffWorkflow would
    leave the item in the activity's data, and the next sequential instance would fail with
    "input item already exists"."""
    whole = self.data_output is None or self.output_item is None
    item = self.input_item
    if whole and item is not None and child.parent and item.bpmn_id not in child.parent.data:
        child.data.pop(item.bpmn_id, None)
    counter = child.internal_data.get(LOOP_COUNTER)
    if counter is not None and child.data.get(LOOP_COUNTER) == counter:
        parent_value = child.parent.data.get(LOOP_COUNTER, _MISSING) if child.parent else _MISSING
        if parent_value is _MISSING:
            child.data.pop(LOOP_COUNTER, None)
        else:
            child.data[LOOP_COUNTER] = parent_value
    _original_mi_merge_child(self, workflow, child)


_MISSING = object()


def _event_start_kind(task: Task) -> str | None:
    extensions = getattr(task.task_spec, "extensions", None) or {}
    return extensions.get(EVENT_SUBPROCESS_START)


def _untriggered_event_subprocess(task: Task) -> bool:
    """An event subprocess in the tree whose start event has not fired (a timer start)."""
    if not isinstance(task.task_spec, SubWorkflowTask):
        return False
    subworkflow = task.workflow.top_workflow.subprocesses.get(task.id)
    if subworkflow is None:
        return False
    starts = [t for t in subworkflow.tasks.values() if _event_start_kind(t)]
    return bool(starts) and not any(t.has_state(TaskState.FINISHED_MASK) for t in starts)


_original_start_run_hook = StartEvent._run_hook


def _start_run_hook(self: StartEvent, my_task: Task) -> Any:
    """An interrupting event subprocess's start event cancels the rest of its scope."""
    result = _original_start_run_hook(self, my_task)
    if _event_start_kind(my_task) == "interrupting":
        workflow = my_task.workflow
        parent_id = getattr(workflow, "parent_task_id", None)
        owner = workflow.top_workflow.get_task_from_id(parent_id) if parent_id else None
        if owner is not None:
            keep = {id(t) for t in _ancestry(owner)}
            for task in list(owner.workflow.tasks.values()):
                if id(task) in keep or _is_descendant_of(task, owner):
                    continue
                if not task.has_state(TaskState.FINISHED_MASK):
                    task.cancel()
    return result


def _end_join_threshold(self: _EndJoin, my_task: Task) -> bool:
    """SpiffWorkflow's end join, which no longer waits on untriggered event subprocesses; when
    the rest of the scope is done they are withdrawn."""
    pending: list[Task] = []
    for task in TaskIterator(
        my_task.workflow.task_tree, state=TaskState.NOT_FINISHED_MASK, end_at_spec=self.name
    ):
        if task == my_task or any(_is_descendant_of(task, p) for p in pending):
            continue
        if _untriggered_event_subprocess(task):
            pending.append(task)
            continue
        return False
    for task in pending:
        task.cancel()
    return True


def _mapped(
    mappings: list[dict[str, str]], source: dict[str, Any], evaluate: Any, base: dict[str, Any]
) -> dict[str, Any]:
    result = dict(base)
    for mapping in mappings:
        if mapping.get("variables") == "all":
            result.update(deepcopy(source))
        target = mapping.get("target")
        if not target:
            continue
        if "sourceExpression" in mapping:
            result[target] = evaluate(mapping["sourceExpression"])
        elif "source" in mapping:
            result[target] = deepcopy(source.get(mapping["source"]))
    return result


_original_call_copy_data = CallActivity.copy_data
_original_call_update_data = CallActivity.update_data


def _call_copy_data(self: CallActivity, my_task: Task, subworkflow: Any) -> None:
    mappings = (getattr(self, "extensions", None) or {}).get(CALL_IN)
    if not mappings:
        _original_call_copy_data(self, my_task, subworkflow)
        return
    start = subworkflow.get_next_task(
        subworkflow.task_tree, skip_subprocesses=True, spec_name="Start"
    )
    engine = my_task.workflow.script_engine

    def evaluate(expression: str) -> Any:
        return engine.evaluate(my_task, expression)

    start.set_data(**_mapped(mappings, my_task.data, evaluate, {}))


def _call_update_data(self: CallActivity, my_task: Task, subworkflow: Any) -> None:
    mappings = (getattr(self, "extensions", None) or {}).get(CALL_OUT)
    if not mappings:
        _original_call_update_data(self, my_task, subworkflow)
        return
    last = subworkflow.last_task
    engine = my_task.workflow.script_engine

    def evaluate(expression: str) -> Any:
        return engine.evaluate(last, expression)

    my_task.data = _mapped(mappings, last.data, evaluate, my_task.data)


_CAUGHT_CODE = "govflow:caughtCode"
_original_code_catch = CodeEventDefinition.catch
_original_item_update_task_data = ItemAwareEventDefinition.update_task_data
_original_item_throw = ItemAwareEventDefinition.throw
_original_code_throw = CodeEventDefinition.throw


def _extensions(my_task: Task) -> dict[str, Any]:
    return getattr(my_task.task_spec, "extensions", None) or {}


def _code_catch(self: CodeEventDefinition, my_task: Task, event: Any = None) -> None:
    if event is not None and CODE_VARIABLE in _extensions(my_task):
        my_task.internal_data[_CAUGHT_CODE] = getattr(event.event_definition, "code", None)
    _original_code_catch(self, my_task, event)


_original_code_catches = CodeEventDefinition.catches


def _code_catches(self: CodeEventDefinition, my_task: Task, event: Any) -> bool:
    """A catch-all error/escalation event (no code) leaves the event to a sibling on the same
    activity that names its code, as BPMN and Camunda give the specific one precedence."""
    if not _original_code_catches(self, my_task, event):
        return False
    code = getattr(event.event_definition, "code", None)
    if self.code is not None or code is None or my_task.parent is None:
        return True
    for sibling in my_task.parent.children:
        other = getattr(sibling.task_spec, "event_definition", None)
        if (
            sibling is not my_task
            and sibling.state == TaskState.WAITING
            and type(other) is type(self)
            and getattr(other, "code", None) == code
        ):
            return False
    return True


def _item_update_task_data(self: ItemAwareEventDefinition, my_task: Task) -> None:
    """The caught payload goes into `spiffworkflow:variableName` when the event's definition
    names one (else its keys are merged, as before); a caught code into the Camunda code
    variable."""
    variable = _extensions(my_task).get(PAYLOAD_VARIABLE)
    payload = my_task.internal_data.get(self.name)
    if variable and payload is not None:
        my_task.data[variable] = payload
    else:
        _original_item_update_task_data(self, my_task)
    code_variable = _extensions(my_task).get(CODE_VARIABLE)
    if code_variable and _CAUGHT_CODE in my_task.internal_data:
        my_task.data[code_variable] = my_task.internal_data.pop(_CAUGHT_CODE)


def _item_throw(self: ItemAwareEventDefinition, my_task: Task) -> None:
    """A signal, error or escalation sends `spiffworkflow:payloadExpression`'s value when its
    definition names one, else the task data as before. An error nothing catches fails the
    element (an incident), as in Camunda 8, instead of ending the case as if all were well."""
    top = my_task.workflow.top_workflow
    pending = len(top.bpmn_events)
    expression = _extensions(my_task).get(PAYLOAD_EXPRESSION)
    if expression is None:
        if isinstance(self, CodeEventDefinition):
            _original_code_throw(self, my_task)
        else:
            _original_item_throw(self, my_task)
    else:
        payload = deepcopy(my_task.workflow.script_engine.evaluate(my_task, expression))
        target = my_task.workflow if isinstance(self, CodeEventDefinition) else None
        top.catch(BpmnEvent(self, payload=payload, target=target))
    if isinstance(self, ErrorEventDefinition):
        uncaught = [e for e in top.bpmn_events[pending:] if e.event_definition is self]
        if uncaught:
            top.bpmn_events = top.bpmn_events[:pending] + [
                e for e in top.bpmn_events[pending:] if e.event_definition is not self
            ]
            code = f" (code {self.code!r})" if self.code is not None else ""
            raise WorkflowTaskException(
                f"error {self.name!r}{code} is not caught by any boundary event or event "
                "subprocess",
                task=my_task,
            )


_original_message_throw = MessageEventDefinition.throw
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _message_throw(self: MessageEventDefinition, my_task: Task) -> None:
    """A message whose throwing event names `camunda:expression` carries its value."""
    extensions = getattr(my_task.task_spec, "extensions", None) or {}
    expression = extensions.get(MESSAGE_EXPRESSION)
    if expression is None or type(self) is not MessageEventDefinition:
        _original_message_throw(self, my_task)
        return
    value = my_task.workflow.script_engine.evaluate(my_task, expression)
    result = extensions.get(MESSAGE_RESULT)
    if result:
        payload = {result: deepcopy(value)}
    elif isinstance(value, dict):
        payload = deepcopy(value)
    elif _NAME.match(expression.strip()):
        payload = {expression.strip(): deepcopy(value)}
    else:  # a value with no variable to land in: the task data, as without an expression
        _original_message_throw(self, my_task)
        return
    correlations = self.get_correlations(my_task, payload)
    my_task.workflow.correlations.update(correlations)
    event = BpmnEvent(self, payload=payload, correlations=correlations)
    my_task.workflow.top_workflow.catch(event)


_original_spec_update_hook = BpmnTaskSpec._update_hook
_original_spec_complete_hook = BpmnTaskSpec._on_complete_hook


def _run_extension_script(spec: BpmnTaskSpec, my_task: Task, key: str, label: str) -> None:
    script = (getattr(spec, "extensions", None) or {}).get(key)
    if not script:
        return
    try:
        my_task.workflow.script_engine.execute(my_task, script)
    except SpiffWorkflowException as exc:
        exc.add_note(f"Error occurred in the {label}")
        raise


def _spec_update_hook(self: BpmnTaskSpec, my_task: Task) -> Any:
    result = _original_spec_update_hook(self, my_task)
    _run_extension_script(self, my_task, PRE_SCRIPT, "pre-script")
    return result


def _spec_complete_hook(self: BpmnTaskSpec, my_task: Task) -> None:
    _run_extension_script(self, my_task, POST_SCRIPT, "post-script")
    _original_spec_complete_hook(self, my_task)


_original_end_complete_hook = EndEvent._on_complete_hook


def _end_complete_hook(self: EndEvent, my_task: Task) -> None:
    _original_end_complete_hook(self, my_task)
    if not (getattr(self, "extensions", None) or {}).get(TERMINATE_ALL):
        return
    top = my_task.workflow.top_workflow
    if top is my_task.workflow:
        return  # already the whole case
    for task in top.get_tasks(state=TaskState.NOT_FINISHED_MASK):
        task.cancel()
    top._mark_complete(my_task)


def _do_engine_steps(
    self: BpmnWorkflow, will_complete_task: Any = None, did_complete_task: Any = None
) -> bool:
    """SpiffWorkflow 3.2.0's `_do_engine_steps`, skipping subprocesses cancelled meanwhile."""

    def update_workflow(wf: Any) -> int:
        count = 0
        for task in wf.get_tasks(state=TaskState.READY):
            if not task.task_spec.manual:
                if will_complete_task is not None:
                    will_complete_task(task)
                task.run()
                count += 1
                if did_complete_task is not None:
                    did_complete_task(task)
        return count

    active = self.get_active_subprocesses()
    for subprocess in sorted(active, key=lambda v: v.depth, reverse=True):
        if (
            subprocess.completed
            or self.subprocesses.get(subprocess.parent_task_id) is not subprocess
        ):
            continue
        if subprocess.parent_task_id is not None:
            try:
                self.get_task_from_id(subprocess.parent_task_id)
            except TaskNotFoundException:
                continue
        count = None
        while count is None or count > 0:
            count = update_workflow(subprocess)
        if subprocess.parent_task_id is not None:
            try:
                task = self.get_task_from_id(subprocess.parent_task_id)
            except TaskNotFoundException:
                continue  # cancelled by what the subprocess just did
            task.task_spec._update(task)
    count = update_workflow(self)
    return count > 0 or len(self.get_active_subprocesses()) > len(active)


class _ClockDatetime(datetime):
    """`datetime` whose `now()` reads engine.runtime.clock."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _ClockDatetime:  # type: ignore[override]
        moment = clock.now()
        if tz is None:
            local = moment.astimezone()
            return cls.fromtimestamp(local.timestamp())
        return cls.fromtimestamp(moment.timestamp(), tz)


def apply() -> None:
    """Install every guard; safe to call more than once."""
    global _applied
    if _applied:
        return
    _lift_depth_default(TaskIterator)
    _lift_depth_default(BpmnTaskIterator)
    Task.is_descendant_of = _is_descendant_of  # type: ignore[method-assign]
    Task.find_ancestor = _find_ancestor  # type: ignore[method-assign]
    UnstructuredJoin._run_hook = _merging_join_run_hook  # type: ignore[method-assign]
    ParallelGateway._check_threshold_unstructured = _parallel_threshold  # type: ignore[method-assign]
    timer_module.datetime = _ClockDatetime  # type: ignore[attr-defined,misc]
    MultiInstanceTask.create_child = _mi_create_child  # type: ignore[method-assign]
    MultiInstanceTask.merge_child = _mi_merge_child  # type: ignore[method-assign]
    StartEvent._run_hook = _start_run_hook  # type: ignore[method-assign]
    CallActivity.copy_data = _call_copy_data  # type: ignore[method-assign]
    CodeEventDefinition.catch = _code_catch  # type: ignore[method-assign]
    CodeEventDefinition.catches = _code_catches  # type: ignore[method-assign]
    MessageEventDefinition.throw = _message_throw  # type: ignore[method-assign]
    BpmnTaskSpec._update_hook = _spec_update_hook  # type: ignore[method-assign]
    EndEvent._on_complete_hook = _end_complete_hook  # type: ignore[method-assign]
    BpmnWorkflow._do_engine_steps = _do_engine_steps  # type: ignore[method-assign]
    BpmnTaskSpec._on_complete_hook = _spec_complete_hook  # type: ignore[method-assign]
    ItemAwareEventDefinition.update_task_data = _item_update_task_data  # type: ignore[method-assign]
    ItemAwareEventDefinition.throw = _item_throw  # type: ignore[method-assign]
    CodeEventDefinition.throw = _item_throw  # type: ignore[method-assign]
    CallActivity.update_data = _call_update_data  # type: ignore[method-assign]
    _EndJoin._check_threshold_unstructured = _end_join_threshold  # type: ignore[method-assign]
    _applied = True


def is_applied() -> bool:
    return _applied


def describe() -> dict[str, Any]:
    """What is patched, for `govflow doctor`-style diagnostics and tests."""
    return {
        "iterator_max_depth": TaskIterator.__init__.__defaults__,
        "join_merge": UnstructuredJoin._run_hook is _merging_join_run_hook,
    }
