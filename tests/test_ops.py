"""Operations: the stuck detector, repairs (bulk retry and cancel, token moves, variable edits,
version migration), retention and the Prometheus endpoint, through the API and the CLI."""

from __future__ import annotations

import json
import zlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy import text as sql_text

from engine.app import Govflow
from engine.cli import main
from engine.ops import retention
from engine.runtime import clock
from engine.runtime.scheduler import Scheduler
from engine.store.models import ArchivedDocument, AuditEvent, Incident, Instance, Timer
from tests import bpmn as b
from tests.api_support import ApiHarness
from tests.conftest import _is_pg
from tests.test_jobs import drain, service

MONDAY_9 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 09:00 in Beijing


def two_step(second: str = "B", boundary: bool = False) -> str:
    parts = [
        b.start(),
        b.user("A", "受理", candidateGroups="amr"),
        b.user(second, "审核", candidateGroups="amr"),
        b.end(),
        *b.chain("start", "A", second, "end"),
    ]
    if boundary:
        parts += [
            b.timer_boundary("late", "A", "P1D"),
            b.user("E", "督办", candidateGroups="leading"),
            b.flow("f_late", "late", "E"),
            b.flow("f_e", "E", "end"),
        ]
    return b.doc("two_step", *parts)


MESSAGE_WAIT = b.definitions(
    '<bpmn:message id="m_fee" name="fee_paid" />',
    b.process(
        "message_wait",
        b.start(),
        '<bpmn:intermediateCatchEvent id="wait_fee">'
        '<bpmn:messageEventDefinition messageRef="m_fee" /></bpmn:intermediateCatchEvent>',
        b.end(),
        *b.chain("start", "wait_fee", "end"),
    ),
)
TIMER_WAIT = b.doc(
    "timer_wait",
    b.start(),
    '<bpmn:intermediateCatchEvent id="pause"><bpmn:timerEventDefinition>'
    "<bpmn:timeDuration>PT10M</bpmn:timeDuration></bpmn:timerEventDefinition>"
    "</bpmn:intermediateCatchEvent>",
    b.user("after", "办理", candidateGroups="amr"),
    b.end(),
    *b.chain("start", "pause", "after", "end"),
)
OVERDUE_TASK = b.doc(
    "overdue_task",
    b.start(),
    b.user("review", "审核", candidateGroups="amr", dueDate="PT1H"),
    b.end(),
    *b.chain("start", "review", "end"),
)
DIVIDE = b.doc(
    "divide",
    b.start(),
    b.script("calc", "result = 100 / divisor"),
    b.user("check", "核对", candidateGroups="amr"),
    b.end(),
    *b.chain("start", "calc", "check", "end"),
)


def one_service(key: str, topic: str) -> str:
    return b.doc(key, b.start(), service("call", topic), b.end(), *b.chain("start", "call", "end"))


@pytest.fixture
def api(app: Govflow) -> ApiHarness:
    harness = ApiHarness(app)
    harness.user("ops1", ["ops"])
    harness.user("clerk1", ["clerk"], ["amr"])
    return harness


def stuck(api: ApiHarness, **params: str) -> dict[str, set[str]]:
    api.tokens.clear()  # the frozen clock may have run past the tokens' lifetime
    response = api.get("/api/ops/stuck", "ops1", params=params)
    assert response.status_code == 200, response.text
    found: dict[str, set[str]] = {}
    for entry in response.json():
        found.setdefault(entry["definition_key"], set()).add(entry["reason"])
        assert entry["action"] and entry["detail"] and entry["since"]
    return found


