"""Per-model driving scripts and expectations for the executable corpus.

Keys are MANIFEST paths. A model without an entry runs the generic driver: start the process,
complete every open user task with empty data, fire due timers, until the case ends; it passes
when every case completed without incidents. Each specific scenario checks what the model's
`expected_behaviour` line says (tasks open at each step, path taken, variables, end state).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from conformance.executable import Driver, ScenarioFailed
from engine.errors import GovflowError


@dataclass
class Scenario:
    """How to run one model. `script` replaces the generic run; `data` feeds the generic
    driver (user task id or name -> completion data)."""

    script: Callable[[Driver], None] | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    start: str | None = None
    files: list[str] = field(default_factory=list)
    extra_files: list[str] = field(default_factory=list)
    out_of_scope: str | None = None
    describe: str = ""

    def run(self, d: Driver) -> None:
        if self.script is not None:
            self.script(d)
            return
        keys = [self.start] if self.start else d.startable()
        for key in keys:
            d.start(key, **self.variables)
        d.drive(self.data)
        if not d.instances:
            raise ScenarioFailed("no case was started (and no timer started one)")
        for instance_id in d.instances:
            d.expect_status("completed", instance_id=instance_id)
        d.expect_no_incidents()


DEFAULT = Scenario()
SCENARIOS: dict[str, Scenario] = {}


# --- helpers --------------------------------------------------------------------------------


def raise_failed(d: Driver, message: str) -> None:
    raise ScenarioFailed(f"{message}; {d.summary()}")


def finish(d: Driver, data: dict[str, dict[str, Any]] | None = None) -> None:
    """Drive to the end; every case completed, no incidents."""
    d.drive(data)
    for instance_id in d.instances:
        d.expect_status("completed", instance_id=instance_id)
    d.expect_no_incidents()


def add(path: str, describe: str = "", **kwargs: Any) -> Callable[[Callable[[Driver], None]], Any]:
    """Register a scenario script for one MANIFEST path."""

    def register(script: Callable[[Driver], None]) -> Callable[[Driver], None]:
        SCENARIOS[path] = Scenario(script=script, describe=describe, **kwargs)
        return script

    return register


def out_of_scope(path: str, reason: str) -> None:
    SCENARIOS[path] = Scenario(out_of_scope=reason)


SPIFF = "spiffworkflow/bpmn/data/"
TW = SPIFF + "Test-Workflows/"
SPIFF_CAMUNDA = "spiffworkflow/camunda/data/"
CAM = "camunda-bpm-platform/"
FLOW = "flowable-engine/"
EX = "camunda-bpm-examples/"


# --- SpiffWorkflow: parallel gateways -------------------------------------------------------


@add(
    TW + "Parallel-One-Path-Ends.bpmn20.xml", "'Choice 1'=No: Done after Parallel Task, no Yes Task"
)
def _parallel_one_path_ends(d: Driver) -> None:
    d.start(choice="No")
    finish(d)
    d.expect_completed("Parallel Task", "Choice 1", "Done")
    d.expect_not_completed("Yes Task")


@add(
    TW + "Parallel-Then-Exclusive.bpmn20.xml",
    "'Choice 1'=Yes: Yes Task and Parallel Task, Done once",
)
def _parallel_then_exclusive(d: Driver) -> None:
    d.start(choice="Yes")
    finish(d)
    d.expect_completed("Parallel Task", "Yes Task")
    d.expect_completed("Done", times=1)


@add(TW + "Parallel-Through-Same-Task.bpmn20.xml", "two tokens through 'Repeated Task'")
def _parallel_through_same_task(d: Driver) -> None:
    # the join here is an inclusive gateway: it merges the two tokens, so 'Done' runs once
    d.start(choice="Yes")
    finish(d)
    d.expect_completed("Repeated Task", times=2)
    d.expect_completed("Yes Task", "Done")


@add(TW + "Parallel-Many-Threads-At-Same-Point.bpmn20.xml", "4 threads, 'Done' once per thread")
def _parallel_many_threads(d: Driver) -> None:
    d.start()
    finish(d)
    d.expect_completed("1", "2", "3", "4")
    d.expect_completed("Done", times=4)


@add(TW + "Parallel-Multiple-Splits-And-Joins.bpmn20.xml", "nested splits/joins, Done once")
def _parallel_multiple_splits(d: Driver) -> None:
    d.start()
    finish(d)
    d.expect_completed("1", "1A", "1B", "1 Done", "2", "2A", "2B", "2 Done")
    d.expect_completed("Done", times=1)


@add(TW + "Parallel.camunda.bpmn20.xml", "3 parallel user tasks, Done only after all; data merged")
def _parallel_camunda(d: Driver) -> None:
    d.start()
    d.expect_tasks("First Task")
    d.complete("First Task")
    d.expect_tasks("Parallel Task A", "Parallel Task B", "Parallel Task C")
    d.complete("Parallel Task B", taskB=2)
    d.complete("Parallel Task A", taskA=1)
    d.expect_tasks("Parallel Task C")
    d.complete("Parallel Task C", taskC=3)
    d.expect_tasks("Last Task")
    finish(d)
    d.expect_vars(taskA=1, taskB=2, taskC=3)


@add(SPIFF + "ParallelOrder.bpmn", "4 parallel tasks Task 1..Task 4 all run")
def _parallel_order(d: Driver) -> None:
    d.start()
    finish(d)
    d.expect_completed("Task 1", "Task 2", "Task 3", "Task 4")


# --- SpiffWorkflow: events ------------------------------------------------------------------


@add(TW + "Messages.bpmn20.xml", "waits for 'Test Message'; wrong message ignored")
def _messages(d: Driver) -> None:
    d.start()
    d.expect_status("waiting")
    try:
        d.message("Wrong Message")
        raise_failed(d, "'Wrong Message' was accepted")
    except GovflowError:
        pass
    d.expect_status("waiting")
    d.message("Test Message")
    finish(d)
    d.expect_completed("Test Message")


@add(TW + "Timer-Intermediate.bpmn20.xml", "timer waits until due_time, then completes")
def _timer_intermediate(d: Driver) -> None:
    due = d.clock.current.replace(microsecond=0) + timedelta(hours=2)
    d.start(due_time=due.isoformat())
    d.expect_status("waiting")
    d.advance(hours=1)
    d.expect_status("waiting")
    d.advance(hours=1, seconds=1)
    d.expect_status("completed")
    d.expect_no_incidents()


@add(SPIFF + "timer.bpmn", "duration timer: one wait, continues after it")
def _timer(d: Driver) -> None:
    d.start()
    d.expect_status("waiting")
    d.expect_timers(1)
    d.advance(seconds=1)
    d.expect_status("completed")


@add(SPIFF + "timer-date-start.bpmn", "date timer: waits, completes after the date")
def _timer_date(d: Driver) -> None:
    d.start()
    d.expect_status("waiting")
    d.expect_timers(1)
    finish(d)


@add(SPIFF + "boundary.bpmn", "timer boundary cancels the looping subprocess")
def _boundary(d: Driver) -> None:
    d.start()
    d.complete("ReadyTogo", initialstuff="x")
    for _ in range(3):
        d.complete("Are we there yet?", answer="No")
    d.advance(seconds=1)
    finish(d)
    d.expect_cancelled("Are we there yet?")
    d.expect_completed("Stop Car")


@add(SPIFF + "boundary_timer_on_task.bpmn", "timer boundary fires, timer_called True")
def _boundary_timer_on_task(d: Driver) -> None:
    d.start()
    d.expect_vars(timer_called=False)
    d.advance(seconds=1)
    d.expect_completed("update timer_called")
    d.expect_tasks("Say Anything")
    finish(d)
    d.expect_vars(timer_called=True)


@add(SPIFF + "timer-non-interrupt-boundary.bpmn", "non-interrupting timer: 2 tasks; final data")
def _ni_timer_boundary(d: Driver) -> None:
    d.start()
    d.expect_tasks("Work Done?")
    d.advance(seconds=1)
    d.expect_tasks("Work Done?", "Delay Reason")
    d.complete("Delay Reason", delay_reason="Just Because")
    d.complete("Work Done?", work_done="Yes")
    finish(d)
    d.expect_vars(work_done="Yes", delay_reason="Just Because")


out_of_scope(
    SPIFF + "timer-cycle.bpmn",
    "script calls custom_function(), a host function the Spiff test injects into its engine",
)


@add(SPIFF + "event-gateway.bpmn", "message_1 wins the event gateway; others cancelled")
def _event_gateway(d: Driver) -> None:
    d.start()
    d.message("message_1")
    finish(d)
    d.expect_completed("message_1_event")
    d.expect_not_completed("message_2_event", "timer_event")


@add(SPIFF + "event-subprocess.bpmn", "signal event subprocess runs; completes")
def _event_subprocess(d: Driver) -> None:
    # the source test sets v1/v2 on 'set data' from outside; here they are start data
    d.start(v1=True, v2=False)
    finish(d)
    d.expect_completed("Event_0rfrdxr", "task")
    d.expect_vars(v1=True, v2=False)


@add(SPIFF + "conditional_event.bpmn", "conditional catch waits; boundary interrupts")
def _conditional_event(d: Driver) -> None:
    d.start("intermediate")
    d.start("boundary")
    finish(d)
    d.expect_completed("event_1", "event_2")
    d.expect_cancelled("task_d")


@add(SPIFF + "exclusive_gateway_no_default.bpmn", "no true condition, no default -> error")
def _no_default(d: Driver) -> None:
    d.start(x=1)
    d.expect_status("error")
    d.expect_incident("Gateway_CheckValue")
    d.expect_not_completed("Activity_Greater", "Activity_Less")


@add(SPIFF + "inclusive_gateway.bpmn", "only default -> v=0,u=-1,w=-1; u,w>0 -> both branches")
def _inclusive(d: Driver) -> None:
    first = d.start()
    d.complete("Set Data", v=-1, u=-1, w=-1)
    d.expect_status("completed", instance_id=first)
    d.expect_vars(instance_id=first, v=0, u=-1, w=-1)
    second = d.start()
    d.complete("Set Data", v=0, u=-1, w=-1)
    d.expect_status("error", instance_id=second)
    d.expect_incident("second", instance_id=second)
    third = d.start()
    d.complete("Set Data", v=0, u=1, w=1)
    d.expect_status("completed", instance_id=third)
    d.expect_vars(instance_id=third, v=0, u=1, w=1)
    d.expect_completed("u_plus_v", "w_plus_v")


@add(SPIFF + "lanes.bpmn", "lanes A/B/C path with no clarification")
def _lanes(d: Driver) -> None:
    d.start()
    d.expect_tasks("Request Feature")
    d.complete("Request Feature", NewBPMNFeautre="x")
    d.expect_tasks("Clarifying Questions?")
    d.complete("Clarifying Questions?", NeedClarification="No")
    finish(d)
    d.expect_completed("Implement Feature", "SubProcessTask")
    d.expect_not_completed("Clarify Request")


@add(SPIFF + "multiple-start.bpmn", "message_1 starts the case; any_task runs")
def _multiple_start(d: Driver) -> None:
    d.message("message_1")
    finish(d)
    d.expect_completed("any_task")


@add(SPIFF + "multiple-start-parallel.bpmn", "needs message_1 AND message_2")
def _multiple_start_parallel(d: Driver) -> None:
    d.message("message_1")
    d.expect_not_completed("any_task")
    d.message("message_2")
    finish(d)
    d.expect_completed("any_task")


@add(SPIFF + "start_event_split.bpmn", "one of two message starts; any_task runs")
def _start_event_split(d: Driver) -> None:
    d.message("message_1")
    finish(d)
    d.expect_completed("start_1", "any_task")
    d.expect_not_completed("start_2")


@add(SPIFF + "return_to_event.bpmn", "loop back to the message catch; it waits again")
def _return_to_event(d: Driver) -> None:
    d.start(repeat=True)
    d.message("basic_message", {"repeat": True})
    d.expect_status("waiting")
    d.expect_completed("Event_10ncvxn", times=1)
    d.message("basic_message", {"repeat": False})
    finish(d)
    d.expect_completed("Event_10ncvxn", times=2)


@add(SPIFF + "multiple-throw.bpmn", "multiple throw caught in the other pool")
def _multiple_throw(d: Driver) -> None:
    d.start("respond")
    d.start("initiate")
    finish(d)


@add(SPIFF + "uncaught_escalation.bpmn", "uncaught escalation: still completes")
def _uncaught_escalation(d: Driver) -> None:
    d.start()
    finish(d)


@add(SPIFF + "collaboration.bpmn", "send task + catch with correlation lover_name='Peggy'")
def _collaboration(d: Driver) -> None:
    d.start("process_buddy", lover_name="Peggy")
    # the response's correlation property is read from its from_name field
    d.message("Love Letter Response", {"from_name": "Peggy"})
    finish(d)
    d.expect_completed("ActivitySendLetter", "EventReceiveLetter")


@add(SPIFF + "standard_loop.bpmn", "standard loop runs up to loopMaximum=3")
def _standard_loop(d: Driver) -> None:
    d.start(done=False)
    finish(d)
    d.expect_completed("any_task")


@add(SPIFF + "transaction.bpmn", "transaction: normal, cancel, error with/without code")
def _transaction(d: Driver) -> None:
    normal = d.start()
    d.complete("Get Data", value="1")
    d.complete("Get Quantity", quantity=2)
    d.expect_status("completed", instance_id=normal)
    d.expect_completed("Activity_Print_Data")
    cancel = d.start()
    d.complete("Get Data", value="")
    d.expect_status("completed", instance_id=cancel)
    d.expect_vars(instance_id=cancel, reason="Cancel")
    coded = d.start()
    d.complete("Get Data", value="1")
    d.complete("Get Quantity", quantity=-1)
    d.expect_vars(instance_id=coded, reason="Error 1")
    uncoded = d.start()
    d.complete("Get Data", value="1")
    d.complete("Get Quantity", quantity=0)
    d.expect_vars(instance_id=uncoded, reason="Error None")
    d.expect_no_incidents()


@add(SPIFF_CAMUNDA + "MessageBoundary.bpmn", "interrupt message ends the subprocess; completes")
def _message_boundary(d: Driver) -> None:
    d.start("Process_0srqcj1")
    d.start("Process_1kjyavs")
    d.complete("Interrupt Work?", interrupt_task="Yes")
    finish(d)
    d.expect_completed("Event_InterruptBoundary")


@add(SPIFF_CAMUNDA + "noninterrupting-MessageBoundary.bpmn", "tardy message; 'Youre late!'")
def _ni_message_boundary(d: Driver) -> None:
    d.start("Process_1k0py56")
    d.start("Process_1kjyavs")
    d.complete("Is work Late?", flag_task="Yes")
    d.complete("Why was the work Late?", work_late_reason="busy")
    d.complete("Do Work", work_done="Yes")
    finish(d, {"What work was completed?": {"work_completed": "all"}})
    d.expect_completed("Activity_DoWork", "Activity_WorkCompleted", "Event_InterruptBoundary")


@add(SPIFF_CAMUNDA + "message_test.bpmn", "approval request/response between pools")
def _message_test(d: Driver) -> None:
    d.start("Process_05r9nfx")
    d.complete("Enter Plan", plan_details="plan")
    d.complete("Approved?", approved="Yes")
    finish(d, {"Enable Plan": {"Done": "Yes"}})
    d.expect_completed("Activity_EnablePlan")


@add(SPIFF_CAMUNDA + "call_activity_with_message_parent.bpmn", "called process talks to parent")
@add(
    SPIFF_CAMUNDA + "call_activity_with_message.bpmn",
    "run through its parent process",
    files=[
        SPIFF_CAMUNDA + "call_activity_with_message_parent.bpmn",
        SPIFF_CAMUNDA + "call_activity_with_message.bpmn",
    ],
)
def _call_activity_with_message(d: Driver) -> None:
    d.start("Process_0vpmpb9")
    d.complete("Enter Plan", plan_details="plan")
    d.complete("Approved?", approved="Yes")
    finish(d, {"Enable Plan": {"Done": "Yes"}})
    d.expect_completed("Activity_EnablePlan")


@add(SPIFF_CAMUNDA + "subWorkflowComplex.bpmn", "subprocess user tasks; FieldA.. data")
def _sub_workflow_complex(d: Driver) -> None:
    d.start()
    data = {
        "FormA": {"FieldA": "a"},
        "Form A1": {"FieldA1": "a1"},
        "Form A2": {"FieldA2": "a2"},
        "FormB": {"FieldB": "b"},
    }
    finish(d, data)
    d.expect_vars(FieldA="a", FieldA1="a1", FieldA2="a2", FieldB="b")


@add(SPIFF_CAMUNDA + "parallel_multiinstance_cardinality.bpmn", "cardinality from input_data")
def _camunda_mi_cardinality(d: Driver) -> None:
    d.start(input_data=3)
    finish(d)
    d.expect_completed("any_task")


@add("spiffworkflow/spiff/data/error_event_payload.bpmn", "error payload caught by boundary")
def _error_payload(d: Driver) -> None:
    d.start(error=True, payload="ERROR!")
    finish(d)
    d.expect_completed("catch")
    d.expect_vars(result="ERROR!")


# --- Camunda 7: gateways --------------------------------------------------------------------

GW = CAM + "gateway/"


@add(GW + "ExclusiveGatewayTest.testDivergingExclusiveGateway.bpmn20.xml", "input 1/2/3 -> Task n")
def _xor_diverging(d: Driver) -> None:
    for value in (1, 2, 3):
        case = d.start(input=value)
        d.expect_tasks(f"Task {value}", instance_id=case)
    d.drive()
    for case in d.instances:
        d.expect_status("completed", instance_id=case)


@add(GW + "ExclusiveGatewayTest.testDefaultSequenceFlow.bpmn20.xml", "input 1 / default")
def _xor_default(d: Driver) -> None:
    one = d.start(input=1)
    d.expect_tasks("Input is one", instance_id=one)
    five = d.start(input=5)
    d.expect_tasks("Default input", instance_id=five)
    finish(d)


@add(GW + "ExclusiveGatewayTest.testNoSequenceFlowSelected.bpmn20.xml", "input=4 -> refused")
def _xor_none(d: Driver) -> None:
    d.start(input=4)
    d.expect_status("error")
    d.expect_incident("")
    d.expect_tasks()


@add(GW + "InclusiveGatewayTest.testDivergingInclusiveGateway.bpmn20.xml", "1->3, 2->2, 3->1")
def _or_diverging(d: Driver) -> None:
    for value, count in ((1, 3), (2, 2), (3, 1)):
        case = d.start(input=value)
        open_ = d.open_tasks(case)
        if len(open_) != count:
            raise_failed(d, f"input={value}: {len(open_)} tasks, expected {count}")
    finish(d)


@add(GW + "InclusiveGatewayTest.testMergingInclusiveGateway.bpmn20.xml", "OR-join: 1 task")
def _or_merging(d: Driver) -> None:
    d.start(input=2)
    d.expect_tasks("my task")
    finish(d)


@add(
    GW + "InclusiveGatewayTest.testDefaultSequenceFlow.bpmn20.xml",
    "1 -> two, 3 -> one, 5 -> default",
)
def _or_default(d: Driver) -> None:
    one = d.start(input=1)
    d.expect_tasks("Input is one", "Input is three or one", instance_id=one)
    three = d.start(input=3)
    d.expect_tasks("Input is three or one", instance_id=three)
    five = d.start(input=5)
    d.expect_tasks("Default input", instance_id=five)
    finish(d)


@add(GW + "InclusiveGatewayTest.testParentActivationOnNonJoiningEnd.bpmn20.xml", "2 then 2 tasks")
def _or_parent_activation(d: Driver) -> None:
    d.start()
    d.expect_tasks("First check asset1", "First check asset2")
    d.complete("First check asset1")
    d.complete("First check asset2")
    d.expect_tasks("Second check asset1", "Second check asset2")
    d.complete("Second check asset1")
    d.expect_tasks("Second check asset2")
    d.expect_status("running")
    d.complete("Second check asset2")
    d.expect_status("completed")


@add(GW + "ParallelGatewayTest.testForkJoin.bpmn20.xml", "fork, join, Archive Order")
def _fork_join(d: Driver) -> None:
    d.start()
    d.expect_tasks("Receive Payment", "Ship Order")
    d.complete("Receive Payment")
    d.expect_tasks("Ship Order")
    d.complete("Ship Order")
    d.expect_tasks("Archive Order")
    finish(d)


@add(GW + "ParallelGatewayTest.testNestedForkJoin.bpmn20.xml", "Task 0, A/B1/B2, C")
def _nested_fork_join(d: Driver) -> None:
    d.start()
    d.expect_tasks("Task 0")
    d.complete("Task 0")
    d.expect_tasks("Task A", "Task B")
    d.complete("Task B")
    d.expect_tasks("Task A", "Task B1", "Task B2")
    d.complete("Task A")
    d.complete("Task B1")
    d.expect_tasks("Task B2")
    d.complete("Task B2")
    d.expect_tasks("Task C")
    finish(d)


@add(GW + "ParallelGatewayTest.testUnstructuredConcurrencyTwoJoins.bpmn20.xml", "ends at once")
def _unstructured(d: Driver) -> None:
    d.start()
    d.expect_status("completed")
    d.expect_completed("task1", "task2", "task3", "task4", "task5", "task6")


@add(GW + "EventBasedGatewayTest.testCatchSignalAndMessageAndTimer.bpmn20.xml", "message wins")
def _event_gw_message(d: Driver) -> None:
    d.start()
    d.expect_status("waiting")
    d.message("newInvoice")
    d.expect_tasks("afterMessage")
    d.expect_timers(0)
    finish(d)


@add(
    GW + "EventBasedGatewayTest.testCatchAlertAndTimer.bpmn20.xml",
    "signal wins (signal broadcast by the harness: govflow has no signal API)",
    extra_files=[GW + "EventBasedGatewayTest.throwAlertSignal.bpmn20.xml"],
)
def _event_gw_signal(d: Driver) -> None:
    d.start("catchSignal")
    d.expect_status("waiting")
    d.signal("alert")
    d.expect_tasks("afterSignal")
    d.expect_timers(0)
    finish(d)
    timer = d.start("catchSignal")
    d.advance(minutes=1)
    d.expect_tasks("afterTimer", instance_id=timer)


@add(GW + "EventBasedGatewayTest.throwAlertSignal.bpmn20.xml", "throws 'alert' and ends")
def _throw_alert(d: Driver) -> None:
    d.start()
    d.expect_status("completed")
    d.expect_completed("signalEvent")


# --- Camunda 7: timers ----------------------------------------------------------------------

TIMER = CAM + "event/timer/"


@add(TIMER + "StartTimerEventTest.testDurationStartTimerEvent.bpmn20.xml", "+50 min: 1 case")
def _duration_start(d: Driver) -> None:
    d.expect_timers(1)
    d.advance(minutes=50)
    d.expect_instances(1, "startTimerEventExample")
    d.expect_timers(0)


@add(TIMER + "StartTimerEventTest.testFixedDateStartTimerEvent.bpmn20.xml", "2036 date: 1 case")
def _fixed_date_start(d: Driver) -> None:
    d.expect_timers(1)
    d.advance(days=30)
    d.expect_instances(0)
    d.fire_next_timer()
    d.expect_instances(1, "startTimerEventExample")
    if d.clock.current.year != 2036:
        raise_failed(d, f"started at {d.clock.current}, expected 2036")
    d.expect_timers(0)


@add(TIMER + "StartTimerEventTest.testStartTimerEventSubProcessWithUserTask.bpmn20.xml", "")
def _timer_event_subprocess(d: Driver) -> None:
    d.start()
    d.expect_tasks("userTask")
    d.advance(minutes=2)
    d.expect_tasks("subprocessUserTask")
    d.expect_cancelled("userTask")
    d.expect_timers(0)
    finish(d)


@add(TIMER + "StartTimerEventTest.testNonInterruptingTimeCycleInEventSubProcess.bpmn20.xml", "")
def _ni_cycle_event_subprocess(d: Driver) -> None:
    d.start()
    d.expect_timers(1)
    d.fire_next_timer()
    d.expect_tasks("userTask", "userTask2")
    d.expect_timers(1)


@add(TIMER + "IntermediateTimerEventTest.testCatchingTimerEvent.bpmn20.xml", "+50 min: ended")
def _intermediate_timer(d: Driver) -> None:
    d.start()
    d.expect_timers(1)
    d.advance(minutes=50)
    d.expect_timers(0)
    d.expect_status("completed")


@add(TIMER + "BoundaryTimerEventTest.testInterruptingTimerDuration.bpmn20.xml", "escalated")
def _interrupting_timer(d: Driver) -> None:
    d.start()
    d.expect_tasks("First line support")
    d.advance(minutes=6)
    d.expect_tasks("Handle escalated issue")
    finish(d)


@add(TIMER + "BoundaryTimerEventTest.testMultipleTimersOnUserTask.bpmn20.xml", "earliest wins")
def _multiple_timers(d: Driver) -> None:
    d.start()
    d.expect_timers(3)
    d.advance(hours=1, minutes=1)
    d.expect_timers(0)
    d.expect_tasks("Third Task")
    finish(d)


@add(
    CAM
    + "event/timer/BoundaryTimerNonInterruptingEventTest.testMultipleTimersOnUserTask.bpmn20.xml",
    "+1 h Escalation Task 1, +2 h Escalation Task 2",
)
def _ni_multiple_timers(d: Driver) -> None:
    d.start()
    d.advance(hours=1, minutes=1)
    d.expect_tasks("First Task", "Escalation Task 1")
    d.advance(hours=1)
    d.expect_tasks("First Task", "Escalation Task 1", "Escalation Task 2")
    finish(d)


@add(TIMER + "BoundaryTimerNonInterruptingEventTest.testTimerWithCycle.bpmn20.xml", "hourly")
def _ni_cycle(d: Driver) -> None:
    d.start()
    d.advance(hours=1, minutes=1)
    d.expect_tasks("task", "timerFiredTask")
    d.advance(hours=1)
    d.expect_tasks("task", "timerFiredTask", "timerFiredTask")
    d.complete("task")
    d.expect_timers(0)
    finish(d)


# --- Camunda 7: messages and signals --------------------------------------------------------

MSG = CAM + "event/message/"
SIG = CAM + "event/signal/"


@add(MSG + "MessageStartEventTest.testMessageStartEventAndNoneStartEvent.bpmn20.xml", "")
def _message_and_none_start(d: Driver) -> None:
    none = d.start("testProcess")
    d.expect_tasks("taskAfterNoneStart", instance_id=none)
    started = d.message("newInvoiceMessage")
    d.expect_tasks("taskAfterMessageStart", instance_id=started)
    finish(d)


@add(MSG + "MessageIntermediateEventTest.testSingleIntermediateMessageEvent.bpmn20.xml", "")
def _intermediate_message(d: Driver) -> None:
    d.start()
    d.expect_status("waiting")
    d.expect_tasks()
    d.message("newInvoiceMessage")
    d.expect_tasks("task")
    finish(d)


@add(MSG + "MessageBoundaryEventTest.testSingleBoundaryMessageEvent.bpmn20.xml", "")
def _message_boundary_camunda(d: Driver) -> None:
    first = d.start()
    d.message("messageName")
    d.expect_tasks("taskAfterMessage", instance_id=first)
    d.expect_cancelled("task")
    d.complete("taskAfterMessage")
    second = d.start()
    d.complete("task")
    d.expect_tasks("taskAfterTask", instance_id=second)
    finish(d)


@add(
    MSG + "MessageNonInterruptingBoundaryEventTest.testSingleNonInterruptingBoundaryMessageEvent"
    ".bpmn20.xml",
    "",
)
def _ni_message_boundary_camunda(d: Driver) -> None:
    d.start()
    d.message("messageName")
    d.expect_tasks("task", "taskAfterMessage")
    finish(d)


@add(MSG + "MessageEventSubprocessTest.testInterruptingUnderProcessDefinition.bpmn20.xml", "")
def _message_event_subprocess(d: Driver) -> None:
    plain = d.start()
    d.complete("task")
    d.expect_status("completed", instance_id=plain)
    hit = d.start()
    d.message("newMessage")
    d.expect_tasks("eventSubProcessTask", instance_id=hit)
    finish(d)


@add(MSG + "MessageEventSubprocessTest.testNonInterruptingUnderProcessDefinition.bpmn20.xml", "")
def _ni_message_event_subprocess(d: Driver) -> None:
    d.start()
    d.message("newMessage")
    d.expect_tasks("task", "eventSubProcessTask")
    finish(d)


@add(CAM + "receivetask/ReceiveTaskTest.singleReceiveTask.bpmn20.xml", "waits, message ends it")
def _receive_task(d: Driver) -> None:
    d.start()
    d.expect_status("waiting")
    d.message("newInvoiceMessage")
    d.expect_status("completed")


@add(
    SIG + "SignalEventTests.catchAlertSignal.bpmn20.xml",
    "throwing process's signal ends the catcher (signal relayed by the harness)",
    extra_files=[SIG + "SignalEventTests.throwAlertSignal.bpmn20.xml"],
)
def _catch_alert(d: Driver) -> None:
    catcher = d.start("catchSignal")
    d.expect_status("waiting", instance_id=catcher)
    d.start("throwSignal")
    d.signal("alert")
    d.expect_status("completed", instance_id=catcher)


@add(SIG + "SignalEventTests.throwAlertSignal.bpmn20.xml", "throws 'alert' and ends")
def _throw_alert_2(d: Driver) -> None:
    d.start()
    d.expect_status("completed")
    d.expect_completed("signalEvent")


@add(SIG + "SignalEventTests.catchAlertSignalBoundary.bpmn20.xml", "signal ends the case")
def _signal_boundary(d: Driver) -> None:
    d.start()
    d.expect_tasks("task")
    d.signal("alert")
    d.expect_status("completed")
    d.expect_cancelled("task")


@add(SIG + "SignalEventTest.testNonInterruptingSignal.bpmn20.xml", "second task added")
def _ni_signal(d: Driver) -> None:
    d.start()
    d.signal("alert")
    d.expect_tasks("My User Task", "My Second User Task")
    finish(d)


@add(SIG + "SignalEventTest.signalStartEvent.bpmn20.xml", "signal starts a case with 1 task")
def _signal_start(d: Driver) -> None:
    case = d.start_by_signal("startBySignal", "alert")
    d.expect_tasks("task", instance_id=case)
    finish(d)


# --- Camunda 7: ends, errors, escalations ---------------------------------------------------

END = CAM + "event/end/"
ERR = CAM + "event/error/"
ESC = CAM + "event/escalation/"


@add(END + "TerminateEndEventTest.testProcessTerminate.bpmn", "terminate ends everything")
def _terminate(d: Driver) -> None:
    d.start()
    d.complete("preTerminateTask")
    d.expect_status("completed")
    d.expect_tasks()


@add(END + "TerminateEndEventTest.testTerminateInSubProcess.bpmn", "terminate ends only the sub")
def _terminate_in_sub(d: Driver) -> None:
    d.start()
    d.expect_tasks("preNormalEnd")
    d.expect_completed("EndEvent_1")
    d.expect_status("running")
    d.complete("preNormalEnd")
    d.expect_status("completed")


@add(END + "SignalEndEventTest.testCatchSignalEndEventInEmbeddedSubprocess.bpmn20.xml", "")
def _signal_end(d: Driver) -> None:
    d.start()
    d.complete("subprocessTask")
    d.expect_tasks("task after catching the signal")
    finish(d)


@add(ERR + "BoundaryErrorEventTest.testCatchErrorOnEmbeddedSubprocess.bpmn20.xml", "")
def _error_on_subprocess(d: Driver) -> None:
    d.start()
    d.complete("subprocessTask")
    d.expect_tasks("task after catching the error")
    finish(d)


@add(ERR + "BoundaryErrorEventTest.testCatchErrorOnCallActivity-parent.bpmn20.xml", "")
@add(
    ERR + "BoundaryErrorEventTest.subprocess.bpmn20.xml",
    "the called process, run through its caller (its error is the caller's to catch)",
    files=[
        ERR + "BoundaryErrorEventTest.testCatchErrorOnCallActivity-parent.bpmn20.xml",
        ERR + "BoundaryErrorEventTest.subprocess.bpmn20.xml",
    ],
)
def _error_on_call_activity(d: Driver) -> None:
    d.start("catchErrorOnCallActivity")
    d.complete("Task in subprocess")
    d.expect_tasks("Escalated Task")
    finish(d)


@add(ERR + "BoundaryErrorEventTest.testCatchErrorOnParallelMultiInstance.bpmn20.xml", "")
def _error_on_mi(d: Driver) -> None:
    d.start()
    tasks = d.open_tasks()
    if len(tasks) != 5:
        raise_failed(d, f"{len(tasks)} MI tasks, expected 5")
    d.complete(tasks[0].element_id, throwError=True)
    d.expect_tasks()
    d.expect_status("completed")


@add(ERR + "ErrorEventSubProcessTest.testCatchErrorInEmbeddedSubProcess.bpmn20.xml", "")
def _error_event_subprocess(d: Driver) -> None:
    d.start()
    d.expect_tasks("Escalated Task")
    finish(d)


@add(ERR + "UnhandledBpmnErrorTest.testUncaughtErrorSimpleProcess.bpmn20.xml", "uncaught error")
def _uncaught_error(d: Driver) -> None:
    d.start()
    d.expect_status("error")
    d.expect_incident("")


@add(ESC + "EscalationEventTest.testInterruptingEscalationBoundaryEvent.bpmn20.xml", "")
def _escalation_boundary(d: Driver) -> None:
    d.start()
    d.expect_tasks("task after catched escalation")
    finish(d)


@add(ESC + "EscalationEventTest.testThrowEscalationEventFromEmbeddedSubprocess.bpmn20.xml", "")
def _ni_escalation_boundary(d: Driver) -> None:
    d.start()
    d.expect_tasks("task after catched escalation", "task in subprocess")
    finish(d)


@add(
    ESC + "EscalationEventTest.testInterruptingRetrieveEscalationCodeInSuperProcess.bpmn20.xml",
    "",
    extra_files=[ESC + "EscalationEventTest.throwEscalationEvent.bpmn20.xml"],
)
def _escalation_from_called(d: Driver) -> None:
    d.start("catchEscalationProcess")
    d.expect_tasks("taskAfterCatchedEscalation")
    d.expect_vars(escalationCodeVar="escalationCode")
    finish(d)


@add(ESC + "EscalationEventTest.throwEscalationEvent.bpmn20.xml", "uncaught: continues")
def _throw_escalation(d: Driver) -> None:
    d.start()
    d.expect_tasks("task after thrown escalation")
    finish(d)


@add(ESC + "EscalationEventSubprocessTest.testCatchEscalationEventInsideSubprocess.bpmn20.xml", "")
def _escalation_event_subprocess(d: Driver) -> None:
    d.start()
    d.expect_tasks("task after catched escalation", "task in subprocess")
    finish(d)


# --- Camunda 7: compensation, link, conditional ---------------------------------------------

COMP = CAM + "event/compensate/"


@add(COMP + "CompensateEventTest.testSubprocessCompensationHandler.bpmn20.xml", "")
def _compensation_sub_handler(d: Driver) -> None:
    d.start()
    d.complete("activity")
    d.expect_tasks("subProcessTask")
    d.complete("subProcessTask")
    d.expect_tasks("beforeEnd")
    finish(d)


@add(COMP + "CompensateEventTest.testCompensateSubprocessInsideSubprocess.bpmn20.xml", "")
def _compensate_nested(d: Driver) -> None:
    d.start()
    d.complete("Book Hotel")
    d.complete("Book Flight")
    d.complete("throw compensation")
    finish(d)
    d.expect_completed("Cancel Hotel", "Cancel Flight")


@add(COMP + "CompensateEventTest.testCompensateActivityInSubprocess.bpmn20.xml", "")
def _compensate_in_sub(d: Driver) -> None:
    d.start()
    finish(d)
    d.expect_completed("scopeTask", "undoScopeTask")


@add(COMP + "CompensateEventTest.compensationMiSubprocess.bpmn20.xml", "5x, each compensated")
def _compensate_mi(d: Driver) -> None:
    d.start()
    finish(d)
    d.expect_completed("Book Hotel", times=5)
    d.expect_completed("undoBookHotel", times=5)


@add(COMP + "CompensateEventTest.testCompensationEventSubprocessWithoutBoundaryEvents.bpmn20.xml")
def _compensation_event_subprocess(d: Driver) -> None:
    d.start()
    d.complete("Book Hotel")
    d.complete("Book Flight")
    d.complete("throw compensation")
    d.expect_tasks("Cancel Flight")
    d.complete("Cancel Flight")
    d.expect_tasks("Cancel Hotel")
    finish(d)


@add(CAM + "event/link/LinkEventTest.testValidEventLink.bpmn20.xml", "link throw -> catch path")
def _link(d: Driver) -> None:
    # Camunda's receive tasks without a message wait for a trigger; govflow passes them
    d.start()
    finish(d)
    d.expect_completed("waitAfterLink1", "waitAfterLink2", "EndEvent_1")


@add(CAM + "event/conditional/IntermediateConditionalEventTest.testTrueCondition.bpmn20.xml")
def _true_condition(d: Driver) -> None:
    d.start()
    d.expect_tasks("Before Condition")
    d.complete("Before Condition")
    d.expect_tasks("After Condition")
    finish(d)


# --- Camunda 7: call activities, subprocesses, multi-instance, user tasks -------------------

CALL = CAM + "callactivity/"
SUB = CAM + "subprocess/"
MI = CAM + "multiinstance/"


@add(CALL + "CallActivity.testCallSimpleSubProcess.bpmn20.xml", "before, in, after subprocess")
def _call_simple(d: Driver) -> None:
    d.start("callSimpleSubProcess")
    d.expect_tasks("Task before subprocess")
    d.complete("Task before subprocess")
    d.expect_tasks("Task in subprocess")
    d.complete("Task in subprocess")
    d.expect_tasks("Task after subprocess")
    finish(d)


@add(CALL + "simpleSubProcess.bpmn20.xml", "single task")
def _simple_sub(d: Driver) -> None:
    d.start()
    d.expect_tasks("Task in subprocess")
    finish(d)


@add(CALL + "CallActivity.testSubProcessDataInputOutput.bpmn20.xml", "camunda:in/out mapping")
def _call_io(d: Driver) -> None:
    d.start("subProcessDataInputOutput", superVariable="Hello from the super process.")
    d.expect_tasks("Task in subprocess")
    d.expect_vars(subVariable="Hello from the super process.")
    d.complete("Task in subprocess", subVariable="Hello from sub process.")
    d.expect_vars(superVariable="Hello from sub process.")
    # the source test then passes x=5 to the second call, mapped by expressions
    d.complete("Task in super process", x=5)
    d.expect_vars(y=10)
    d.complete("Task in subprocess")
    d.expect_vars(z=15)
    finish(d)


@add(CALL + "CallActivity.testTimerOnCallActivity.bpmn20.xml", "timer cancels the called case")
def _timer_on_call(d: Driver) -> None:
    d.start("timerOnCallActivity")
    d.expect_tasks("Task in subprocess")
    d.advance(minutes=6)
    d.expect_tasks("Escalated Task")
    finish(d)


@add(SUB + "SubProcessTest.testSimpleSubProcess.bpmn20.xml", "task in subprocess, then ends")
def _simple_subprocess(d: Driver) -> None:
    d.start()
    d.expect_tasks("Task in subprocess")
    d.expect_active("subProcess")
    finish(d)


@add(SUB + "SubProcessTest.testNestedSimpleSubProcess.bpmn20.xml", "inner task, then after")
def _nested_subprocess(d: Driver) -> None:
    d.start()
    d.expect_tasks("Task in subprocess")
    d.complete("Task in subprocess")
    d.expect_tasks("Task after subprocesses")
    finish(d)


@add(SUB + "SubProcessTest.testTwoSubProcessInParallel.bpmn20.xml", "A and B in parallel")
def _two_subprocesses(d: Driver) -> None:
    d.start()
    d.expect_tasks("Task in subprocess A", "Task in subprocess B")
    d.complete("Task in subprocess A")
    d.expect_tasks("Task after subprocess A", "Task in subprocess B")
    d.complete("Task in subprocess B")
    d.expect_tasks("Task after subprocess A", "Task after subprocess B")
    finish(d)


@add(MI + "MultiInstanceTest.sequentialUserTasks.bpmn20.xml", "kermit_0..2 one at a time")
def _mi_sequential(d: Driver) -> None:
    d.start(nrOfLoops=3)
    for index in range(3):
        tasks = d.open_tasks()
        if len(tasks) != 1 or tasks[0].assignee != f"kermit_{index}":
            raise_failed(d, f"step {index}: {[(t.name, t.assignee) for t in tasks]}")
        d.complete("My Task")
    d.expect_status("completed")


@add(MI + "MultiInstanceTest.testParallelUserTasks.bpmn20.xml", "3 tasks at once, 3->2->1")
def _mi_parallel(d: Driver) -> None:
    d.start()
    for left in (3, 2, 1):
        tasks = d.open_tasks()
        if len(tasks) != left:
            raise_failed(d, f"{len(tasks)} tasks, expected {left}")
        d.complete(tasks[0].element_id)
    d.expect_status("completed")


@add(MI + "MultiInstanceTest.testParallelUserTasksBasedOnCollection.bpmn20.xml", "5 assignees")
def _mi_collection(d: Driver) -> None:
    names = ["kermit", "gonzo", "fozzie", "mispiggy", "bubba"]
    d.start(assigneeList=names)
    assigned = sorted(t.assignee or "" for t in d.open_tasks())
    if assigned != sorted(names):
        raise_failed(d, f"assignees {assigned}")
    finish(d)
    d.start(assigneeList=[])
    d.expect_status("completed", instance_id=d.instances[-1])


@add(MI + "MultiInstanceTest.testParallelUserTasksCompletionCondition.bpmn20.xml", "ends early")
def _mi_completion_condition(d: Driver) -> None:
    d.start()
    tasks = d.open_tasks()
    if len(tasks) != 5:
        raise_failed(d, f"{len(tasks)} tasks, expected 5")
    for task in tasks[:3]:
        d.complete(task.element_id)
    d.expect_status("completed")


@add(MI + "MultiInstanceTest.testSequentialSubProcess.bpmn20.xml", "4 loops of 2 tasks")
def _mi_sequential_subprocess(d: Driver) -> None:
    d.start()
    for _ in range(4):
        d.expect_tasks("task one", "task two")
        d.complete("task one")
        d.complete("task two")
    d.expect_status("completed")


@add(CAM + "usertask/UserTaskTest.testComplexScenarioWithSubprocessesAndParallelGateways.bpmn")
def _complex_user_tasks(d: Driver) -> None:
    d.start()
    count = len(d.open_tasks())
    if count != 13:
        raise_failed(d, f"{count} user tasks active after start, expected 13")


# --- Flowable -------------------------------------------------------------------------------

ADHOC = FLOW + "subprocess/adhoc/"


@add(ADHOC + "AdhocSubProcessTest.testSimpleAdhocSubProcess.bpmn20.xml", "ad-hoc: run one, finish")
def _adhoc_simple(d: Driver) -> None:
    # Flowable enables both activities and lets the caller pick; govflow has no such API, so
    # the closest check is: the ad-hoc tasks are offered without error and the case ends
    d.start()
    d.expect_no_incidents()
    d.complete("Task in subprocess")
    finish(d)
    d.expect_completed("After task")


@add(ADHOC + "AdhocSubProcessTest.testSequentialAdhocSubProcess.bpmn20.xml", "one at a time")
def _adhoc_sequential(d: Driver) -> None:
    d.start()
    d.expect_no_incidents()
    if len(d.open_tasks()) > 1:
        raise_failed(d, "sequential ad-hoc subprocess offers several tasks at once")
    finish(d, {"Task2 in subprocess": {"completed": True}})


@add(ADHOC + "AdhocSubProcessTest.testSimpleCompletionCondition.bpmn20.xml", "completed=true ends")
def _adhoc_completion(d: Driver) -> None:
    d.start(completed=False)
    d.expect_no_incidents()
    d.complete("Task2 in subprocess", completed=True)
    d.expect_tasks("After task")
    finish(d)


@add(
    FLOW + "event/timer/TimerEventSubprocessTest.testInterruptingUnderProcessDefinition.bpmn20.xml"
)
def _flowable_timer_event_subprocess(d: Driver) -> None:
    plain = d.start()
    d.expect_tasks("task", instance_id=plain)
    d.complete("task")
    d.expect_status("completed", instance_id=plain)
    hit = d.start()
    d.advance(days=1, minutes=1)
    d.expect_tasks("eventSubProcessTask", instance_id=hit)
    finish(d)


@add(FLOW + "event/timer/TimerEventSubprocessTest.testNonInterruptingSubProcess.bpmn20.xml")
def _flowable_ni_timer_event_subprocess(d: Driver) -> None:
    d.start()
    d.expect_tasks("task")
    d.advance(days=1, minutes=1)
    d.expect_tasks("task", "eventSubProcessTask")
    d.advance(days=1)
    d.expect_tasks("task", "eventSubProcessTask", "eventSubProcessTask")
    d.complete("task")
    d.expect_timers(0)


@add(
    FLOW
    + "event/signal/SignalEventSubprocessTest.testInterruptingUnderProcessDefinition.bpmn20.xml",
    "signal broadcast by the harness",
)
def _flowable_signal_event_subprocess(d: Driver) -> None:
    plain = d.start()
    d.complete("task")
    d.expect_status("completed", instance_id=plain)
    hit = d.start()
    d.signal("newSignal")
    d.expect_tasks("eventSubProcessTask", instance_id=hit)
    finish(d)


@add(
    FLOW
    + "event/signal/SignalEventSubprocessTest.testNonInterruptingUnderProcessDefinition.bpmn20.xml",
    "signal broadcast by the harness",
)
def _flowable_ni_signal_event_subprocess(d: Driver) -> None:
    d.start()
    d.signal("newSignal")
    d.expect_tasks("task", "eventSubProcessTask")
    finish(d)


@add(FLOW + "gateway/InclusiveGatewayTest.insideMultiInstanceParallelSubProcess.bpmn20.xml")
def _flowable_or_in_mi(d: Driver) -> None:
    d.start()
    count = len(d.open_tasks())
    if count != 9:
        raise_failed(d, f"{count} tasks, expected 9 (3 per MI instance)")
    finish(d)
    d.expect_completed("postForkTask", times=3)
    d.expect_completed("lastTask", times=1)


@add(FLOW + "multiinstance/MultiInstanceTest.testSequentialEmptyCollection.bpmn20.xml")
def _flowable_empty_collection(d: Driver) -> None:
    empty = d.start(collection=[])
    d.expect_status("completed", instance_id=empty)
    one = d.start(collection=["a"])
    d.expect_tasks("Multi", instance_id=one)
    finish(d)


@add(FLOW + "event/end/TerminateEndEventTest.testTerminateInEventSubProcess.bpmn20.xml")
def _flowable_terminate_in_event_subprocess(d: Driver) -> None:
    d.start()
    d.expect_tasks("task")
    d.signal("signal")
    d.expect_status("completed")
    d.expect_tasks()


# --- Camunda examples -----------------------------------------------------------------------

JOB = EX + "testing/assert/job-announcement-publication-process/src/test/resources/"
out_of_scope(
    JOB + "camunda-testing-job-announcement.bpmn",
    "JUEL calls a Java bean (#{jobAnnouncementService.findRequester(...)}, service expressions)",
)
out_of_scope(
    JOB + "camunda-testing-job-announcement-publication.bpmn",
    "service tasks are JUEL calls on a Java bean (#{jobAnnouncementService.postToWebsite(...)})",
)
out_of_scope(
    EX + "spring-boot-starter/external-task-client/loan-granting-spring-boot-webapp/src/main/"
    "resources/bpmn/loan-granting.bpmn",
    "JavaScript script using the Camunda Java API (execution.setVariable) and a Quartz cron",
)


@add(EX + "startevent/message-start/src/main/resources/message_start_process.bpmn")
def _message_start_example(d: Driver) -> None:
    case = d.message("instantiationMessage")
    d.expect_tasks("Wait in Message Process", instance_id=case)
    finish(d)


@add(EX + "usertask/task-form-embedded-bpmn-events/src/main/resources/invoicePayment.bpmn")
def _invoice_payment(d: Driver) -> None:
    d.start()
    d.expect_tasks("Pay Invoice")
    finish(d)
    d.expect_completed("EndEvent_1ug8ljt")


@add(EX + "clients/java/order-handling/order-handling.bpmn", "cron timer start, external tasks")
def _order_handling(d: Driver) -> None:
    d.expect_timers(1)
    d.fire_next_timer()
    d.expect_instances(1, "Order_Process")
    finish(d)


@add("spiffworkflow/spiff/data/business_rule_task.bpmn", "DMN decision_1: question X -> answer")
def _business_rule(d: Driver) -> None:
    d.start()
    finish(d)
    d.expect_completed("Activity_0diq2z1")
    variables = d.detail()["variables"]
    if "answer" not in variables:
        raise_failed(d, f"decision_1 gave no 'answer' (variables {sorted(variables)})")


@add(
    SPIFF + "call_activity_call_activity.bpmn",
    "called from call_activity_end_event.bpmn; data persists",
    files=[SPIFF + "call_activity_end_event.bpmn", SPIFF + "call_activity_call_activity.bpmn"],
)
def _call_activity_data(d: Driver) -> None:
    d.start("Process_8200379")
    finish(d)
    d.expect_vars(pre_var="some string", my_var="World", my_other_var="Mike")


@add(SPIFF + "call_activity_end_event.bpmn", "calls Call_Activity_Get_Data; data persists")
def _call_activity_end_event(d: Driver) -> None:
    d.start("Process_8200379")
    finish(d)
    d.expect_vars(pre_var="some string", my_var="World", my_other_var="Mike")


@add(SPIFF + "call_activity_with_error.bpmn", "error inside the called process -> incident")
def _call_activity_with_error(d: Driver) -> None:
    d.start("ErroringBPMN")
    d.expect_status("error")
    d.expect_incident("remove_this_var")
    d.expect_not_completed("Activity_1ta6769")


# --- SpiffWorkflow: checks beyond "it completes" ----------------------------------------------


@add(TW + "Message-Interrupts.bpmn20.xml", "no message: completes; 'Test Message' interrupts")
def _message_interrupts(d: Driver) -> None:
    plain = d.start()
    d.complete("Do Something That Takes A Long Time")
    d.expect_status("completed", instance_id=plain)
    hit = d.start()
    d.message("Test Message")
    d.expect_tasks("Acknowledge Interrupt Message", instance_id=hit)
    finish(d)
    d.expect_cancelled("Do Something That Takes A Long Time")


@add(TW + "Message-Non-Interrupt.bpmn20.xml", "message adds a task beside the original")
def _message_non_interrupt(d: Driver) -> None:
    d.start()
    d.message("Test Message")
    d.expect_tasks("Do Something That Takes A Long Time", "Acknowledge Non-Interrupt Message")
    finish(d)


@add(TW + "Message-Interrupts-SP.bpmn20.xml", "'Test Message' interrupts the subprocess")
def _message_interrupts_sp(d: Driver) -> None:
    d.start()
    d.message("Test Message")
    d.expect_tasks("Acknowledge SP Interrupt Message")
    finish(d)


@add(TW + "Message-Non-Interrupt-SP.bpmn20.xml", "message task runs beside the subprocess")
def _message_non_interrupt_sp(d: Driver) -> None:
    d.start()
    before = len(d.open_tasks())
    d.message("Test Message")
    names = d.task_names()
    if "Acknowledge SP Parallel Message" not in names or len(names) != before + 1:
        raise_failed(d, f"after the message: {names}")
    finish(d)


out_of_scope(
    SPIFF + "timer-cycle-start.bpmn",
    "script calls custom_function(), a host function the Spiff test injects into its engine",
)


@add(SPIFF + "parallel_multiinstance_cardinality.bpmn", "3 instances of any_task")
def _parallel_mi_cardinality(d: Driver) -> None:
    d.start()
    finish(d)
    # govflow counts the multi-instance task itself plus each of its 3 instances
    d.expect_completed("any_task", times=4)


@add(SPIFF + "sequential_multiinstance_cardinality.bpmn", "3 instances of any_task, in turn")
def _sequential_mi_cardinality(d: Driver) -> None:
    d.start()
    finish(d)
    # govflow counts the multi-instance task itself plus each of its 3 instances
    d.expect_completed("any_task", times=4)


@add(
    SPIFF + "io_spec.bpmn",
    "called from io_spec_parent.bpmn: outputs out_1=2, out_2='HELLO WORLD'",
    files=[SPIFF + "io_spec_parent.bpmn", SPIFF + "io_spec.bpmn"],
)
@add(SPIFF + "io_spec_parent.bpmn", "ioSpecification outputs out_1=2, out_2='HELLO WORLD'")
def _io_spec(d: Driver) -> None:
    d.start("parent")
    finish(d)
    d.expect_vars(out_1=2, out_2="HELLO WORLD")


@add("spiffworkflow/spiff/data/prescript_postscript.bpmn", "pre/post scripts: a,b,c,z")
def _prescript(d: Driver) -> None:
    d.start(a=1, b=2)
    finish(d)
    d.expect_vars(a=1, b=2, c=12, z=6)


@add("spiffworkflow/spiff/data/signal_event_payload.bpmn", "signal payload {'r1': v1, 'r2': v2}")
def _signal_payload(d: Driver) -> None:
    d.start(v1=1, v2=2, v3=3)
    finish(d)
    d.expect_vars(result={"r1": 1, "r2": 2})


NESTED = [
    TW + "Nested-Subprocesses.bpmn20.xml",
    TW + "Nested-Sub-level1.bpmn20.xml",
    TW + "Nested-Sub-level2.bpmn20.xml",
]


@add(NESTED[0], "Action1 -> level 1 Action2 -> level 2 Action3 -> completes")
@add(NESTED[1], "run through Nested-Subprocesses", files=NESTED)
@add(NESTED[2], "run through Nested-Subprocesses", files=NESTED)
def _nested(d: Driver) -> None:
    d.start("sid-a12cf1e5-86f4-4d69-9790-6a90342f5963")
    for action in ("Action1", "Action2", "Action3"):
        d.expect_tasks(action)
        d.complete(action)
    finish(d)


@add(SPIFF + "Approvals.bpmn", "first approval wins, parallel approvals, parallel SP")
def _approvals(d: Driver) -> None:
    d.start("Approvals")
    finish(d)
    d.expect_completed("First Approval Wins Done", "Parallel Approvals Done", "Parallel SP Done")
    d.expect_completed("Manager Approval (P)", "Supervisor Approval (P)", "Operator Approval")


@add(SPIFF + "data_object.bpmn", "obj_1 written by one task, read by others")
def _data_object(d: Driver) -> None:
    d.start()
    d.complete("Generate Data", obj_1="hello")
    finish(d)
    d.expect_completed("read_data", "placeholder")


@add(SPIFF + "parallel_multiinstance_loop_input.bpmn", "MI over input_data; output follows")
def _mi_loop_input(d: Driver) -> None:
    d.start(input_data=[1, 2, 3])
    finish(d)
    variables = d.detail()["variables"]
    output = variables.get("output_data")
    if not isinstance(output, list) or len(output) != 3:
        raise_failed(d, f"output_data={output!r}, expected a list of 3")


@add(SPIFF + "gateway_loop_input.bpmn", "loop back into a parallel gateway; x == 2")
def _gateway_loop(d: Driver) -> None:
    d.start()
    finish(d)
    d.expect_vars(x=2)


@add(TW + "Parallel-Looping-After-Join.bpmn20.xml", "Go,1,2,2A,2B,'2 Done','Retry?'=No")
def _looping_after_join(d: Driver) -> None:
    d.start(retry="No")
    finish(d)
    d.expect_completed("Go", "1", "2", "2A", "2B", "2 Done", "Done")


@add(TW + "Parallel-Join-Long.bpmn20.xml", "both threads 'Choose'=Yes; Done once at the end")
def _join_long(d: Driver) -> None:
    d.start(choice="Yes")
    finish(d)
    d.expect_completed("Done", times=1)


ESCALATION = [
    TW + "CallActivity-Escalation-Test.bpmn20.xml",
    TW + "CallActivity-Escalation-Test-Sub.bpmn20.xml",
]


@add(ESCALATION[0], "should_escalate True -> *_escalated ends; interrupting ones skip *_normal")
@add(ESCALATION[1], "run through CallActivity-Escalation-Test", files=ESCALATION)
def _call_activity_escalation(d: Driver) -> None:
    escalated = d.start("CallActivity-Escalation-Test", should_escalate=True)
    d.expect_status("completed", instance_id=escalated)
    d.expect_completed(
        "EndEvent_general_interrupting_escalated",
        "EndEvent_specific1_interrupting_escalated",
        "EndEvent_general_noninterrupting_escalated",
        "EndEvent_specific1_noninterrupting_escalated",
    )
    d.expect_not_completed(
        "EndEvent_general_interrupting_normal", "EndEvent_specific1_interrupting_normal"
    )
    normal = d.start("CallActivity-Escalation-Test", should_escalate=False)
    d.expect_status("completed", instance_id=normal)
    d.expect_no_incidents()
