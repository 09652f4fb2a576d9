"""Human tasks: who sees them, who may claim and complete them, and what refusals change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.errors import Conflict, Forbidden, InvalidInput
from engine.runtime import clock, commands, queries
from tests import bpmn as b

TWO_STEP = b.doc(
    "two_step",
    b.start(),
    b.user("accept", "受理", candidateGroups="center"),
    b.user("approve", "审批", candidateGroups="amr"),
    b.end(),
    *b.chain("start", "accept", "approve", "end"),
)


# One task whose department, candidate user, due date (days from now, or none) and priority
# come from the start variables: queues in any order a test needs.
QUEUED = b.doc(
    "queued",
    b.start(),
    b.user(
        "work",
        "办理",
        candidateGroups="${dept}",
        candidateUsers="${person}",
        dueDate="${now() + timedelta(days=days) if days is not None else None}",
        priority="${prio}",
    ),
    b.end(),
    *b.chain("start", "work", "end"),
)


@pytest.fixture
def people(gf):
    return {
        "front": gf.clerk("wang", "center"),
        "amr": gf.clerk("li", "amr"),
        "amr2": gf.clerk("liu", "amr"),
        "tax": gf.clerk("zhou", "tax"),
    }


def test_a_task_shows_up_only_in_its_departments_worklist(gf, people):
    gf.deploy(TWO_STEP)
    instance = gf.start("two_step")
    assert [t.element_id for t in gf.worklist(people["front"])] == ["accept"]
    assert gf.worklist(people["amr"]) == []
    gf.complete(gf.task(instance.id, "accept").id, people["front"])
    assert [t.element_id for t in gf.worklist(people["amr"])] == ["approve"]
    assert [t.element_id for t in gf.worklist(people["amr2"])] == ["approve"]
    assert gf.worklist(people["tax"]) == []
    assert gf.worklist(people["front"]) == []


def test_a_clerk_of_another_department_cannot_claim_or_complete(gf, people):
    gf.deploy(TWO_STEP)
    instance = gf.start("two_step")
    task = gf.task(instance.id, "accept")
    with pytest.raises(Forbidden, match="belongs to center"):
        gf.claim(task.id, people["tax"])
    with pytest.raises(Forbidden):
        gf.complete(task.id, people["tax"])
    assert gf.task(instance.id, "accept").assignee is None


def test_claimed_tasks_are_refused_to_colleagues_until_unclaimed(gf, people, app):
    gf.deploy(TWO_STEP)
    instance = gf.start("two_step")
    gf.complete(gf.task(instance.id, "accept").id, people["front"])
    task = gf.task(instance.id, "approve")
    gf.claim(task.id, people["amr"])
    with pytest.raises(Conflict, match="already claimed by li"):
        gf.claim(task.id, people["amr2"])
    with pytest.raises(Conflict, match="claimed by li"):
        gf.complete(task.id, people["amr2"])
    assert [t.element_id for t in gf.worklist(people["amr"], "mine")] == ["approve"]
    app.runner.execute(commands.UnclaimTask(task.id), people["amr"])
    gf.claim(task.id, people["amr2"])
    gf.complete(task.id, people["amr2"])
    assert gf.detail(instance.id)["status"] == "completed"


def test_claiming_your_own_task_again_changes_nothing(gf, people):
    gf.deploy(TWO_STEP)
    instance = gf.start("two_step")
    task = gf.task(instance.id, "accept")
    gf.claim(task.id, people["front"])
    before = gf.audit_count(instance.id)
    gf.claim(task.id, people["front"])
    assert gf.audit_count(instance.id) == before


def test_completing_twice_is_refused_and_changes_nothing(gf, people):
    gf.deploy(TWO_STEP)
    instance = gf.start("two_step")
    task = gf.task(instance.id, "accept")
    gf.complete(task.id, people["front"], note="first")
    row = gf.instance(instance.id)
    audit = gf.audit_count(instance.id)
    with pytest.raises(Conflict, match="already completed by wang"):
        gf.complete(task.id, people["front"], note="second")
    after = gf.instance(instance.id)
    assert (after.version, after.document, after.variables) == (
        row.version,
        row.document,
        row.variables,
    )
    assert gf.audit_count(instance.id) == audit
    assert gf.detail(instance.id)["variables"]["note"] == "first"


def test_ops_assigns_and_the_assignee_completes(gf, people, app):
    gf.deploy(TWO_STEP)
    instance = gf.start("two_step")
    task = gf.task(instance.id, "accept")
    with pytest.raises(Forbidden):
        app.runner.execute(commands.AssignTask(task.id, "zhou"), people["amr"])
    app.runner.execute(commands.AssignTask(task.id, "zhou"), gf.ops)
    assert gf.task(instance.id, "accept").assignee == "zhou"
    with pytest.raises(Conflict):
        gf.complete(task.id, people["front"])
    gf.complete(task.id, people["tax"])
    assert [t.element_id for t in gf.open_tasks(instance.id)] == ["approve"]


def test_a_clerk_may_hand_a_task_to_a_colleague_but_not_outside_the_department(gf, people, app):
    gf.deploy(TWO_STEP)
    instance = gf.start("two_step")
    gf.complete(gf.task(instance.id, "accept").id, people["front"])
    task = gf.task(instance.id, "approve")
    with pytest.raises(Forbidden, match="not a candidate"):
        app.runner.execute(commands.AssignTask(task.id, "zhou"), people["amr"])
    with pytest.raises(InvalidInput, match="no active user"):
        app.runner.execute(commands.AssignTask(task.id, "nobody"), people["amr"])
    app.runner.execute(commands.AssignTask(task.id, "liu"), people["amr"])
    assert gf.task(instance.id, "approve").assignee == "liu"


def test_camunda_assignment_attributes_are_honoured(gf, people):
    gf.deploy(
        b.doc(
            "assigned",
            b.start(),
            b.user(
                "special",
                "专人办理",
                candidateGroups="amr, ${'center' if vip else 'tax'}",
                candidateUsers="zhou",
                assignee="${handler}",
                formKey="special_form",
                dueDate="P2D",
                followUpDate="${now() + timedelta(hours=4)}",
                priority="${80 if vip else 40}",
            ),
            b.end(),
            *b.chain("start", "special", "end"),
        ),
        forms={"special_form": {"type": "object"}},
    )
    moment = datetime(2026, 9, 1, 1, 0, tzinfo=UTC)
    with clock.use_clock(clock.FrozenClock(moment)):
        instance = gf.start("assigned", vip=True, handler="li")
    task = gf.task(instance.id, "special")
    assert task.candidate_groups == ["amr", "center"]
    assert task.candidate_users == ["zhou"]
    assert task.assignee == "li"
    assert task.form_key == "special_form"
    assert task.priority == 80
    assert task.due_at == moment + timedelta(days=2)
    assert task.follow_up_at == moment + timedelta(hours=4)
    # candidate user and candidate group both see it; the assignee has it as "mine"
    assert [t.id for t in gf.worklist(people["tax"])] == [task.id]
    assert [t.id for t in gf.worklist(people["amr"], "mine")] == [task.id]


def test_a_lane_named_after_a_department_gives_the_candidate_group(gf, people):
    lanes = (
        '<bpmn:laneSet id="ls"><bpmn:lane id="l1" name="综合受理窗口 (center)">'
        "<bpmn:flowNodeRef>start</bpmn:flowNodeRef><bpmn:flowNodeRef>accept</bpmn:flowNodeRef>"
        '</bpmn:lane><bpmn:lane id="l2" name="市场监督管理局">'
        "<bpmn:flowNodeRef>approve</bpmn:flowNodeRef><bpmn:flowNodeRef>end</bpmn:flowNodeRef>"
        "</bpmn:lane></bpmn:laneSet>\n"
    )
    gf.deploy(
        b.doc(
            "laned",
            b.start(),
            b.user("accept", "受理"),
            b.user("approve", "审批"),
            b.end(),
            *b.chain("start", "accept", "approve", "end"),
            lanes=lanes,
        )
    )
    instance = gf.start("laned")
    assert gf.task(instance.id, "accept").candidate_groups == ["center"]
    gf.complete(gf.task(instance.id, "accept").id, people["front"])
    assert gf.task(instance.id, "approve").candidate_groups == ["amr"]


def test_an_assignment_expression_that_fails_raises_an_incident_on_that_task(gf, people):
    gf.deploy(
        b.doc(
            "broken_assign",
            b.start(),
            b.user("t", "任务", candidateGroups="amr", assignee="${missing_variable}"),
            b.end(),
            *b.chain("start", "t", "end"),
        )
    )
    instance = gf.start("broken_assign")
    detail = gf.detail(instance.id)
    assert detail["status"] == "error"
    incident = detail["incidents"][0]
    assert incident["element_id"] == "t"
    assert "camunda:assignee" in incident["message"]
    assert "missing_variable" in incident["message"]
    # the task is still there for the department to pick up
    assert gf.task(instance.id, "t").candidate_groups == ["amr"]


def test_a_clerk_in_two_departments_sees_the_soonest_due_first_across_both(gf, people):
    """The worklist merges the clerk's departments and personal candidacy in one order:
    due date (none last), then priority, then age; `limit` cuts that merged order."""
    gf.deploy(QUEUED)
    both = gf.clerk("zhao", "amr", "tax")
    moment = datetime(2026, 9, 1, 1, 0, tzinfo=UTC)
    frozen = clock.FrozenClock(moment)
    cases = {}
    with clock.use_clock(frozen):
        for name, dept, person, days, prio in [
            ("amr_3d", "amr", "", 3, 50),
            ("tax_1d", "tax", "", 1, 50),
            ("amr_none", "amr", "", None, 90),
            ("center_1d", "center", "", 1, 50),  # not zhao's
            ("mine_2d", "center", "zhao", 2, 50),  # zhao is a candidate user
            ("amr_1d_urgent", "amr", "", 1, 80),
        ]:
            cases[name] = gf.start("queued", dept=dept, person=person, days=days, prio=prio).id
        by_id = {gf.task(i, "work").id: n for n, i in cases.items()}

        def names(**filters):
            with gf.app.database.session() as session:
                rows = queries.list_tasks(session, both, "group", **filters)
                return [by_id[r.id] for r in rows]

        assert names() == ["amr_1d_urgent", "tax_1d", "mine_2d", "amr_3d", "amr_none"]
        assert names(limit=3) == ["amr_1d_urgent", "tax_1d", "mine_2d"]
        assert names(group="tax") == ["tax_1d"]
        frozen.advance(timedelta(days=2, hours=12))
        assert names(overdue=True) == ["amr_1d_urgent", "tax_1d", "mine_2d"]
        assert names(overdue=False) == ["amr_3d", "amr_none"]
        gf.complete(gf.task(cases["tax_1d"], "work").id, both)
        assert names(limit=2) == ["amr_1d_urgent", "mine_2d"]


def test_a_search_finds_the_clerks_open_tasks_by_business_key_or_name_in_worklist_order(gf, people):
    """`q` narrows the worklist to tasks whose business key or name holds the text, in upper
    or lower case alike: the same tasks, in the same order, as the whole worklist filtered
    by hand, and never a task of another department's queue or one already done."""
    gf.deploy(QUEUED)
    both = gf.clerk("zhao", "amr", "tax")
    cases = {}
    for key, dept, person, days, prio in [
        ("GF-2026-0001", "amr", "", 3, 50),
        ("GF-2026-0002", "tax", "", 1, 50),
        ("GF-2026-0003", "center", "", 1, 50),  # not zhao's queue
        ("GF-2026-0004", "center", "zhao", 2, 50),  # zhao is a candidate user
        ("GF-2025-100%", "amr", "", None, 90),
        ("GF-2025-1000", "amr", "", 5, 80),
        ("GF-2026-0005", "tax", "", 1, 70),
    ]:
        cases[key] = gf.start(
            "queued", business_key=key, dept=dept, person=person, days=days, prio=prio
        ).id
    by_id = {gf.task(i, "work").id: key for key, i in cases.items()}
    gf.complete(gf.task(cases["GF-2026-0005"], "work").id, people["tax"])
    gf.claim(gf.task(cases["GF-2026-0001"], "work").id, people["amr2"])  # still in the queue

    def keys(**filters):
        with gf.app.database.session() as session:
            return [by_id[r.id] for r in queries.list_tasks(session, both, "group", **filters)]

    everything = keys()
    assert "GF-2026-0003" not in everything and "GF-2026-0005" not in everything
    for q in ("2026", "0004", "100%", "%", "_", "GF-2025", "gf-2025", "办理", "理", "nothing"):
        assert keys(q=q) == [k for k in everything if q.upper() in k or q in "办理"], q
    assert keys(q="2026") == ["GF-2026-0002", "GF-2026-0004", "GF-2026-0001"]
    assert keys(q="%") == ["GF-2025-100%"]  # a percent sign is no wildcard
    assert keys(q="2026", limit=2) == ["GF-2026-0002", "GF-2026-0004"]
    assert keys(q="2026", group="amr") == ["GF-2026-0001"]
    assert keys(q="GF", overdue=False) == everything
    assert keys(q="0005") == []  # done
    assert keys(q="0001") == ["GF-2026-0001"]  # claimed by a colleague, as in the worklist
    with gf.app.database.session() as session:
        done = queries.list_tasks(session, people["tax"], "mine", state="completed", q="0005")
        assert [by_id[r.id] for r in done] == ["GF-2026-0005"]