def test_every_stuck_reason_is_found_with_since_and_action(gf, app, api, database_url):
    from tests.job_handlers import OUTAGES

    for text, name in (
        (one_service("job_wait", "nobody.listens"), "job_wait.bpmn"),
        (one_service("job_fail", "test.outside"), "job_fail.bpmn"),
        (TIMER_WAIT, "timer_wait.bpmn"),
        (OVERDUE_TASK, "overdue_task.bpmn"),
        (MESSAGE_WAIT, "message_wait.bpmn"),
        (DIVIDE, "divide.bpmn"),
    ):
        gf.deploy(text, name)
    frozen = clock.FrozenClock(MONDAY_9)
    OUTAGES.add("outside")
    try:
        with clock.use_clock(frozen):
            cases = {
                key: gf.start(key, **({"divisor": 0} if key == "divide" else {})).id
                for key in (
                    "job_wait",
                    "job_fail",
                    "timer_wait",
                    "overdue_task",
                    "message_wait",
                    "divide",
                )
            }
            for _ in range(2):  # job_fail's two attempts; job_wait has no handler to run it
                drain(app)
                frozen.advance(timedelta(seconds=10))
            assert stuck(api) == {
                "job_fail": {"failed_job"},
                "divide": {"instance_error"},
            }
            frozen.advance(timedelta(minutes=30))
            found = stuck(api)
            assert found["job_wait"] == {"job_without_worker"}
            assert found["timer_wait"] == {"timer_not_fired"}
            assert "overdue_task" not in found  # due at 10:00, it is 09:30
            frozen.advance(timedelta(hours=1))
            assert stuck(api)["overdue_task"] == {"task_unclaimed_overdue"}
            assert "message_wait" not in stuck(api)  # 1.5 office hours without progress

            # two days later the message never came: 8 office hours passed without progress
            frozen.set(datetime(2026, 11, 4, 1, 0, tzinfo=UTC))
            found = stuck(api)
            assert found["message_wait"] == {"no_progress"}
            # a timer long past due that never fired is no progress to come either
            assert found["timer_wait"] == {"timer_not_fired", "no_progress"}
            api.tokens.clear()
            [entry] = [
                e
                for e in api.get("/api/ops/stuck", "ops1", params={"reason": "no_progress"}).json()
                if e["instance_id"] == cases["message_wait"]
            ]
            assert "message 'fee_paid' at wait_fee" in entry["detail"]
            assert entry["since"].startswith("2026-11-02T01:00")
            [job_entry] = [
                e
                for e in api.get(
                    "/api/ops/stuck", "ops1", params={"reason": "job_without_worker"}
                ).json()
            ]
            assert "govflow worker --queues nobody" in job_entry["action"]

            # thresholds are configurable per request
            relaxed = stuck(api, job_pending_minutes="100000")
            assert relaxed["job_wait"] == {"no_progress"}  # still waiting on its job
            api.tokens.clear()
            [idle] = [
                e
                for e in api.get(
                    "/api/ops/stuck",
                    "ops1",
                    params={"reason": "no_progress", "job_pending_minutes": "100000"},
                ).json()
                if e["instance_id"] == cases["job_wait"]
            ]
            assert idle["refs"]["waiting_on"] == ["1 job(s) on nobody.listens"]

            # putting things right clears them
            Scheduler(app).tick()
            assert "timer_not_fired" not in stuck(api).get("timer_wait", set())
            gf.claim(gf.task(cases["overdue_task"], "review").id, gf.clerk("li", "amr"))
            assert "overdue_task" not in stuck(api)
            api.tokens.clear()
            delivered = api.post("/api/messages", "ops1", json={"name": "fee_paid", "payload": {}})
            assert delivered.status_code == 200, delivered.text
            assert "message_wait" not in stuck(api)

            result = CliRunner().invoke(
                main, ["--db", database_url, "ops", "stuck", "--reason", "failed_job"]
            )
            assert result.exit_code == 0, result.output
            assert cases["job_fail"] in result.stdout
            assert "failed_job" in result.stdout and "retry incident" in result.stdout
    finally:
        OUTAGES.discard("outside")


