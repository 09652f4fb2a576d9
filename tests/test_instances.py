"""Instance lifecycle: status, cancel, suspend and resume, retry, and the audit trail."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from engine.errors import Conflict, Forbidden, NotFound
from engine.runtime import clock, commands, queries
from engine.store.models import HumanTask, Instance, TaskCandidate
from tests import bpmn as b
from tests.conftest import _is_pg
from tests.plans import plan_of_call

SIMPLE = b.doc(
    "simple",
    b.start(),
    b.script("prepare", "fee = 0 if free else 100"),
    b.user("handle", "办理", candidateGroups="amr"),
    b.end(),
    *b.chain("start", "prepare", "handle", "end"),
)


def test_status_follows_the_case(gf):
    gf.deploy(SIMPLE)
    clerk = gf.clerk("li", "amr")
    instance = gf.start("simple", free=True, business_key="2026-0001")
    assert instance.status == "running"
    detail = gf.detail(instance.id)
    assert detail["business_key"] == "2026-0001"
    assert detail["variables"]["fee"] == 0
    gf.complete(gf.task(instance.id, "handle").id, clerk)
    detail = gf.detail(instance.id)
    assert detail["status"] == "completed"
    assert detail["ended_at"] is not None
    counts = {e["element_id"]: (e["active"], e["completed"]) for e in detail["elements"]}
    assert counts == {"start": (0, 1), "prepare": (0, 1), "handle": (0, 1), "end": (0, 1)}


def test_unknown_process_and_version_are_refused(gf):
    gf.deploy(SIMPLE)
    with pytest.raises(NotFound, match="no process definition 'nope'"):
        gf.start("nope")
    with pytest.raises(NotFound, match="has no version 7"):
        gf.app.start("simple", gf.designer, version=7, variables={"free": True})


def test_every_command_is_audited_with_who_what_where_and_the_data(gf):
    gf.deploy(SIMPLE)
    clerk = gf.clerk("li", "amr")
    instance = gf.start("simple", free=False)
    task = gf.task(instance.id, "handle")
    gf.claim(task.id, clerk)
    gf.complete(task.id, clerk, opinion="同意")
    history = gf.detail(instance.id)["history"]
    assert [(h["actor"], h["command"], h["element_id"]) for h in history] == [
        ("designer", "start", None),
        ("li", "claim", "handle"),
        ("li", "complete", "handle"),
    ]
    assert history[0]["data"] == {"free": False}
    assert history[2]["data"] == {"opinion": "同意"}
    assert history[2]["task_id"] == task.id
    assert history[2]["details"]["status"] == "completed"
    assert all(h["at"] for h in history)


def test_ops_cancels_and_the_open_tasks_go_away(gf, app):
    gf.deploy(SIMPLE)
    clerk = gf.clerk("li", "amr")
    instance = gf.start("simple", free=True)
    with pytest.raises(Forbidden):
        app.runner.execute(commands.CancelInstance(instance.id, "wrong case"), clerk)
    app.runner.execute(commands.CancelInstance(instance.id, "applicant withdrew"), gf.ops)
    detail = gf.detail(instance.id)
    assert detail["status"] == "cancelled"
    assert [t["state"] for t in detail["tasks"]] == ["cancelled"]
    assert gf.worklist(clerk) == []
    assert detail["history"][-1]["data"] == {"reason": "applicant withdrew"}
    with pytest.raises(Conflict, match="is cancelled"):
        app.runner.execute(commands.CancelInstance(instance.id), gf.ops)


def test_a_suspended_case_refuses_work_until_resumed(gf, app):
    gf.deploy(SIMPLE)
    clerk = gf.clerk("li", "amr")
    instance = gf.start("simple", free=True)
    task = gf.task(instance.id, "handle")
    app.runner.execute(commands.SuspendInstance(instance.id), gf.ops)
    assert gf.detail(instance.id)["status"] == "suspended"
    with pytest.raises(Conflict, match="suspended"):
        gf.complete(task.id, clerk)
    app.runner.execute(commands.ResumeInstance(instance.id), gf.ops)
    assert gf.detail(instance.id)["status"] == "running"
    gf.complete(task.id, clerk)
    assert gf.detail(instance.id)["status"] == "completed"


def test_retrying_a_failed_element_that_fails_again_opens_a_new_incident(gf, app):
    gf.deploy(
        b.doc(
            "fragile",
            b.start(),
            b.user("collect", "补录", candidateGroups="amr"),
            b.script("compute", "ratio = paid / total"),
            b.end(),
            *b.chain("start", "collect", "compute", "end"),
        )
    )
    clerk = gf.clerk("li", "amr")
    instance = gf.start("fragile", paid=50, total=0)
    gf.complete(gf.task(instance.id, "collect").id, clerk)
    detail = gf.detail(instance.id)
    assert detail["status"] == "error"
    incident = detail["incidents"][0]
    assert incident["element_id"] == "compute"
    assert "ZeroDivisionError" in incident["message"]
    with pytest.raises(Forbidden):
        app.runner.execute(commands.RetryIncident(incident["id"]), clerk)
    # retrying without a fix fails again with a new incident
    app.runner.execute(commands.RetryIncident(incident["id"], "try again"), gf.ops)
    detail = gf.detail(instance.id)
    assert detail["status"] == "error"
    assert [i["resolved_at"] is None for i in detail["incidents"]] == [False, True]
    with pytest.raises(Conflict, match="already resolved"):
        app.runner.execute(commands.RetryIncident(incident["id"]), gf.ops)


def test_a_case_waiting_only_for_a_timer_is_waiting_and_its_timer_is_recorded(gf):
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import select

    from engine.runtime import clock
    from engine.store.models import Timer

    gf.deploy(
        b.doc(
            "cooling_off",
            b.start(),
            '<bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition>'
            "<bpmn:timeDuration>PT2H</bpmn:timeDuration></bpmn:timerEventDefinition>"
            "</bpmn:intermediateCatchEvent>",
            b.end(),
            *b.chain("start", "wait", "end"),
        )
    )
    moment = datetime(2026, 10, 12, 1, 0, tzinfo=UTC)
    with clock.use_clock(clock.FrozenClock(moment)):
        instance = gf.start("cooling_off")
    detail = gf.detail(instance.id)
    assert detail["status"] == "waiting"
    assert {e["element_id"]: e["active"] for e in detail["elements"]}["wait"] == 1
    with gf.app.database.session() as session:
        timers = list(session.scalars(select(Timer).where(Timer.instance_id == instance.id)))
    assert [(t.element_id, t.state, t.due_at) for t in timers] == [
        ("wait", "waiting", moment + timedelta(hours=2))
    ]


def test_on_postgresql_a_business_key_search_reads_its_cases_from_the_key_index(gf, app):
    """Whatever PostgreSQL's statistics, a search by business key finds its cases through
    the key's index, already newest first, instead of walking every case newest first."""
    if not _is_pg():
        pytest.skip("query plans are PostgreSQL's")
    gf.deploy(SIMPLE)
    for number in range(40):
        gf.start("simple", business_key=f"BK-{number % 4}", free=True)
    ops = gf.user("ops9", ["ops"])
    with app.database.read_session() as session:
        # a table of 40 rows, if autovacuum analyzed it meanwhile, is cheapest read whole
        session.connection().exec_driver_sql("SET LOCAL enable_seqscan = off")
        (rows, _), plan = plan_of_call(
            session,
            app.database.engine,
            lambda: queries.list_instances(session, ops, business_key="BK-2"),
        )
    assert len(rows) == 10
    assert {r.business_key for r in rows} == {"BK-2"}
    assert [r.started_at for r in rows] == sorted((r.started_at for r in rows), reverse=True)
    assert "ix_instances_business_key_started" in plan, plan


