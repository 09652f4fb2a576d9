"""Claiming the next task of one's queue (叫号): the worklist's order, the clerk's own
departments only, a clear 404 when nothing waits, and colleagues pressing "next" at the same
moment each getting a different task."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from engine.errors import NotFound
from engine.runtime import clock, commands, queries
from engine.store.models import HumanTask, Instance
from tests.api_support import ApiHarness
from tests.conftest import _is_pg
from tests.plans import plan_of_call, plan_of_statement
from tests.test_tasks import QUEUED


def test_next_claims_in_worklist_order_and_says_404_when_the_queue_is_empty(gf, app):
    api = ApiHarness(app)
    api.user("zhao", ["clerk"], ["amr", "tax"])
    api.user("ops1", ["ops"])
    gf.deploy(QUEUED)
    cases = {}
    with clock.use_clock(clock.FrozenClock(datetime(2026, 9, 1, 1, 0, tzinfo=UTC))):
        for name, dept, person, days, prio in [
            ("amr_3d", "amr", "", 3, 50),
            ("tax_1d", "tax", "", 1, 50),
            ("amr_none", "amr", "", None, 90),
            ("center_1d", "center", "", 1, 50),  # not zhao's department
            ("mine_2d", "center", "zhao", 2, 50),  # zhao is a candidate user
            ("amr_1d_urgent", "amr", "", 1, 80),
            ("amr_1d_taken", "amr", "", 1, 99),  # claimed by a colleague first
            ("amr_2d_suspended", "amr", "", 2, 50),  # its case is suspended
        ]:
            cases[name] = gf.start("queued", dept=dept, person=person, days=days, prio=prio).id
    by_task = {gf.task(i, "work").id: n for n, i in cases.items()}
    gf.claim(gf.task(cases["amr_1d_taken"], "work").id, gf.clerk("qian", "amr"))
    suspended = api.post(f"/api/instances/{cases['amr_2d_suspended']}/suspend", "ops1", json={})
    assert suspended.status_code == 200, suspended.text

    only_tax = api.post("/api/tasks/claim-next?group=tax", "zhao")
    assert only_tax.status_code == 200, only_tax.text
    assert by_task[only_tax.json()["id"]] == "tax_1d"
    assert only_tax.json()["assignee"] == "zhao"
    assert api.post("/api/tasks/claim-next?group=tax", "zhao").status_code == 404
    other = api.post("/api/tasks/claim-next?group=center", "zhao")
    assert (other.status_code, other.json()["error"]) == (403, "forbidden")
    not_theirs = api.post("/api/tasks/claim-next?group=amr", "ops1")  # ops sees, does not work
    assert (not_theirs.status_code, not_theirs.json()["error"]) == (403, "forbidden")
    assert "not in department 'amr'" in not_theirs.json()["message"]

    claimed = []
    while (taken := api.post("/api/tasks/claim-next", "zhao")).status_code == 200:
        claimed.append(by_task[taken.json()["id"]])
    assert claimed == ["amr_1d_urgent", "mine_2d", "amr_3d", "amr_none"]
    assert taken.status_code == 404
    assert taken.json()["error"] == "not_found"
    assert "no unclaimed task is waiting" in taken.json()["message"]
    assert "amr, tax" in taken.json()["message"]
    mine = {by_task[t["id"]] for t in api.get("/api/tasks?scope=mine", "zhao").json()}
    assert mine == {"tax_1d", *claimed}
    history = [h["command"] for h in gf.detail(cases["amr_3d"])["history"]]
    assert history[-1] == "claim"  # audited as the claim it is


CLERKS = 6
TASKS = 60


def test_clerks_pressing_next_at_once_each_get_a_different_task(gf, app):
    gf.deploy(QUEUED)
    clerks = [gf.clerk(f"amr_{i}", "amr") for i in range(CLERKS)]
    for _ in range(TASKS):
        gf.start("queued", dept="amr", person="", days=1, prio=50)
    got: dict[str, list[str]] = {c.username: [] for c in clerks}
    unexpected: list[BaseException] = []
    barrier = threading.Barrier(CLERKS)

    def work(clerk) -> None:
        barrier.wait()
        command = commands.ClaimNextTask(ranges=tuple(queries.queue_ranges(clerk)))
        while True:
            try:
                row = app.runner.execute(command, clerk)
            except NotFound:
                return
            except BaseException as exc:  # collected and reported below
                unexpected.append(exc)
                return
            got[clerk.username].append(row.id)

    threads = [threading.Thread(target=work, args=(c,)) for c in clerks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert unexpected == []
    every = [task for tasks in got.values() for task in tasks]
    assert len(every) == TASKS and len(set(every)) == TASKS
    with app.database.read_session() as session:
        for name, tasks in got.items():
            for task in tasks:
                row = session.get(HumanTask, task)
                assert row is not None and row.assignee == name


@pytest.mark.parametrize("kind", ["group", "user"])
def test_a_task_of_a_case_that_ended_is_never_handed_out(gf, app, kind):
    gf.deploy(QUEUED)
    clerk = gf.clerk("sun", "amr")
    dept, person = ("amr", "") if kind == "group" else ("center", "sun")
    case = gf.start("queued", dept=dept, person=person, days=1, prio=50).id
    ops = gf.user("ops2", ["ops"], [])
    app.runner.execute(commands.CancelInstance(case, "withdrawn"), ops)
    with pytest.raises(NotFound):
        app.runner.execute(commands.ClaimNextTask(ranges=tuple(queries.queue_ranges(clerk))), clerk)


def test_on_postgresql_a_task_being_picked_is_skipped_not_waited_for(gf, app):
    """While one clerk's pick holds the head of the queue, a colleague's "next" gets the
    second task at once: neither waits on the other's lock nor claims the same task."""
    if not _is_pg():
        pytest.skip("SQLite takes the write lock for the whole transaction (BEGIN IMMEDIATE)")
    gf.deploy(QUEUED)
    first = gf.start("queued", dept="amr", person="", days=1, prio=90).id
    second = gf.start("queued", dept="amr", person="", days=1, prio=50).id
    zhou, wu = gf.clerk("zhou", "amr"), gf.clerk("wu", "amr")
    pick, params = queries.next_unclaimed_task(queries.queue_ranges(zhou))
    with app.database.write_session() as holding:
        held = holding.execute(pick, params).first()
        assert held is not None and held[0] == first  # the case's id, its first column
        row = app.runner.execute(commands.ClaimNextTask(ranges=tuple(queries.queue_ranges(wu))), wu)
        assert (row.instance_id, row.assignee) == (second, "wu")
        holding.rollback()