@pytest.mark.parametrize("bound", ["exact", "clock_only"])
def test_the_limit_counts_stuck_causes_oldest_first_not_cases_idle_outside_office_hours(
    gf, api, monkeypatch, bound
):
    """Friday 16:00 a case starts waiting on a message; a task due at 17:30 is never claimed.
    Saturday 10:00 the message case has been idle for 18 hours by the clock but only 1.5
    office hours: it is not stuck. Asked for one entry, ops gets the overdue task, although
    the idle case is older. With "clock_only" the statement is let to read cases idle by the
    clock (as if the office-hours bound were loose), so the office-hours test drops one after
    the limit and the detector has to read on."""
    from engine.ops import stuck as detector

    if bound == "clock_only":
        monkeypatch.setattr(detector, "_idle_before", lambda _cal, _now, _h, cutoff: cutoff)
    gf.deploy(MESSAGE_WAIT, "message_wait.bpmn")
    gf.deploy(OVERDUE_TASK, "overdue_task.bpmn")
    friday_16 = datetime(2026, 11, 6, 8, 0, tzinfo=UTC)
    frozen = clock.FrozenClock(friday_16)
    with clock.use_clock(frozen):
        waiting = gf.start("message_wait").id
        frozen.advance(timedelta(minutes=30))
        overdue = gf.start("overdue_task").id
        frozen.set(datetime(2026, 11, 7, 2, 0, tzinfo=UTC))  # Saturday 10:00 in Beijing
        api.tokens.clear()
        response = api.get("/api/ops/stuck", "ops1", params={"limit": "1"})
        assert response.status_code == 200, response.text
        [entry] = response.json()
        assert (entry["instance_id"], entry["reason"]) == (overdue, "task_unclaimed_overdue")
        assert entry["since"].startswith("2026-11-06T09:30")
        everything = api.get("/api/ops/stuck", "ops1").json()
        assert waiting not in {e["instance_id"] for e in everything}

        # Monday 15:00: 1.5 + 6.5 office hours, so now it is stuck, and the older of the two
        frozen.set(datetime(2026, 11, 9, 7, 0, tzinfo=UTC))
        api.tokens.clear()
        [entry] = api.get("/api/ops/stuck", "ops1", params={"limit": "1"}).json()
        assert (entry["instance_id"], entry["reason"]) == (waiting, "no_progress")
        both = api.get("/api/ops/stuck", "ops1", params={"limit": "2"}).json()
        assert [e["reason"] for e in both] == ["no_progress", "task_unclaimed_overdue"]


def failed_divide_with(gf, app, **incident: Any) -> tuple[str, int, int]:
    """A divide case failed at its script, with one more incident (these fields): the case,
    the script's incident and the added one."""
    failed = gf.start("divide", divisor=0).id
    with app.database.session() as session:
        [script] = session.scalars(select(Incident).where(Incident.instance_id == failed))
        added = Incident(instance_id=failed, **incident)
        session.add(added)
        session.flush()
        return failed, script.id, added.id


def test_a_case_in_error_is_one_entry_with_all_its_open_incidents(gf, app, api):
    gf.deploy(DIVIDE, "divide.bpmn")
    gf.deploy(OVERDUE_TASK, "overdue_task.bpmn")
    frozen = clock.FrozenClock(MONDAY_9)
    with clock.use_clock(frozen):
        failed, first_id, second_id = failed_divide_with(
            gf,
            app,
            element_id="check",
            kind="failed",
            message="a second fault",
            created_at=MONDAY_9 + timedelta(minutes=5),
        )
        frozen.advance(timedelta(minutes=10))
        late = gf.start("overdue_task").id  # due at 11:10, unclaimed
        frozen.advance(timedelta(hours=3))

        api.tokens.clear()
        found = api.get("/api/ops/stuck", "ops1").json()
        assert [(e["instance_id"], e["reason"]) for e in found] == [
            (failed, "instance_error"),
            (late, "task_unclaimed_overdue"),
        ]
        error = found[0]
        assert error["refs"]["incident_ids"] == [first_id, second_id]
        assert error["element_id"] == "calc"
        assert error["since"].startswith("2026-11-02T01:00")
        assert (
            f"#{first_id} " in error["detail"]
            and f"#{second_id} failed at check" in (error["detail"])
        )
        # asked for alone (its incidents sorted before they are checked), the same one entry
        alone = api.get("/api/ops/stuck", "ops1", params={"reason": "instance_error"}).json()
        assert alone == [error]
        # the two incidents are one cause: a limit of 2 still reaches the task
        limited = api.get("/api/ops/stuck", "ops1", params={"limit": "2"}).json()
        assert [e["reason"] for e in limited] == ["instance_error", "task_unclaimed_overdue"]


def test_a_case_in_error_is_dated_from_its_oldest_open_incident_not_a_resolved_one(gf, app, api):
    """A case that failed, was put right and failed again: its earlier, resolved incident
    neither hides the open one nor dates the entry."""
    gf.deploy(DIVIDE, "divide.bpmn")
    frozen = clock.FrozenClock(MONDAY_9)
    with clock.use_clock(frozen):
        failed, open_id, _ = failed_divide_with(
            gf,
            app,
            element_id="calc",
            kind="failed",
            message="an earlier fault, retried",
            created_at=MONDAY_9 - timedelta(days=1),
            resolved_at=MONDAY_9 - timedelta(hours=20),
        )
        frozen.advance(timedelta(minutes=10))
        api.tokens.clear()
        [entry] = api.get("/api/ops/stuck", "ops1", params={"reason": "instance_error"}).json()
    assert (entry["instance_id"], entry["refs"]["incident_ids"]) == (failed, [open_id])
    assert entry["since"].startswith("2026-11-02T01:00")