TO_ONE_PERSON = b.doc(
    "to_one_person",
    b.start(),
    b.user("call_back", "回访", candidateUsers="wang"),
    b.end(),
    *b.chain("start", "call_back", "end"),
)


def _who_sees(gf) -> dict[str, set[str]]:
    """Four cases under one business key, each visible to a clerk by another way."""
    gf.deploy(SIMPLE)
    gf.deploy(TO_ONE_PERSON, "to_one_person.bpmn")
    starter = gf.clerk("starter", "tax")
    doer = gf.clerk("doer", "amr")
    gf.clerk("queue_clerk", "amr")
    gf.clerk("wang", "tax")
    gf.clerk("outsider", "tax")
    started = gf.start("simple", starter, business_key="BK-7", free=True).id
    done = gf.start("simple", business_key="BK-7", free=True).id
    gf.complete(gf.task(done, "handle").id, doer)  # the case ends: no task left in any queue
    queued = gf.start("simple", business_key="BK-7", free=True).id
    personal = gf.start("to_one_person", business_key="BK-7").id
    gf.start("simple", business_key="BK-8", free=True)
    return {
        "starter": {started},  # its task waits in amr's queue, not in the starter's tax
        "doer": {started, queued, done},  # amr's queue, and the task they did
        "queue_clerk": {started, queued},
        "wang": {personal},  # a task for them by name
        "outsider": set(),
    }


