"""Concurrent commands on one instance: the version fence serialises them, nothing is lost."""

from __future__ import annotations

import threading

from engine.store.models import HumanTask
from tests import bpmn as b

PARALLEL_APPROVAL = b.doc(
    "parallel_approval",
    b.start(),
    b.script("init", "results = {}\nround = 1"),
    b.par("split"),
    b.user("approve_amr", "市场监管审批", candidateGroups="amr"),
    b.user("approve_fire", "消防审批", candidateGroups="fire"),
    b.user("approve_urban", "城管审批", candidateGroups="urban"),
    b.par("join"),
    b.script("summarise", "all_approved = amr_ok and fire_ok and urban_ok"),
    b.end(),
    *b.chain("start", "init", "split"),
    *[b.flow(f"fo_{d}", "split", f"approve_{d}") for d in ("amr", "fire", "urban")],
    *[b.flow(f"fi_{d}", f"approve_{d}", "join") for d in ("amr", "fire", "urban")],
    *b.chain("join", "summarise", "end"),
)

INSTANCES = 200


def test_three_branches_completed_at_the_same_moment_all_count(gf):
    gf.deploy(PARALLEL_APPROVAL)
    clerks = {d: gf.clerk(f"clerk_{d}", d) for d in ("amr", "fire", "urban")}
    instances = [gf.start("parallel_approval") for _ in range(INSTANCES)]
    tasks = {
        i.id: {t.element_id.removeprefix("approve_"): t.id for t in gf.open_tasks(i.id)}
        for i in instances
    }
    errors: list[BaseException] = []

    def work(department: str, barrier: threading.Barrier) -> None:
        for instance in instances:
            barrier.wait()
            try:
                gf.complete(
                    tasks[instance.id][department],
                    clerks[department],
                    **{f"{department}_ok": True, f"{department}_by": clerks[department].username},
                )
            except BaseException as exc:  # collected and reported below
                errors.append(exc)

    barrier = threading.Barrier(3)
    threads = [threading.Thread(target=work, args=(d, barrier)) for d in ("amr", "fire", "urban")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for instance in instances:
        detail = gf.detail(instance.id)
        assert detail["status"] == "completed", detail["incidents"]
        variables = detail["variables"]
        assert variables["all_approved"] is True
        assert {variables[f"{d}_by"] for d in ("amr", "fire", "urban")} == {
            "clerk_amr",
            "clerk_fire",
            "clerk_urban",
        }
        completes = [h for h in detail["history"] if h["command"] == "complete"]
        assert len(completes) == 3


def test_two_clerks_claiming_one_task_at_once_never_both_win(gf):
    """Exactly one claim of each task succeeds; the other clerk is told who has it."""
    from engine.errors import Conflict

    gf.deploy(PARALLEL_APPROVAL)
    clerks = [gf.clerk("amr_a", "amr"), gf.clerk("amr_b", "amr")]
    tasks = [gf.task(gf.start("parallel_approval").id, "approve_amr").id for _ in range(INSTANCES)]
    won: dict[str, list[str]] = {task: [] for task in tasks}
    unexpected: list[BaseException] = []
    barrier = threading.Barrier(2)

    def work(clerk) -> None:
        for task in tasks:
            barrier.wait()
            try:
                gf.claim(task, clerk)
                won[task].append(clerk.username)
            except Conflict as exc:
                if "already claimed by" not in exc.message:
                    unexpected.append(exc)
            except BaseException as exc:  # collected and reported below
                unexpected.append(exc)

    threads = [threading.Thread(target=work, args=(c,)) for c in clerks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert unexpected == []
    doubles = {task: names for task, names in won.items() if len(names) != 1}
    assert doubles == {}
    with gf.app.database.session() as session:
        for task in tasks:
            row = session.get(HumanTask, task)
            assert row is not None and [row.assignee] == won[task]