def test_a_failed_job_on_a_case_in_error_is_its_own_entry_and_does_not_date_the_error(gf, app, api):
    """A case whose job failed yesterday and whose script failed today: ops sees the job as
    failed_job, dated yesterday, and the case's error as instance_error, dated today; the job's
    incident neither hides the error nor is listed with it."""
    gf.deploy(DIVIDE, "divide.bpmn")
    frozen = clock.FrozenClock(MONDAY_9)
    with clock.use_clock(frozen):
        failed, script_id, job_id = failed_divide_with(
            gf,
            app,
            element_id="notify",
            kind="job",
            message="the SMS gateway refused",
            created_at=MONDAY_9 - timedelta(days=1),
        )
        frozen.advance(timedelta(minutes=10))
        api.tokens.clear()
        entries = [
            e for e in api.get("/api/ops/stuck", "ops1").json() if e["instance_id"] == failed
        ]
    assert sorted(e["reason"] for e in entries) == ["failed_job", "instance_error"]
    found = {e["reason"]: e for e in entries}
    assert found["instance_error"]["refs"]["incident_ids"] == [script_id]
    assert found["instance_error"]["since"].startswith("2026-11-02T01:00")
    assert f"#{job_id}" not in found["instance_error"]["detail"]
    assert found["failed_job"]["refs"]["incident_id"] == job_id
    assert found["failed_job"]["since"].startswith("2026-11-01T01:00")


def test_a_timer_that_is_done_or_superseded_is_no_progress_to_come(gf, app, api):
    """A case waits on a message; a timer row of it still says due tomorrow but is done (a
    boundary whose task ended) or superseded: only a waiting timer is progress to come."""
    gf.deploy(MESSAGE_WAIT, "message_wait.bpmn")
    frozen = clock.FrozenClock(MONDAY_9)
    with clock.use_clock(frozen):
        waiting = gf.start("message_wait").id
        frozen.set(datetime(2026, 11, 4, 1, 0, tzinfo=UTC))  # 16 office hours later
        tomorrow = clock.now() + timedelta(days=1)
        with app.database.session() as session:
            timer = Timer(
                instance_id=waiting,
                task_id="00000000-0000-0000-0000-000000000001",
                element_id="reminder",
                state="waiting",
                due_at=tomorrow,
            )
            session.add(timer)
            session.flush()
            timer_id = timer.id
        assert "message_wait" not in stuck(api, reason="no_progress")
        for state in ("done", "superseded"):
            with app.database.session() as session:
                row = session.get(Timer, timer_id)
                assert row is not None
                row.state = state
            assert stuck(api, reason="no_progress")["message_wait"] == {"no_progress"}


def test_on_postgresql_the_stuck_detector_is_planned_for_its_values_on_every_call(gf, app):
    """psycopg prepares the detector's statement after five calls on a connection; PostgreSQL
    must not then run it with a plan made for any values, which cannot use the partial index
    of unclaimed open tasks (at 1M cases without statistics: 0.25-4 s against 15 ms). Here the
    server settles on generic plans at once, as it may on its own."""
    if not _is_pg():
        pytest.skip("plan caching is PostgreSQL's")
    from engine.ops.stuck import Thresholds, detect

    gf.deploy(OVERDUE_TASK, "overdue_task.bpmn")
    gf.start("overdue_task")
    thresholds = Thresholds.from_settings(app.settings)
    with app.database.read_session() as session:
        session.execute(sql_text("SET LOCAL plan_cache_mode = force_generic_plan"))
        calendar = app.services.calendars.get()
        for _ in range(8):
            detect(session, clock.now(), calendar, thresholds, reason="task_unclaimed_overdue")
        prepared = session.execute(
            sql_text(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                "WHERE statement LIKE '%human_tasks.due_at%'"
            )
        ).all()
    assert prepared, "the detector's statement was never prepared"
    assert [(generic, custom > 0) for generic, custom in prepared] == [(0, True)] * len(prepared)
    with app.database.read_session() as session:  # the setting ended with its transaction
        assert session.execute(sql_text("SHOW plan_cache_mode")).scalar() == "auto"


