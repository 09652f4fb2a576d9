"""Files as other modelers write them: each work-around in engine.bpmn.compat and the
`${...}` expression subset, deployed and run."""

from __future__ import annotations

import pytest

from engine.errors import BpmnProblems
from tests import bpmn as b


def _statuses(gf, instance_id: str) -> tuple[str, dict]:
    detail = gf.detail(instance_id)
    return detail["status"], detail["variables"]


def test_a_prefixed_message_ref_is_read_as_the_plain_id(gf):
    text = b.definitions(
        '<bpmn:message id="Msg_paid" name="fee_paid" />',
        b.process(
            "prefixed",
            b.start(),
            '<bpmn:intermediateCatchEvent id="wait"><bpmn:messageEventDefinition '
            'messageRef="tns:Msg_paid" /></bpmn:intermediateCatchEvent>',
            b.end(),
            *b.chain("start", "wait", "end"),
        ),
    ).replace("<bpmn:definitions ", '<bpmn:definitions xmlns:tns="http://govflow.test" ', 1)
    gf.deploy(text, "prefixed.bpmn")
    case = gf.start("prefixed").id
    from engine.runtime import messages

    messages.deliver(gf.app.runner, gf.ops, "fee_paid", {"amount": 5}, None)
    assert _statuses(gf, case) == ("completed", {"amount": 5})


@pytest.mark.parametrize("kind", ["message", "signal"])
def test_a_reference_to_an_undefined_element_is_a_located_problem(gf, kind):
    definition = {
        "message": '<bpmn:messageEventDefinition messageRef="Nowhere" />',
        "error": '<bpmn:errorEventDefinition errorRef="Nowhere" />',
        "signal": '<bpmn:signalEventDefinition signalRef="Nowhere" />',
        "escalation": '<bpmn:escalationEventDefinition escalationRef="Nowhere" />',
    }[kind]
    text = b.doc(
        "undefined_ref",
        b.start(),
        f'<bpmn:endEvent id="end">{definition}</bpmn:endEvent>'
        if kind != "signal"
        else f'<bpmn:intermediateThrowEvent id="end">{definition}</bpmn:intermediateThrowEvent>',
        *b.chain("start", "end"),
    )
    with pytest.raises(BpmnProblems) as raised:
        gf.deploy(text, "undefined.bpmn")
    [problem] = [p for p in raised.value.details if "Nowhere" in p["message"]]
    assert problem["file"].endswith("undefined.bpmn") and problem["line"] >= 1
    assert f"refers to {kind} 'Nowhere', which is not defined" in problem["message"]


def test_an_error_ref_that_names_no_error_is_its_code_as_in_camunda(gf):
    text = b.doc(
        "error_code",
        b.start(),
        '<bpmn:subProcess id="sub">'
        + b.start("sub_start")
        + '<bpmn:endEvent id="fail"><bpmn:errorEventDefinition errorRef="E42" /></bpmn:endEvent>'
        + b.flow("s1", "sub_start", "fail")
        + "</bpmn:subProcess>",
        '<bpmn:boundaryEvent id="caught" attachedToRef="sub">'
        '<bpmn:errorEventDefinition errorRef="E42" /></bpmn:boundaryEvent>',
        b.script("handled", "route = 'caught E42'"),
        b.end(),
        b.end("end_ok"),
        *b.chain("start", "sub", "end_ok"),
        b.flow("f_caught", "caught", "handled"),
        b.flow("f_handled", "handled", "end"),
    )
    gf.deploy(text, "error_code.bpmn")
    status, data = _statuses(gf, gf.start("error_code").id)
    assert (status, data["route"]) == ("completed", "caught E42")


def test_sequence_flows_without_ids_stay_apart(gf):
    text = b.doc(
        "no_ids",
        b.start(),
        b.script("one", "trail = ['one']"),
        b.script("two", "trail = trail + ['two']"),
        b.end(),
        '<bpmn:sequenceFlow sourceRef="start" targetRef="one" />',
        '<bpmn:sequenceFlow sourceRef="one" targetRef="two" />',
        '<bpmn:sequenceFlow sourceRef="two" targetRef="end" />',
    )
    path = gf.write("no_ids.bpmn", text)
    gf.app.deploy_paths([path], gf.designer)
    status, data = _statuses(gf, gf.start("no_ids").id)
    assert (status, data["trail"]) == ("completed", ["one", "two"])


def test_a_file_in_windows_1252_that_declares_utf8_is_read(gf):
    text = b.doc(
        "latin",
        b.start(),
        b.user("review", "Révision du dossier", candidateGroups="amr"),
        b.end(),
        *b.chain("start", "review", "end"),
    )
    data = text.encode("cp1252")
    path = gf.write("latin.bpmn", data)
    result = gf.app.deploy_paths([path], gf.designer)
    assert result.processes[0].key == "latin"
    case = gf.start("latin").id
    assert gf.task(case, "review").name == "Révision du dossier"