def test_a_clerks_business_key_search_finds_the_cases_they_started_did_or_may_take(gf, app):
    """The search checks each case by its own rows; one case checked the same way (a case
    page) and all cases checked the general way (the newest-cases page) agree with it."""
    expected = _who_sees(gf)
    every_case = set().union(*expected.values())
    for username, cases in expected.items():
        actor = app.actor(username)
        with app.database.read_session() as session:
            rows, _ = queries.list_instances(session, actor, business_key="BK-7")
            assert {r.id for r in rows} == cases, username
            page, _ = queries.list_instances(session, actor)
            assert {r.id for r in page if r.business_key == "BK-7"} == cases, username
            for case_id in every_case:
                one = select(Instance.id).where(
                    Instance.id == case_id, queries._clerk_visible(actor)
                )
                assert (session.scalar(one) is not None) == (case_id in cases), (username, case_id)
            for case_id in expected["starter"] | expected["wang"]:
                if case_id not in cases:
                    with pytest.raises(Forbidden):
                        queries.require_instance_visible(session, actor, case_id)


def _pages(app, actor, limit: int, **filters) -> list[str]:
    """Every case the actor's case list shows, page after page."""
    shown: list[str] = []
    cursor = None
    while True:
        with app.database.read_session() as session:
            rows, cursor = queries.list_instances(
                session, actor, limit=limit, cursor=cursor, **filters
            )
        shown += [r.id for r in rows]
        if cursor is None:
            return shown


@pytest.mark.parametrize("window", [1, 2, 3, queries.NEWEST_WINDOW])
@pytest.mark.parametrize("few_rows", [1, queries.FEW_TASK_ROWS])
def test_a_clerks_case_list_shows_their_cases_newest_first_however_far_back(
    gf, app, monkeypatch, window, few_rows
):
    """A clerk's case list checks a window of the newest cases one by one and takes the older
    ones from the clerk's own rows (read by id when few, else walked): whatever the window,
    page after page shows exactly the cases they started, did or may take, newest first,
    each once."""
    expected = _who_sees(gf)
    for _ in range(3):  # more work for amr, and for wang by name
        more = gf.start("simple", free=True).id
        expected["doer"].add(more)
        expected["queue_clerk"].add(more)
        expected["wang"].add(gf.start("to_one_person").id)
    by_wang = gf.start("simple", app.actor("wang"), free=True).id  # its task waits at amr
    for username in ("wang", "doer", "queue_clerk"):
        expected[username].add(by_wang)
    ops = gf.user("ops7", ["ops"])
    with app.database.read_session() as session:
        newest_first, _ = queries.list_instances(session, ops, limit=500)
        [other_key], _ = queries.list_instances(session, ops, business_key="BK-8")
    expected["doer"].add(other_key.id)  # its task waits at amr too
    expected["queue_clerk"].add(other_key.id)
    monkeypatch.setattr(queries, "NEWEST_WINDOW", window)
    monkeypatch.setattr(queries, "FEW_TASK_ROWS", few_rows)
    for username, cases in expected.items():
        wanted = [r.id for r in newest_first if r.id in cases]
        for limit in (1, 2, 50):
            assert _pages(app, app.actor(username), limit) == wanted, (username, limit)