def test_edit_variables_then_retry_incidents_in_bulk(gf, app, api):
    gf.deploy(DIVIDE, "divide.bpmn")
    ids = [gf.start("divide", divisor=0).id for _ in range(3)]
    assert {gf.detail(i)["status"] for i in ids} == {"error"}

    refused = api.client.patch(
        f"/api/ops/instances/{ids[0]}/variables",
        headers=api.headers("ops1"),
        json={"values": {"divisor": 4}},
    )
    assert refused.status_code == 422
    assert refused.json()["details"][0]["path"] == "$.reason"
    bad = api.client.patch(
        f"/api/ops/instances/{ids[0]}/variables",
        headers=api.headers("ops1"),
        json={"values": {"divisor": 4}, "remove": ["nope"], "reason": "x"},
    )
    assert bad.status_code == 422 and "no variable 'nope'" in bad.json()["message"]
    clerk = api.client.patch(
        f"/api/ops/instances/{ids[0]}/variables",
        headers=api.headers("clerk1"),
        json={"values": {"divisor": 4}, "reason": "x"},
    )
    assert clerk.status_code == 403
    for instance_id in ids[:2]:
        edited = api.client.patch(
            f"/api/ops/instances/{instance_id}/variables",
            headers=api.headers("ops1"),
            json={"values": {"divisor": 4}, "reason": "申请人更正了数据"},
        )
        assert edited.status_code == 200, edited.text
        assert edited.json()["divisor"] == 4

    retried = api.post(
        "/api/ops/incidents/retry",
        "ops1",
        json={"definition_key": "divide", "reason": "数据已更正"},
    )
    assert retried.status_code == 200, retried.text
    assert retried.json()["selected"] == 3 and len(retried.json()["done"]) == 3
    for instance_id in ids[:2]:
        detail = gf.detail(instance_id)
        assert detail["status"] == "running"
        assert detail["variables"]["result"] == 25
        assert [t["element_id"] for t in detail["tasks"] if t["state"] == "open"] == ["check"]
    third = gf.detail(ids[2])
    assert third["status"] == "error"  # still dividing by zero: a new incident, nothing lost
    assert len([i for i in third["incidents"] if i["resolved_at"] is None]) == 1

    # ops moves the third case past the failing script instead
    moved = api.post(
        f"/api/ops/instances/{ids[2]}/move",
        "ops1",
        json={"from": "calc", "to": "check", "reason": "人工核算"},
    )
    assert moved.status_code == 200, moved.text
    third = gf.detail(ids[2])
    assert third["status"] == "running"
    assert not [i for i in third["incidents"] if i["resolved_at"] is None]
    assert [t["element_id"] for t in third["tasks"] if t["state"] == "open"] == ["check"]

    with app.database.read_session() as session:
        events = list(
            session.scalars(
                select(AuditEvent).where(
                    AuditEvent.command.in_(("edit_variables", "retry", "move_token"))
                )
            )
        )
    assert {e.command for e in events} == {"edit_variables", "retry", "move_token"}
    assert all(e.actor == "ops1" and e.data and e.data.get("reason") for e in events)
    edit = next(e for e in events if e.command == "edit_variables")
    assert edit.details and edit.details["previous"] == {"divisor": 0}