def test_on_postgresql_a_clerk_whose_queue_is_all_being_picked_waits_for_it_to_settle(gf, app):
    """Nothing free to hand out at this moment is not nothing waiting: the command tries
    again, and when the colleague's pick lets the last task go, this clerk is handed it."""
    if not _is_pg():
        pytest.skip("SQLite takes the write lock for the whole transaction (BEGIN IMMEDIATE)")
    gf.deploy(QUEUED)
    only = gf.start("queued", dept="amr", person="", days=1, prio=50).id
    zhou, wu = gf.clerk("zhou", "amr"), gf.clerk("wu", "amr")
    pick, params = queries.next_unclaimed_task(queries.queue_ranges(zhou))
    holding_it, let_go = threading.Event(), threading.Event()

    def colleague_picks_then_lets_go() -> None:
        with app.database.write_session() as holding:
            assert holding.execute(pick, params).first() is not None
            holding_it.set()
            let_go.wait(10)
            time.sleep(0.2)  # wu's command is trying meanwhile
            holding.rollback()

    colleague = threading.Thread(target=colleague_picks_then_lets_go)
    colleague.start()
    assert holding_it.wait(10)
    let_go.set()
    row = app.runner.execute(commands.ClaimNextTask(ranges=tuple(queries.queue_ranges(wu))), wu)
    colleague.join()
    assert (row.instance_id, row.assignee) == (only, "wu")


def test_a_task_handed_back_is_handed_out_again(gf, app):
    gf.deploy(QUEUED)
    case = gf.start("queued", dept="amr", person="", days=1, prio=50).id
    li = gf.clerk("li_next", "amr")
    next_for_li = commands.ClaimNextTask(ranges=tuple(queries.queue_ranges(li)))
    taken = app.runner.execute(next_for_li, li)
    with pytest.raises(NotFound):
        app.runner.execute(next_for_li, li)
    app.runner.execute(commands.UnclaimTask(taken.id), li)
    again = app.runner.execute(next_for_li, li)
    assert (again.id, again.instance_id, again.assignee) == (taken.id, case, "li_next")


