"""Models drawn for Camunda and Flowable that govflow now runs as those engines do.

Each test is one behaviour a designer importing such a model would notice; the conformance
corpus (conformance/) holds the engines' own test models that exposed them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.bpmn.juel import split_composite
from engine.bpmn.lint import lint_sources
from engine.bpmn.parser import SourceFile
from engine.bpmn.timers import QuartzCron, cron_cycle
from engine.runtime import clock
from engine.runtime.scheduler import Scheduler
from tests import bpmn as b


def _mi_user(id: str, name: str, loop: str, **camunda: str) -> str:
    attrs = "".join(f' camunda:{key}="{value}"' for key, value in camunda.items())
    return f'<bpmn:userTask id="{id}" name="{name}"{attrs}>{loop}</bpmn:userTask>'


def test_loop_counter_in_the_assignee_gives_each_instance_its_own_assignee(gf):
    loop = (
        '<bpmn:multiInstanceLoopCharacteristics isSequential="false">'
        "<bpmn:loopCardinality>${3}</bpmn:loopCardinality>"
        "</bpmn:multiInstanceLoopCharacteristics>"
    )
    gf.deploy(
        b.doc(
            "review",
            b.start(),
            _mi_user("check", "Check", loop, assignee="clerk_${loopCounter}"),
            b.end(),
            *b.chain("start", "check", "end"),
        ),
        "review.bpmn",
    )
    case = gf.start("review").id
    tasks = gf.open_tasks(case)
    assert sorted(t.assignee for t in tasks) == ["clerk_0", "clerk_1", "clerk_2"]
    for task in tasks:
        gf.complete(task.id, gf.clerk(task.assignee, "amr"))
    detail = gf.detail(case)
    assert detail["status"] == "completed"
    assert "loopCounter" not in detail["variables"]  # local to each instance, as in Camunda


def test_a_completion_condition_reads_the_instance_counts(gf):
    loop = (
        '<bpmn:multiInstanceLoopCharacteristics isSequential="false">'
        "<bpmn:loopCardinality>${4}</bpmn:loopCardinality>"
        "<bpmn:completionCondition>${nrOfCompletedInstances/nrOfInstances &gt;= 0.5}"
        "</bpmn:completionCondition></bpmn:multiInstanceLoopCharacteristics>"
    )
    gf.deploy(
        b.doc(
            "vote",
            b.start(),
            _mi_user("ballot", "Ballot", loop, candidateGroups="amr"),
            b.end(),
            *b.chain("start", "ballot", "end"),
        ),
        "vote.bpmn",
    )
    case = gf.start("vote").id
    tasks = gf.open_tasks(case)
    assert len(tasks) == 4
    gf.complete(tasks[0].id, gf.clerk("li", "amr"))
    assert gf.detail(case)["status"] != "completed"
    gf.complete(tasks[1].id, gf.clerk("li", "amr"))
    assert gf.detail(case)["status"] == "completed"
    assert gf.open_tasks(case) == []


def test_an_element_variable_named_by_name_alone_holds_each_item(gf):
    loop = (
        '<bpmn:multiInstanceLoopCharacteristics isSequential="false">'
        "<bpmn:loopDataInputRef>reviewers</bpmn:loopDataInputRef>"
        '<bpmn:inputDataItem name="reviewer" />'
        "</bpmn:multiInstanceLoopCharacteristics>"
    )
    gf.deploy(
        b.doc(
            "named_item",
            b.start(),
            _mi_user("check", "Check", loop, assignee="${reviewer}"),
            b.end(),
            *b.chain("start", "check", "end"),
        ),
        "named_item.bpmn",
    )
    case = gf.start("named_item", reviewers=["wang", "li"]).id
    assert sorted(t.assignee for t in gf.open_tasks(case)) == ["li", "wang"]


def test_a_flowable_collection_starts_one_instance_per_item(gf):
    text = b.doc(
        "flowable_mi",
        b.start(),
        '<bpmn:userTask id="multi" name="Multi" camunda:candidateGroups="amr">'
        '<bpmn:multiInstanceLoopCharacteristics isSequential="true" '
        'flowable:collection="${items}" flowable:elementVariable="item" />'
        "</bpmn:userTask>",
        b.end(),
        *b.chain("start", "multi", "end"),
    ).replace("<bpmn:definitions ", '<bpmn:definitions xmlns:flowable="http://flowable.org/bpmn" ')
    gf.deploy(text, "flowable_mi.bpmn")
    assert gf.detail(gf.start("flowable_mi", items=[]).id)["status"] == "completed"
    case = gf.start("flowable_mi", items=["a", "b"]).id
    for _ in range(2):  # one at a time; the item is local to each instance
        [task] = gf.open_tasks(case)
        gf.complete(task.id, gf.clerk("li", "amr"))
    detail = gf.detail(case)
    assert detail["status"] == "completed"
    assert "item" not in detail["variables"]


def test_elements_named_start_and_end_do_not_break_the_process(gf):
    gf.deploy(
        b.doc(
            "reserved",
            b.start("Start"),
            b.user("Root", "Review", candidateGroups="amr"),
            b.end("End"),
            *b.chain("Start", "Root", "End"),
        ),
        "reserved.bpmn",
    )
    case = gf.start("reserved").id
    [task] = gf.open_tasks(case)
    assert task.name == "Review"
    gf.complete(task.id, gf.clerk("li", "amr"))
    assert gf.detail(case)["status"] == "completed"


def test_a_process_without_an_end_event_ends_where_its_flow_stops(gf):
    gf.deploy(
        b.doc(
            "no_end",
            b.start(),
            b.user("last", "Last step", candidateGroups="amr"),
            *b.chain("start", "last"),
        ),
        "no_end.bpmn",
    )
    case = gf.start("no_end").id
    [task] = gf.open_tasks(case)
    gf.complete(task.id, gf.clerk("li", "amr"), answer=42)
    detail = gf.detail(case)
    assert (detail["status"], detail["variables"]["answer"]) == ("completed", 42)


def test_composite_expressions_split_into_text_and_expressions():
    assert split_composite("kermit_${loopCounter}") == [
        (False, "kermit_"),
        (True, "${loopCounter}"),
    ]
    assert split_composite('${a + "}"} and #{b}') == [
        (True, '${a + "}"}'),
        (False, " and "),
        (True, "#{b}"),
    ]
    assert split_composite("no ${end") == [(False, "no ${end")]


def _event_subprocess(start_inner: str, interrupting: bool) -> str:
    flag = "true" if interrupting else "false"
    return (
        '<bpmn:subProcess id="on_event" triggeredByEvent="true">'
        f'<bpmn:startEvent id="event_start" isInterrupting="{flag}">{start_inner}</bpmn:startEvent>'
        + b.user("handle", "Handle", candidateGroups="amr")
        + b.end("event_end")
        + "".join(b.chain("event_start", "handle", "event_end", prefix="e"))
        + "</bpmn:subProcess>"
    )


_TIMER_START = "<bpmn:timerEventDefinition><bpmn:timeDuration>P1D</bpmn:timeDuration>" + (
    "</bpmn:timerEventDefinition>"
)


def test_an_interrupting_event_subprocess_cancels_the_main_flow(gf, app):
    gf.deploy(
        b.doc(
            "interrupt",
            b.start(),
            b.user("work", "Work", candidateGroups="amr"),
            b.end(),
            *b.chain("start", "work", "end"),
            _event_subprocess(_TIMER_START, True),
        ),
        "interrupt.bpmn",
    )
    frozen = clock.FrozenClock(datetime(2026, 9, 1, 1, 0, tzinfo=UTC))
    with clock.use_clock(frozen):
        case = gf.start("interrupt").id
        frozen.set(datetime(2026, 9, 2, 1, 1, tzinfo=UTC))
        assert Scheduler(app).tick() == 1
    assert [t.element_id for t in gf.open_tasks(case)] == ["handle"]  # 'work' was cancelled
    gf.complete(gf.task(case, "handle").id, gf.clerk("li", "amr"))
    assert gf.detail(case)["status"] == "completed"


def test_a_case_does_not_wait_for_an_event_subprocess_that_never_started(gf):
    gf.deploy(
        b.doc(
            "reminder",
            b.start(),
            b.user("work", "Work", candidateGroups="amr"),
            b.end(),
            *b.chain("start", "work", "end"),
            _event_subprocess(_TIMER_START, False),
        ),
        "reminder.bpmn",
    )
    case = gf.start("reminder").id
    gf.complete(gf.task(case, "work").id, gf.clerk("li", "amr"))
    assert gf.detail(case)["status"] == "completed"  # the pending timer start is withdrawn


def test_a_quartz_cron_cycle_fires_on_the_clock():
    now = datetime(2026, 11, 27, 14, 53, 49, tzinfo=UTC)
    assert cron_cycle("0 0/5 * * * ?", now).endswith("/PT5M")
    start = datetime.fromisoformat(cron_cycle("0 0/5 * * * ?", now).split("/")[1])
    assert start == datetime(2026, 11, 27, 14, 55, tzinfo=UTC)  # aligned to the clock
    assert cron_cycle("0 0 */2 * * ?", now).endswith("/PT2H")
    assert QuartzCron("0 30 9 * * ?").period() == timedelta(days=1)
    with pytest.raises(ValueError, match="irregular"):
        cron_cycle("0 0 9 ? * MON-FRI", now)  # weekdays only: no single interval
    assert QuartzCron("0 0 9 ? * MON-FRI").next_after(now) == datetime(
        2026, 11, 30, 9, 0, tzinfo=UTC
    )


def test_a_cron_timer_in_an_event_subprocess_repeats(gf, app):
    cron = (
        "<bpmn:timerEventDefinition><bpmn:timeCycle>0 0/5 * * * ?</bpmn:timeCycle>"
        "</bpmn:timerEventDefinition>"
    )
    gf.deploy(
        b.doc(
            "polling",
            b.start(),
            b.user("work", "Work", candidateGroups="amr"),
            b.end(),
            *b.chain("start", "work", "end"),
            _event_subprocess(cron, False),
        ),
        "polling.bpmn",
    )
    frozen = clock.FrozenClock(datetime(2026, 9, 1, 1, 2, tzinfo=UTC))
    with clock.use_clock(frozen):
        case = gf.start("polling").id
        frozen.set(datetime(2026, 9, 1, 1, 5, 1, tzinfo=UTC))  # the first 5-minute mark
        assert Scheduler(app).tick() == 1
        frozen.set(datetime(2026, 9, 1, 1, 10, 1, tzinfo=UTC))
        assert Scheduler(app).tick() == 1
    handled = [t.element_id for t in gf.open_tasks(case)]
    assert sorted(handled) == ["handle", "handle", "work"]


def _cron_start(cron: str) -> str:
    return b.doc(
        "weekday_sweep",
        b.start(
            inner=f"<bpmn:timerEventDefinition><bpmn:timeCycle>{cron}</bpmn:timeCycle>"
            "</bpmn:timerEventDefinition>"
        ),
        b.user("sweep", "汇总未评价办件", candidateGroups="center"),
        b.end(),
        *b.chain("start", "sweep", "end"),
    )


def test_a_cron_on_a_process_start_timer_starts_a_case_at_each_of_its_times(gf, app):
    """Weekdays at 09:00 (the server's time zone, as in Camunda): no single interval, so
    the scheduler reads the cron itself."""

    def local(*fields: int) -> datetime:
        return datetime(*fields).astimezone().astimezone(UTC)

    frozen = clock.FrozenClock(local(2026, 11, 27, 12, 0))  # a Friday, noon
    with clock.use_clock(frozen):
        gf.deploy(_cron_start("0 0 9 ? * MON-FRI"), "sweep.bpmn")
        scheduler = Scheduler(app)
        frozen.set(local(2026, 11, 30, 8, 59))  # Monday before nine: nothing at the weekend
        assert scheduler.tick() == 0
        frozen.set(local(2026, 11, 30, 9, 0, 1))
        assert scheduler.tick() == 1
        assert scheduler.tick() == 0
        frozen.set(local(2026, 12, 1, 9, 0, 1))
        assert scheduler.tick() == 1
    assert len(gf.worklist(gf.clerk("wang", "center"))) == 2


def test_an_unreadable_cron_on_a_process_start_timer_is_refused_with_a_reason():
    problems = lint_sources([SourceFile("cron.bpmn", _cron_start("0 0 25 * * ?").encode())])
    assert any("outside 0-23" in p.message for p in problems), problems


def test_a_link_throw_continues_at_its_catch(gf):
    link = '<bpmn:linkEventDefinition name="Jump" />'
    gf.deploy(
        b.doc(
            "links",
            b.start(),
            f'<bpmn:intermediateThrowEvent id="go">{link}</bpmn:intermediateThrowEvent>',
            f'<bpmn:intermediateCatchEvent id="land">{link}</bpmn:intermediateCatchEvent>',
            b.user("after", "After the jump", candidateGroups="amr"),
            b.end(),
            b.flow("f1", "start", "go"),
            *b.chain("land", "after", "end"),
        ),
        "links.bpmn",
    )
    case = gf.start("links").id
    assert [t.element_id for t in gf.open_tasks(case)] == ["after"]


def test_a_service_task_with_an_expression_runs_it_and_moves_on(gf):
    gf.deploy(
        b.doc(
            "expr_service",
            b.start(),
            '<bpmn:serviceTask id="calc" camunda:expression="${amount * 2}" '
            'camunda:resultVariable="doubled" />',
            b.end(),
            *b.chain("start", "calc", "end"),
        ),
        "expr_service.bpmn",
    )
    detail = gf.detail(gf.start("expr_service", amount=21).id)
    assert (detail["status"], detail["variables"]["doubled"]) == ("completed", 42)


def test_camunda_in_and_out_mappings_pass_only_what_they_name(gf):
    called = b.process(
        "called",
        b.start("c_start"),
        b.script("c_work", "result = given * 10"),
        b.end("c_end"),
        *b.chain("c_start", "c_work", "c_end", prefix="c"),
    )
    caller = b.process(
        "caller",
        b.start(),
        '<bpmn:callActivity id="call" calledElement="called"><bpmn:extensionElements>'
        '<camunda:in source="amount" target="given" />'
        '<camunda:in sourceExpression="${amount + 1}" target="next" />'
        '<camunda:out source="result" target="answer" />'
        "</bpmn:extensionElements></bpmn:callActivity>",
        b.end(),
        *b.chain("start", "call", "end"),
    )
    gf.deploy(b.definitions(called, caller), "mapped_call.bpmn")
    detail = gf.detail(gf.start("caller", amount=4, private="kept here").id)
    assert detail["status"] == "completed"
    variables = detail["variables"]
    assert variables["answer"] == 40
    assert "given" not in variables and "result" not in variables  # only the mapped come back
    assert variables["private"] == "kept here"


def test_the_escalation_code_is_given_to_the_named_variable(gf):
    text = b.definitions(
        '<bpmn:escalation id="late" escalationCode="LATE" />',
        b.process(
            "escalating",
            b.start(),
            '<bpmn:subProcess id="sub">'
            + b.start("s_start")
            + '<bpmn:endEvent id="s_end"><bpmn:escalationEventDefinition escalationRef="late" />'
            + "</bpmn:endEvent>"
            + b.flow("s1", "s_start", "s_end")
            + "</bpmn:subProcess>",
            '<bpmn:boundaryEvent id="caught" attachedToRef="sub">'
            '<bpmn:escalationEventDefinition escalationRef="late" '
            'camunda:escalationCodeVariable="why" /></bpmn:boundaryEvent>',
            b.end(),
            b.end("end_caught"),
            *b.chain("start", "sub", "end"),
            b.flow("f_caught", "caught", "end_caught"),
        ),
    )
    gf.deploy(text, "escalating.bpmn")
    detail = gf.detail(gf.start("escalating").id)
    assert (detail["status"], detail["variables"].get("why")) == ("completed", "LATE")


def test_a_thrown_message_carries_its_camunda_expression(gf):
    definition = (
        '<bpmn:messageEventDefinition messageRef="decided" camunda:expression="decision" '
        'camunda:resultVariable="answer" />'
    )
    gf.deploy(
        b.definitions(
            '<bpmn:message id="decided" name="decided" />',
            b.process(
                "tell",
                b.start(),
                b.par("split"),
                '<bpmn:intermediateCatchEvent id="hear"><bpmn:messageEventDefinition '
                'messageRef="decided" /></bpmn:intermediateCatchEvent>',
                f'<bpmn:intermediateThrowEvent id="say">{definition}</bpmn:intermediateThrowEvent>',
                b.par("join"),
                b.end(),
                b.flow("f0", "start", "split"),
                b.flow("f1", "split", "hear"),
                b.flow("f2", "split", "say"),
                b.flow("f3", "hear", "join"),
                b.flow("f4", "say", "join"),
                b.flow("f5", "join", "end"),
            ),
        ),
        "tell.bpmn",
    )
    detail = gf.detail(gf.start("tell", decision="Yes").id)
    assert (detail["status"], detail["variables"].get("answer")) == ("completed", "Yes")


def test_a_start_event_with_several_messages_starts_on_any_of_them(gf):
    gf.deploy(
        b.definitions(
            '<bpmn:message id="m1" name="by_post" /><bpmn:message id="m2" name="by_mail" />',
            b.process(
                "either",
                b.start(
                    inner='<bpmn:messageEventDefinition messageRef="m1" />'
                    '<bpmn:messageEventDefinition messageRef="m2" />'
                ),
                b.end(),
                b.flow("f", "start", "end"),
            ),
        ),
        "either.bpmn",
    )
    from engine.runtime import messages

    delivery = messages.deliver(gf.app.runner, gf.ops, "by_mail", {"sender": "li"})
    assert delivery.started
    assert gf.detail(delivery.instance_id)["status"] == "completed"


def test_data_set_on_a_branch_that_just_stops_is_kept(gf):
    gf.deploy(
        b.doc(
            "side_branch",
            b.start(),
            b.par("split"),
            b.script("note", "noted = True"),
            b.user("work", "Work", candidateGroups="amr"),
            b.end(),
            b.flow("f0", "start", "split"),
            b.flow("f1", "split", "note"),  # 'note' has no outgoing flow
            b.flow("f2", "split", "work"),
            b.flow("f3", "work", "end"),
        ),
        "side_branch.bpmn",
    )
    case = gf.start("side_branch").id
    gf.complete(gf.task(case, "work").id, gf.clerk("li", "amr"))
    detail = gf.detail(case)
    assert (detail["status"], detail["variables"].get("noted")) == ("completed", True)


def test_spiff_pre_and_post_scripts_run_around_a_task(gf):
    text = b.doc(
        "scripted",
        b.start(),
        '<bpmn:task id="calc"><bpmn:extensionElements>'
        "<spiffworkflow:preScript>z = a * 2</spiffworkflow:preScript>"
        "<spiffworkflow:postScript>c = z + 1</spiffworkflow:postScript>"
        "</bpmn:extensionElements></bpmn:task>",
        b.end(),
        *b.chain("start", "calc", "end"),
    ).replace(
        "<bpmn:definitions ",
        '<bpmn:definitions xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" ',
    )
    gf.deploy(text, "scripted.bpmn")
    variables = gf.detail(gf.start("scripted", a=5).id)["variables"]
    assert (variables["z"], variables["c"]) == (10, 11)


def test_flowable_terminate_all_in_an_event_subprocess_ends_the_case(gf, app):
    end = (
        '<bpmn:endEvent id="event_end"><bpmn:terminateEventDefinition '
        'flowable:terminateAll="true" /></bpmn:endEvent>'
    )
    event_sub = (
        '<bpmn:subProcess id="on_event" triggeredByEvent="true">'
        f'<bpmn:startEvent id="event_start" isInterrupting="false">{_TIMER_START}'
        "</bpmn:startEvent>" + end + b.flow("e1", "event_start", "event_end") + "</bpmn:subProcess>"
    )
    text = b.doc(
        "stop_all",
        b.start(),
        b.user("work", "Work", candidateGroups="amr"),
        b.end(),
        *b.chain("start", "work", "end"),
        event_sub,
    ).replace("<bpmn:definitions ", '<bpmn:definitions xmlns:flowable="http://flowable.org/bpmn" ')
    gf.deploy(text, "stop_all.bpmn")
    frozen = clock.FrozenClock(datetime(2026, 9, 1, 1, 0, tzinfo=UTC))
    with clock.use_clock(frozen):
        case = gf.start("stop_all").id
        frozen.set(datetime(2026, 9, 2, 1, 1, tzinfo=UTC))
        assert Scheduler(app).tick() == 1
    assert gf.detail(case)["status"] == "completed"
    assert gf.open_tasks(case) == []


def test_a_spiff_error_payload_lands_in_the_named_variable(gf):
    error = (
        '<bpmn:error id="failed" name="failed" errorCode="E1"><bpmn:extensionElements>'
        "<spiffworkflow:payloadExpression>reason</spiffworkflow:payloadExpression>"
        "<spiffworkflow:variableName>why</spiffworkflow:variableName>"
        "</bpmn:extensionElements></bpmn:error>"
    )
    text = b.definitions(
        error,
        b.process(
            "failing",
            b.start(),
            '<bpmn:subProcess id="sub">'
            + b.start("s_start")
            + '<bpmn:endEvent id="s_end"><bpmn:errorEventDefinition errorRef="failed" />'
            + "</bpmn:endEvent>"
            + b.flow("s1", "s_start", "s_end")
            + "</bpmn:subProcess>",
            '<bpmn:boundaryEvent id="caught" attachedToRef="sub">'
            '<bpmn:errorEventDefinition errorRef="failed" /></bpmn:boundaryEvent>',
            b.end(),
            b.end("end_caught"),
            *b.chain("start", "sub", "end"),
            b.flow("f_caught", "caught", "end_caught"),
        ),
    ).replace(
        "<bpmn:definitions ",
        '<bpmn:definitions xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" ',
    )
    gf.deploy(text, "failing.bpmn")
    detail = gf.detail(gf.start("failing", reason="no stamp").id)
    assert (detail["status"], detail["variables"].get("why")) == ("completed", "no stamp")


def test_a_specific_error_catch_wins_over_a_catch_all(gf):
    text = b.definitions(
        '<bpmn:error id="e1" name="e1" errorCode="1" />',
        b.process(
            "specific",
            b.start(),
            '<bpmn:subProcess id="sub">'
            + b.start("s_start")
            + '<bpmn:endEvent id="s_end"><bpmn:errorEventDefinition errorRef="e1" />'
            + "</bpmn:endEvent>"
            + b.flow("s1", "s_start", "s_end")
            + "</bpmn:subProcess>",
            '<bpmn:boundaryEvent id="any_error" attachedToRef="sub">'
            "<bpmn:errorEventDefinition /></bpmn:boundaryEvent>",
            '<bpmn:boundaryEvent id="error_1" attachedToRef="sub">'
            '<bpmn:errorEventDefinition errorRef="e1" /></bpmn:boundaryEvent>',
            b.script("on_any", "route = 'any'"),
            b.script("on_1", "route = 'specific'"),
            b.end(),
            b.end("end_any"),
            b.end("end_1"),
            *b.chain("start", "sub", "end"),
            *b.chain("any_error", "on_any", "end_any", prefix="a"),
            *b.chain("error_1", "on_1", "end_1", prefix="s"),
        ),
    )
    gf.deploy(text, "specific.bpmn")
    detail = gf.detail(gf.start("specific").id)
    assert (detail["status"], detail["variables"].get("route")) == ("completed", "specific")


def test_a_signal_end_event_sends_its_signal(gf):
    gf.deploy(
        b.definitions(
            '<bpmn:signal id="done" name="done" />',
            b.process(
                "signal_end",
                b.start(),
                b.par("split"),
                '<bpmn:endEvent id="shout"><bpmn:signalEventDefinition signalRef="done" />'
                "</bpmn:endEvent>",
                '<bpmn:intermediateCatchEvent id="hear"><bpmn:signalEventDefinition '
                'signalRef="done" /></bpmn:intermediateCatchEvent>',
                b.user("after", "After the signal", candidateGroups="amr"),
                b.end(),
                b.flow("f0", "start", "split"),
                b.flow("f1", "split", "shout"),
                b.flow("f2", "split", "hear"),
                *b.chain("hear", "after", "end"),
            ),
        ),
        "signal_end.bpmn",
    )
    case = gf.start("signal_end").id
    assert [t.element_id for t in gf.open_tasks(case)] == ["after"]


_CORRELATED = """
<bpmn:collaboration id="collab">
  <bpmn:participant id="office" processRef="applicant_case" />
  <bpmn:correlationKey name="applicant"><bpmn:correlationPropertyRef>applicant_id</bpmn:correlationPropertyRef>
  </bpmn:correlationKey>
</bpmn:collaboration>
<bpmn:message id="request" name="request" />
<bpmn:message id="reply" name="reply" />
<bpmn:correlationProperty id="applicant_id" name="applicant">
  <bpmn:correlationPropertyRetrievalExpression messageRef="request">
    <bpmn:messagePath>applicant</bpmn:messagePath>
  </bpmn:correlationPropertyRetrievalExpression>
  <bpmn:correlationPropertyRetrievalExpression messageRef="reply">
    <bpmn:messagePath>about</bpmn:messagePath>
  </bpmn:correlationPropertyRetrievalExpression>
</bpmn:correlationProperty>
"""


def test_a_message_from_outside_is_correlated_by_its_payload(gf):
    from engine.errors import Conflict
    from engine.runtime import messages

    gf.deploy(
        b.definitions(
            _CORRELATED,
            b.process(
                "applicant_case",
                b.start(),
                '<bpmn:sendTask id="ask" messageRef="request" />',
                '<bpmn:intermediateCatchEvent id="answer"><bpmn:messageEventDefinition '
                'messageRef="reply" /></bpmn:intermediateCatchEvent>',
                b.end(),
                *b.chain("start", "ask", "answer", "end"),
            ),
        ),
        "correlated.bpmn",
    )
    case = gf.start("applicant_case", applicant="A-17").id
    with pytest.raises(Conflict):  # a reply about someone else is not this case's
        messages.deliver(gf.app.runner, gf.ops, "reply", {"about": "B-2"})
    messages.deliver(gf.app.runner, gf.ops, "reply", {"about": "A-17"})
    assert gf.detail(case)["status"] == "completed"


def test_an_error_in_one_parallel_instance_ends_them_all_through_the_boundary(gf):
    text = b.definitions(
        '<bpmn:error id="bad" name="bad" errorCode="BAD" />',
        b.process(
            "mi_error",
            b.start(),
            '<bpmn:subProcess id="each">'
            '<bpmn:multiInstanceLoopCharacteristics isSequential="false">'
            "<bpmn:loopCardinality>3</bpmn:loopCardinality>"
            "</bpmn:multiInstanceLoopCharacteristics>"
            + b.start("e_start")
            + b.user("check", "Check", candidateGroups="amr")
            + b.xor("ok", default="e_fine")
            + b.end("e_end")
            + '<bpmn:endEvent id="e_bad"><bpmn:errorEventDefinition errorRef="bad" />'
            + "</bpmn:endEvent>"
            + "".join(b.chain("e_start", "check", "ok", prefix="e"))
            + b.flow("e_fine", "ok", "e_end")
            + b.flow("e_fail", "ok", "e_bad", "failed == True")
            + "</bpmn:subProcess>",
            '<bpmn:boundaryEvent id="caught" attachedToRef="each">'
            "<bpmn:errorEventDefinition /></bpmn:boundaryEvent>",
            b.end(),
            b.end("end_caught"),
            *b.chain("start", "each", "end"),
            b.flow("f_caught", "caught", "end_caught"),
        ),
    )
    gf.deploy(text, "mi_error.bpmn")
    case = gf.start("mi_error", failed=False).id
    tasks = gf.open_tasks(case)
    assert len(tasks) == 3
    gf.complete(tasks[0].id, gf.clerk("li", "amr"), failed=True)
    detail = gf.detail(case)
    assert (detail["status"], gf.open_tasks(case)) == ("completed", [])


def test_a_parallel_multiple_start_waits_in_its_case_for_every_message(gf):
    from engine.runtime import messages

    gf.deploy(
        b.definitions(
            '<bpmn:message id="m1" name="form_in" /><bpmn:message id="m2" name="fee_paid" />',
            b.process(
                "both",
                '<bpmn:startEvent id="start" parallelMultiple="true">'
                '<bpmn:messageEventDefinition messageRef="m1" />'
                '<bpmn:messageEventDefinition messageRef="m2" /></bpmn:startEvent>',
                b.end(),
                b.flow("f", "start", "end"),
            ),
        ),
        "both.bpmn",
    )
    first = messages.deliver(gf.app.runner, gf.ops, "form_in", {})
    assert first.started and gf.detail(first.instance_id)["status"] != "completed"
    second = messages.deliver(gf.app.runner, gf.ops, "fee_paid", {})
    assert (second.instance_id, second.started) == (first.instance_id, False)
    assert gf.detail(first.instance_id)["status"] == "completed"


def test_an_error_nobody_catches_is_an_incident_not_a_quiet_end(gf):
    gf.deploy(
        b.definitions(
            '<bpmn:error id="lost" name="lost" errorCode="LOST" />',
            b.process(
                "uncaught",
                b.start(),
                '<bpmn:endEvent id="fail"><bpmn:errorEventDefinition errorRef="lost" />'
                "</bpmn:endEvent>",
                b.flow("f", "start", "fail"),
            ),
        ),
        "uncaught.bpmn",
    )
    detail = gf.detail(gf.start("uncaught").id)
    assert detail["status"] == "error"
    [incident] = detail["incidents"]
    assert "is not caught" in incident["message"] and "LOST" in incident["message"]