def test_move_token_forward_and_back_with_boundary_events(gf, app, api):
    gf.deploy(two_step(boundary=True))
    frozen = clock.FrozenClock(MONDAY_9)
    with clock.use_clock(frozen):
        case = gf.start("two_step").id

        def timers() -> list[str]:
            with app.database.read_session() as session:
                return list(
                    session.scalars(
                        select(Timer.element_id).where(
                            Timer.instance_id == case, Timer.state == "waiting"
                        )
                    )
                )

        assert timers() == ["late"]
        for body, status, text in (
            ({"from": "A", "to": "nowhere", "reason": "r"}, 422, "element 'nowhere' is not"),
            ({"from": "B", "to": "A", "reason": "r"}, 409, "no token is at 'B'"),
            ({"from": "A", "to": "B"}, 422, "reason"),
        ):
            response = api.post(f"/api/ops/instances/{case}/move", "ops1", json=body)
            assert response.status_code == status, response.text
            assert text in response.text
        assert (
            api.post(
                f"/api/ops/instances/{case}/move",
                "clerk1",
                json={"from": "A", "to": "B", "reason": "r"},
            ).status_code
            == 403
        )

        moved = api.post(
            f"/api/ops/instances/{case}/move",
            "ops1",
            json={"from": "A", "to": "B", "reason": "材料已在窗口核验"},
        )
        assert moved.status_code == 200, moved.text
        assert [t.element_id for t in gf.open_tasks(case)] == ["B"]
        assert timers() == []  # the boundary timer left with A

        back = api.post(
            f"/api/ops/instances/{case}/move",
            "ops1",
            json={"from": "B", "to": "A", "reason": "退回重新受理"},
        )
        assert back.status_code == 200, back.text
        assert [t.element_id for t in gf.open_tasks(case)] == ["A"]
        assert timers() == ["late"]  # entering A arms its boundary timer again
        clerk = gf.clerk("li", "amr")
        gf.complete(gf.task(case, "A").id, clerk)
        gf.complete(gf.task(case, "B").id, clerk)
    assert gf.detail(case)["status"] == "completed"


