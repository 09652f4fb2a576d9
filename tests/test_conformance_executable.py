"""A bounded slice of the executable-model conformance corpus, run through the harness.

The full run is `python -m conformance.executable`; these models pass today and cover the
element families govflow relies on, so a regression in any of them fails CI. The corpus lives
beside the repository (../shared/conformance); without it these tests fail, never skip.
"""

from __future__ import annotations

import itertools

import pytest

from conformance import CONFORMANCE, executable
from conformance.executable import Row, Template

CORPUS_ROOT = CONFORMANCE

PASSING = [
    # parallel, exclusive and inclusive gateways
    "spiffworkflow/bpmn/data/Test-Workflows/Parallel-One-Path-Ends.bpmn20.xml",
    "spiffworkflow/bpmn/data/Test-Workflows/Parallel.camunda.bpmn20.xml",
    "spiffworkflow/bpmn/data/inclusive_gateway.bpmn",
    "spiffworkflow/bpmn/data/exclusive_gateway_no_default.bpmn",
    "flowable-engine/gateway/InclusiveGatewayTest.insideMultiInstanceParallelSubProcess.bpmn20.xml",
    # timers: catch, boundary, non-interrupting, cycle, start
    "spiffworkflow/bpmn/data/Test-Workflows/Timer-Intermediate.bpmn20.xml",
    "spiffworkflow/bpmn/data/boundary.bpmn",
    "spiffworkflow/bpmn/data/timer-non-interrupt-boundary.bpmn",
    "camunda-bpm-platform/event/timer/BoundaryTimerNonInterruptingEventTest.testTimerWithCycle.bpmn20.xml",
    "camunda-bpm-platform/event/timer/StartTimerEventTest.testDurationStartTimerEvent.bpmn20.xml",
    # messages and signals
    "spiffworkflow/bpmn/data/Test-Workflows/Message-Interrupts.bpmn20.xml",
    "spiffworkflow/bpmn/data/Test-Workflows/Message-Non-Interrupt.bpmn20.xml",
    "spiffworkflow/bpmn/data/return_to_event.bpmn",
    "spiffworkflow/bpmn/data/start_event_split.bpmn",
    "camunda-bpm-examples/startevent/message-start/src/main/resources/message_start_process.bpmn",
    "camunda-bpm-platform/event/signal/SignalEventTest.testNonInterruptingSignal.bpmn20.xml",
    # call activities, subprocesses, errors, terminate, conditional
    "spiffworkflow/bpmn/data/call_activity_end_event.bpmn",
    "spiffworkflow/bpmn/data/io_spec_parent.bpmn",
    "camunda-bpm-platform/callactivity/CallActivity.testTimerOnCallActivity.bpmn20.xml",
    "camunda-bpm-platform/event/error/BoundaryErrorEventTest.testCatchErrorOnEmbeddedSubprocess.bpmn20.xml",
    "camunda-bpm-platform/event/end/TerminateEndEventTest.testProcessTerminate.bpmn",
    "camunda-bpm-platform/event/conditional/IntermediateConditionalEventTest.testTrueCondition.bpmn20.xml",
    # multi-instance
    "camunda-bpm-platform/multiinstance/MultiInstanceTest.testParallelUserTasks.bpmn20.xml",
    "camunda-bpm-platform/multiinstance/MultiInstanceTest.testSequentialSubProcess.bpmn20.xml",
]

NEGATIVE = "spiffworkflow/bpmn/data/Invalid-Workflows/No-Start-Event.bpmn20.xml"

_numbers = itertools.count()


@pytest.fixture(scope="module")
def rows() -> dict[str, Row]:
    manifest = CORPUS_ROOT / "executable" / "MANIFEST.tsv"
    assert manifest.is_file(), (
        f"the conformance corpus is missing: {manifest} (expected at ../shared/conformance "
        "next to the repository)"
    )
    assert executable.CORPUS == CORPUS_ROOT / "executable"
    return {row.file: row for row in executable.read_manifest()}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return Template(tmp_path_factory.mktemp("conformance"))


def _run(rows: dict[str, Row], template: Template, path: str) -> executable.Result:
    assert path in rows, f"{path} is not in the corpus MANIFEST"
    return executable.run_model(rows[path], list(rows.values()), template, next(_numbers))


@pytest.mark.parametrize("path", PASSING, ids=[p.rsplit("/", 1)[-1] for p in PASSING])
def test_model_passes(rows: dict[str, Row], template: Template, path: str) -> None:
    result = _run(rows, template, path)
    assert rows[path].kind == "executable"
    assert result.outcome == "pass", f"{path}: {result.reason}"


def test_negative_model_is_refused_with_a_message(rows: dict[str, Row], template: Template):
    result = _run(rows, template, NEGATIVE)
    assert rows[NEGATIVE].kind == "negative"
    assert result.outcome == "pass", result.reason
    assert result.reason.startswith("refused: ")
    assert "start" in result.reason.lower()


def test_harness_records_exceptions_instead_of_crashing(
    rows: dict[str, Row], template: Template, monkeypatch: pytest.MonkeyPatch
):
    from conformance import scenarios

    path = PASSING[0]

    def broken(driver: executable.Driver) -> None:
        raise RuntimeError("scenario blew up")

    monkeypatch.setitem(scenarios.SCENARIOS, path, scenarios.Scenario(script=broken))
    result = _run(rows, template, path)
    assert result.outcome == "fail"
    assert "RuntimeError: scenario blew up" in result.reason