def test_a_business_rule_task_without_a_decision_passes_like_a_task(gf):
    text = b.definitions(
        b.process(
            "rules",
            b.start(),
            '<bpmn:businessRuleTask id="decide" name="规则判断" />',
            b.end(),
            *b.chain("start", "decide", "end"),
        )
    )
    gf.deploy(text, "rules.bpmn")
    assert gf.detail(gf.start("rules").id)["status"] == "completed"


def test_standard_multi_instance_with_loop_data_input_runs_once_per_item(gf):
    text = b.doc(
        "standard_mi",
        b.start(),
        '<bpmn:scriptTask id="each" scriptFormat="python">'
        '<bpmn:multiInstanceLoopCharacteristics isSequential="true">'
        "<bpmn:loopDataInputRef>items</bpmn:loopDataInputRef>"
        "<bpmn:loopDataOutputRef>doubled</bpmn:loopDataOutputRef>"
        '<bpmn:inputDataItem id="item" name="item" />'
        '<bpmn:outputDataItem id="twice" name="twice" />'
        "</bpmn:multiInstanceLoopCharacteristics>"
        "<bpmn:script>twice = item * 2</bpmn:script></bpmn:scriptTask>",
        b.end(),
        *b.chain("start", "each", "end"),
    )
    gf.deploy(text, "standard_mi.bpmn")
    status, data = _statuses(gf, gf.start("standard_mi", items=[1, 2, 3]).id)
    assert status == "completed"
    assert data["doubled"] == [2, 4, 6]


def test_a_data_store_without_implementation_keeps_its_value_in_the_case(gf):
    text = b.definitions(
        '<bpmn:dataStore id="ledger_store" name="台账" />',
        b.process(
            "with_store",
            b.start(),
            '<bpmn:dataStoreReference id="ledger_ref" dataStoreRef="ledger_store" />',
            '<bpmn:scriptTask id="write" scriptFormat="python">'
            '<bpmn:dataOutputAssociation id="out"><bpmn:targetRef>ledger_ref</bpmn:targetRef>'
            "</bpmn:dataOutputAssociation><bpmn:script>ledger_store = {'rows': 3}</bpmn:script>"
            "</bpmn:scriptTask>",
            '<bpmn:scriptTask id="read" scriptFormat="python">'
            '<bpmn:dataInputAssociation id="in"><bpmn:sourceRef>ledger_ref</bpmn:sourceRef>'
            "<bpmn:targetRef>read</bpmn:targetRef></bpmn:dataInputAssociation><bpmn:script>rows = ledger_store['rows']</bpmn:script>"
            "</bpmn:scriptTask>",
            b.end(),
            *b.chain("start", "write", "read", "end"),
        ),
    )
    gf.deploy(text, "store.bpmn")
    status, data = _statuses(gf, gf.start("with_store").id)
    assert (status, data["rows"]) == ("completed", 3)


def test_a_subprocess_without_a_start_event_starts_at_its_first_nodes(gf):
    text = b.doc(
        "implicit_start",
        b.start(),
        '<bpmn:subProcess id="sub">'
        + b.script("first", "visited = ['first']")
        + b.script("second", "visited = visited + ['second']")
        + b.end("sub_end")
        + "".join(b.chain("first", "second", "sub_end", prefix="s"))
        + "</bpmn:subProcess>",
        b.end(),
        *b.chain("start", "sub", "end"),
    )
    gf.deploy(text, "implicit.bpmn")
    status, data = _statuses(gf, gf.start("implicit_start").id)
    assert (status, data["visited"]) == ("completed", ["first", "second"])


@pytest.mark.parametrize(
    ("condition", "amount", "approved", "route"),
    [
        ("${amount > 1000 &amp;&amp; !approved}", 2000, False, "big"),
        ("${amount > 1000 &amp;&amp; !approved}", 2000, True, "small"),
        ("#{amount gt 1000 and not approved}", 2000, False, "big"),
        ("${empty note || amount ge 5000}", 10, False, "big"),
    ],
)
def test_camunda_expressions_in_conditions(gf, condition, amount, approved, route):
    text = b.doc(
        "juel",
        b.start(),
        b.xor("split", default="f_small"),
        b.script("big", "route = 'big'"),
        b.script("small", "route = 'small'"),
        b.end("end_big"),
        b.end("end_small"),
        b.flow("f0", "start", "split"),
        f'<bpmn:sequenceFlow id="f_big" sourceRef="split" targetRef="big">'
        f'<bpmn:conditionExpression xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:type="bpmn:tFormalExpression">{condition}</bpmn:conditionExpression>'
        "</bpmn:sequenceFlow>",
        b.flow("f_small", "split", "small"),
        b.flow("f1", "big", "end_big"),
        b.flow("f2", "small", "end_small"),
    )
    gf.deploy(text, "juel.bpmn")
    _, data = _statuses(gf, gf.start("juel", amount=amount, approved=approved, note="").id)
    assert data["route"] == route