def test_a_ready_task_that_already_has_a_closed_row_keeps_it_and_gets_no_queue_entries(
    gf, app, people
):
    """A task retried after an incident is ready again under its old id and its closed row.
    The projection keeps that row as it is even when the command did not read it (a task
    completion reads only its case's open rows): no duplicate, and no worklist entry."""
    from sqlalchemy import delete, func, select, update

    from engine.runtime import projections
    from engine.runtime.serializer import load_workflow
    from engine.store.models import HumanTask, Instance, TaskCandidate

    gf.deploy(TWO_STEP)
    case = gf.start("two_step")
    task_id = gf.task(case.id, "accept").id
    services = app.services
    with app.database.write_session() as session:
        session.execute(
            update(HumanTask)
            .where(HumanTask.id == task_id)
            .values(state="completed", completed_by="wang")
        )
        session.execute(delete(TaskCandidate).where(TaskCandidate.task_id == task_id))
        instance = session.get(Instance, case.id)
        version = services.versions.get(session, instance.definition_version_id)
        workflow = load_workflow(
            instance.document, version.spec, version.subprocess_specs, services.script_engine
        )
        assert [str(t.id) for t in projections.ready_human_tasks(workflow)] == [task_id]
        projections.sync_human_tasks(
            session,
            instance,
            workflow,
            services.script_engine.sandbox,
            clock.now(),
            services.tz,
            # the command read its case's rows: none open, its own task another one
            read=projections.CaseTasks(set(), HumanTask(id="another task", state="completed")),
        )
    with app.database.read_session() as session:
        rows = session.scalars(select(HumanTask).where(HumanTask.instance_id == case.id)).all()
        candidates = session.scalar(
            select(func.count()).select_from(TaskCandidate).where(TaskCandidate.task_id == task_id)
        )
    assert [(r.id, r.state, r.completed_by) for r in rows] == [(task_id, "completed", "wang")]
    assert candidates == 0
    assert gf.worklist(people["front"]) == []