def _many_cases(gf) -> dict[str, object]:
    """36 cases, three a second, by four starters, some done or held by `a`, some handed to
    `t` outside their department: clerks who see them by every way, and one who sees none."""
    gf.deploy(SIMPLE)
    gf.deploy(TO_ONE_PERSON, "to_one_person.bpmn")
    clerks = {
        "a": gf.clerk("a", "amr"),
        "t": gf.clerk("t", "tax"),
        "wang": gf.clerk("wang", "tax"),
        "none": gf.clerk("none", "leading"),
    }
    chance = random.Random(7)
    with clock.use_clock(clock.FrozenClock(datetime(2026, 3, 2, 9, tzinfo=UTC))) as frozen:
        for number in range(36):
            if number % 3 == 0:
                frozen.advance(timedelta(seconds=1))
            starter = chance.choice([None, clerks["t"], clerks["a"], clerks["none"]])
            if chance.random() < 0.3:
                gf.start("to_one_person", starter)
                continue
            case_id = gf.start("simple", starter, free=True).id
            roll = chance.random()
            if roll < 0.3:
                gf.complete(gf.task(case_id, "handle").id, clerks["a"])
            elif roll < 0.45:
                gf.claim(gf.task(case_id, "handle").id, clerks["a"])
            elif roll < 0.6:  # ops hands amr's task to a tax clerk: theirs by assignee only
                task = gf.task(case_id, "handle")
                gf.app.runner.execute(commands.AssignTask(task.id, "t"), gf.ops)
    return clerks


def _seen_by_rows(app, username: str, departments: frozenset[str], query) -> list[str]:
    """What a clerk may see, worked out in Python from every row (and with `completed_by`
    asked, as the case list did before it relied on the completer being the assignee)."""
    queues = {("user", username)} | {("group", d) for d in departments}
    with app.database.read_session() as session:
        theirs = {
            t.instance_id
            for t in session.scalars(select(HumanTask))
            if username in (t.assignee, t.completed_by)
        }
        for task, entry in session.execute(
            select(HumanTask, TaskCandidate).join(
                TaskCandidate, TaskCandidate.task_id == HumanTask.id
            )
        ):
            if (entry.kind, entry.value) in queues:
                theirs.add(task.instance_id)
        ordered = session.scalars(query.order_by(Instance.started_at.desc(), Instance.id.desc()))
        return [r.id for r in ordered if r.started_by == username or r.id in theirs]


@pytest.mark.parametrize("window", [1, 4, queries.NEWEST_WINDOW])
@pytest.mark.parametrize("few_rows", [1, queries.FEW_TASK_ROWS])
def test_a_clerks_case_list_agrees_with_every_row_under_filters_and_equal_start_times(
    gf, app, monkeypatch, window, few_rows
):
    """Cases started in the same second, filters by status, process and deadline, pages of
    every size: the case list shows what the rows say the clerk may see, in order."""
    clerks = _many_cases(gf)
    monkeypatch.setattr(queries, "NEWEST_WINDOW", window)
    monkeypatch.setattr(queries, "FEW_TASK_ROWS", few_rows)
    calendar = app.services.calendars.get()
    everything = select(Instance)
    running = everything.where(Instance.status == "running")
    simple = everything.where(Instance.definition_key == "simple")
    filtered = [
        ({}, everything),
        ({"status": "running"}, running),
        ({"status": "completed"}, everything.where(Instance.status == "completed")),
        ({"definition_key": "simple"}, simple),
        (
            {"definition_key": "simple", "status": "running"},
            simple.where(Instance.status == "running"),
        ),
        ({"overdue": False, "calendar": calendar}, everything),  # no case has a clock
        ({"overdue": True, "calendar": calendar}, everything.where(Instance.id.is_(None))),
        ({"provisional": False}, everything),
    ]
    for username, actor in clerks.items():
        for filters, query in filtered:
            expected = _seen_by_rows(app, username, actor.departments, query)
            for limit in (1, 2, 5, 50):
                assert _pages(app, actor, limit, **filters) == expected, (
                    username,
                    filters,
                    limit,
                )