def test_bulk_cancel_suspend_and_resume_by_filter(gf, app, api):
    gf.deploy(two_step())
    clerk = gf.clerk("li", "amr")
    ids = [gf.start("two_step").id for _ in range(3)]
    gf.complete(gf.task(ids[2], "A").id, clerk)

    empty = api.post("/api/ops/instances/cancel", "ops1", json={"reason": "清理"})
    assert empty.status_code == 422 and "needs a filter" in empty.json()["message"]
    no_reason = api.post("/api/ops/instances/cancel", "ops1", json={"element_id": "A"})
    assert no_reason.status_code == 422

    cancelled = api.post(
        "/api/ops/instances/cancel",
        "ops1",
        json={"definition_key": "two_step", "element_id": "A", "reason": "重复申请"},
    )
    assert cancelled.status_code == 200, cancelled.text
    assert sorted(cancelled.json()["done"]) == sorted(ids[:2])
    assert [gf.detail(i)["status"] for i in ids] == ["cancelled", "cancelled", "running"]

    suspended = api.post(
        "/api/ops/instances/suspend",
        "ops1",
        json={"definition_key": "two_step", "reason": "系统切换"},
    )
    assert suspended.json()["done"] == [ids[2]]
    assert gf.detail(ids[2])["status"] == "suspended"
    resumed = api.post(
        "/api/ops/instances/resume", "ops1", json={"status": "suspended", "reason": "切换完成"}
    )
    assert resumed.json()["done"] == [ids[2]]
    assert gf.detail(ids[2])["status"] == "running"

    result = CliRunner().invoke(
        main,
        [
            "--db",
            app.settings.database_url,
            "ops",
            "cancel",
            ids[2],
            "--reason",
            "测试",
            "--as",
            "ops",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"done\t{ids[2]}" in result.stdout
    assert gf.detail(ids[2])["status"] == "cancelled"


def test_migration_moves_100_cases_and_the_dry_run_names_those_on_a_removed_element(gf, app, api):
    gf.deploy(two_step("B"))
    clerk = gf.clerk("li", "amr")
    ids = [gf.start("two_step").id for _ in range(100)]
    at_b = ids[::5] + ids[1::5]  # 40 cases go on to B, which version 2 removes
    for instance_id in at_b:
        gf.complete(gf.task(instance_id, "A").id, clerk)
    assert gf.deploy(two_step("C")).processes[0].version == 2

    plan = api.post(
        "/api/ops/migrations", "ops1", json={"definition_key": "two_step", "to_version": 2}
    )
    assert plan.status_code == 200, plan.text
    body = plan.json()
    assert body["dry_run"] is True and body["migrated"] == []
    assert sorted(body["movable"]) == sorted(set(ids) - set(at_b))
    assert sorted(b["instance_id"] for b in body["blocked"]) == sorted(at_b)
    assert all(
        b["reason"] == "it is parked on element 'B', which version 2 does not have"
        for b in body["blocked"]
    )
    assert {gf.detail(i)["version"] for i in ids} == {1}  # a dry run changes nothing

    without_reason = api.post(
        "/api/ops/migrations",
        "ops1",
        json={"definition_key": "two_step", "to_version": 2, "dry_run": False},
    )
    assert without_reason.status_code == 422

    applied = api.post(
        "/api/ops/migrations",
        "ops1",
        json={
            "definition_key": "two_step",
            "to_version": 2,
            "dry_run": False,
            "reason": "审核环节调整",
        },
    )
    assert applied.status_code == 200, applied.text
    assert sorted(applied.json()["migrated"]) == sorted(set(ids) - set(at_b))
    assert applied.json()["refused"] == []
    moved = next(i for i in ids if i not in at_b)
    assert gf.detail(moved)["version"] == 2
    gf.complete(gf.task(moved, "A").id, clerk)
    assert [t.element_id for t in gf.open_tasks(moved)] == ["C"]  # version 2's path
    gf.complete(gf.task(moved, "C").id, clerk)
    assert gf.detail(moved)["status"] == "completed"
    # the blocked ones stay on version 1 and still finish there
    gf.complete(gf.task(at_b[0], "B").id, clerk)
    assert (gf.detail(at_b[0])["status"], gf.detail(at_b[0])["version"]) == ("completed", 1)
    again = api.post(
        "/api/ops/migrations", "ops1", json={"definition_key": "two_step", "to_version": 2}
    ).json()
    assert again["movable"] == [] and len(again["blocked"]) == 39


def test_retention_archives_documents_of_old_ended_cases(gf, app, api, database_url):
    gf.deploy(two_step())
    clerk = gf.clerk("li", "amr")
    frozen = clock.FrozenClock(MONDAY_9)
    with clock.use_clock(frozen):
        done = gf.start("two_step").id
        for element in ("A", "B"):
            gf.complete(gf.task(done, element).id, clerk)
        live = gf.start("two_step").id
        with app.database.read_session() as session:
            original = session.get(Instance, done).document
        frozen.advance(timedelta(days=91))
        api.tokens.clear()
        dry = api.post("/api/ops/purge", "ops1", json={"days": 90, "dry_run": True}).json()
        assert (dry["archived"], dry["dry_run"]) == (1, True)
        assert retention.archived_document(app.database, done) is None
        purged = api.post("/api/ops/purge", "ops1", json={}).json()  # default 90 days
        assert (purged["days"], purged["archived"]) == (90, 1)
        assert purged["bytes_after"] < purged["bytes_before"]
        with app.database.read_session() as session:
            assert session.get(Instance, done).document == ""
            assert session.get(Instance, live).document != ""  # still running
            stored = session.get(ArchivedDocument, done)
            assert stored is not None
            assert json.loads(zlib.decompress(stored.document))["completed"] is True
            assert session.scalars(
                select(AuditEvent.actor).where(AuditEvent.command == "purge")
            ).all() == ["ops1"]
        assert retention.archived_document(app.database, done) == original
        detail = api.get(f"/api/instances/{done}", "ops1").json()
        assert detail["status"] == "completed" and len(detail["history"]) >= 3
        result = CliRunner().invoke(main, ["--db", database_url, "ops", "purge", "--days", "90"])
        assert result.exit_code == 0, result.output
        assert "archived 0 document(s)" in result.stdout


def test_prometheus_metrics(gf, app, api):
    gf.deploy(two_step())
    gf.deploy(DIVIDE, "divide.bpmn")
    for _ in range(2):
        gf.start("two_step")
    gf.start("divide", divisor=0)
    response = api.client.get("/metrics")
    assert response.status_code == 200
    text = response.text
    assert 'govflow_instances{process="two_step",state="running"} 2.0' in text
    assert 'govflow_instances{process="divide",state="error"} 1.0' in text
    assert 'govflow_open_tasks{claimed="false",process="two_step"} 2.0' in text
    assert 'govflow_open_incidents{kind="failed"} 1.0' in text
    assert 'govflow_command_seconds_count{command="start",outcome="ok"}' in text
    assert "govflow_timers_overdue 0.0" in text
    assert "govflow_open_task_oldest_age_seconds" in text

    guarded = ApiHarness(Govflow(replace(app.settings, metrics_token="scrape-secret")))
    try:
        assert guarded.client.get("/metrics").status_code == 401
        ok = guarded.client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
        assert ok.status_code == 200 and "govflow_instances" in ok.text
    finally:
        guarded.app.dispose()