def test_the_0013_upgrade_marks_the_queue_entries_of_claimed_tasks(gf, app):
    """0013 adds the claimed flag that keeps claimed tasks out of claim-next's walk; a queue
    made before it comes out of the upgrade with its claimed tasks marked."""
    from alembic import command
    from sqlalchemy import select

    from engine.store import schema
    from engine.store.models import TaskCandidate

    gf.deploy(QUEUED)
    held, free = (gf.start("queued", dept="amr", person="", days=d, prio=50).id for d in (1, 2))
    zhu = gf.clerk("zhu", "amr")
    held_task = gf.task(held, "work").id
    gf.claim(held_task, zhu)
    with app.database.engine.begin() as connection:
        config = schema.alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0012")
    schema.upgrade(app.database)
    with app.database.read_session() as session:
        flags = dict(session.execute(select(TaskCandidate.task_id, TaskCandidate.claimed)).all())
    assert flags == {held_task: True, gf.task(free, "work").id: False}
    row = app.runner.execute(commands.ClaimNextTask(ranges=tuple(queries.queue_ranges(zhu))), zhu)
    assert row.instance_id == free


@pytest.mark.parametrize("status", ["completed", "cancelled", "suspended"])
def test_an_open_task_whose_case_no_longer_runs_is_never_handed_out(gf, app, status):
    """Cancelling a case closes its tasks and their queue entries, so the test above cannot
    tell whether the pick looks at the case at all. Here the task row and its queue entry stay
    open while the case is no longer running (as a projection out of step would leave them):
    the pick must still skip it."""
    gf.deploy(QUEUED)
    clerk = gf.clerk("sun", "amr")
    case = gf.start("queued", dept="amr", person="", days=1, prio=50).id
    with app.database.session() as session:
        session.execute(update(Instance).where(Instance.id == case).values(status=status))
    ranges = tuple(queries.queue_ranges(clerk))
    with pytest.raises(NotFound):
        app.runner.execute(commands.ClaimNextTask(ranges=ranges), clerk)
    assert gf.open_tasks(case)[0].assignee is None


def test_a_task_waiting_behind_a_long_run_of_suspended_cases_is_handed_out(gf, app):
    """The pick looks at the head of the queue a bounded number of entries at a time; entries
    of suspended cases must not fill that window, or a clerk would hear "nothing waits" while
    a case waits behind them."""
    api = ApiHarness(app)
    api.user("li", ["clerk"], ["amr"])
    api.user("ops2", ["ops"])
    gf.deploy(QUEUED)
    halted = [
        gf.start("queued", dept="amr", person="", days=1, prio=50).id
        for _ in range(queries.NEXT_TASK_LOOKAHEAD + 1)
    ]
    for case in halted:
        assert api.post(f"/api/instances/{case}/suspend", "ops2", json={}).status_code == 200
    waiting = gf.start("queued", dept="amr", person="", days=3, prio=50).id

    taken = api.post("/api/tasks/claim-next", "li")

    assert taken.status_code == 200, taken.text
    assert taken.json()["id"] == gf.task(waiting, "work").id


# The indexes that serve "open", "unclaimed" by walking every open task of every department.
_WALKS_OPEN_TASKS = ("ix_human_tasks_open_instance", "ix_human_tasks_unclaimed_due")


def test_on_postgresql_the_pick_and_the_worklist_find_tasks_by_key_without_statistics(gf, app):
    """Whether or not PostgreSQL has analyzed the tables (autovacuum may be off), the next-task
    pick and a department's worklist reach each task of the queue's head by its key: a plan
    that walks the open tasks costs a queue of 100 ten times the buffers, and grows with every
    department's backlog."""
    if not _is_pg():
        pytest.skip("query plans are PostgreSQL's")
    gf.deploy(QUEUED)
    clerk = gf.clerk("zhou", "amr")
    for _ in range(40):
        gf.start("queued", dept="amr", person="", days=2, prio=50)
    with app.database.read_session() as session:
        statement, params = queries.next_unclaimed_task(list(queries.queue_ranges(clerk)))
        pick = plan_of_statement(session, statement, params)
        rows, worklist = plan_of_call(
            session,
            app.database.engine,
            lambda: queries.list_tasks(session, clerk, "group", limit=50),
        )
    assert len(rows) == 40
    for plan in (pick, worklist):
        assert "human_tasks" in plan
        assert not [index for index in _WALKS_OPEN_TASKS if index in plan], plan
    assert "ix_human_tasks_state_due" not in worklist, worklist