class _EachStatementAlone:
    """A session whose every statement runs in a transaction of its own, as each statement
    of a PostgreSQL read session sees the cases committed when it starts (read committed);
    `between` runs once, after the first statement."""

    def __init__(self, app, between) -> None:
        self.app, self.between, self.statements = app, between, 0

    def _ran(self) -> None:
        self.statements += 1
        if self.statements == 1:
            self.between()

    def scalars(self, statement):
        with self.app.database.read_session() as session:
            rows = list(session.scalars(statement))
        self._ran()
        return rows

    def scalar(self, statement):
        with self.app.database.read_session() as session:
            value = session.scalar(statement)
        self._ran()
        return value

    def execute(self, statement):
        with self.app.database.read_session() as session:
            rows = session.execute(statement).all()
        self._ran()
        return _Rows(rows)


class _Rows:
    def __init__(self, rows) -> None:
        self.rows = rows

    def first(self):
        return self.rows[0] if self.rows else None


def test_a_case_started_while_a_clerks_case_list_is_read_shows_no_case_twice(gf, app, monkeypatch):
    gf.deploy(SIMPLE)
    clerk = gf.clerk("starter", "tax")
    mine = [gf.start("simple", clerk, free=True).id for _ in range(3)]
    monkeypatch.setattr(queries, "NEWEST_WINDOW", 2)
    session = _EachStatementAlone(app, lambda: gf.start("simple", free=True))
    rows = queries._clerk_newest(session, clerk, select(Instance), 51)
    assert [r.id for r in rows] == mine[::-1]


def test_a_case_closed_while_a_clerks_case_list_is_read_leaves_no_other_out(gf, app, monkeypatch):
    gf.deploy(SIMPLE)
    clerk = gf.clerk("starter", "tax")
    doer = gf.clerk("doer", "amr")
    mine = [gf.start("simple", clerk, free=True).id for _ in range(4)]
    monkeypatch.setattr(queries, "NEWEST_WINDOW", 2)
    newest = mine[-1]
    session = _EachStatementAlone(app, lambda: gf.complete(gf.task(newest, "handle").id, doer))
    running = select(Instance).where(Instance.status == "running")
    rows = queries._clerk_newest(session, clerk, running, 51)
    assert [r.id for r in rows] == mine[:3][::-1]


def test_on_postgresql_a_clerks_case_checks_read_each_cases_own_task_rows(gf, app):
    """A clerk's business-key search and a case's page check the clerk's part in each case by
    the case's own task rows: never by reading every task the clerk held, or the whole queue,
    into a hash first (what PostgreSQL chose at 1M cases without statistics: 1 s). No setting
    steers the plan here: `enable_seqscan = off` would price the hashed subplan out on its own.
    On tables of a few rows the queue entries are found by their primary key whether or not
    the queue condition is only checked; at 1M cases, a variant without it walked the queue
    once per task."""
    if not _is_pg():
        pytest.skip("query plans are PostgreSQL's")
    expected = _who_sees(gf)
    clerk = app.actor("wang")
    [personal] = expected["wang"]
    with app.database.read_session() as session:
        (rows, _), search = plan_of_call(
            session,
            app.database.engine,
            lambda: queries.list_instances(session, clerk, business_key="BK-7"),
        )
        _, page = plan_of_call(
            session,
            app.database.engine,
            lambda: queries.require_instance_visible(session, clerk, personal),
        )
    assert [r.id for r in rows] == [personal]
    for plan in (search, page):
        assert "hashed SubPlan" not in plan, plan
        assert "ix_task_candidates_queue" not in plan, plan
        assert "ix_task_candidates_unclaimed" not in plan, plan
