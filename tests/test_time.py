"""Working days, provisional deadlines, SLA clocks and timers fired by the scheduler."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from engine.cli import main
from engine.runtime import calendar_ops, clock, commands, workcalendar
from engine.runtime.scheduler import Scheduler
from engine.store.models import AuditEvent, SentMessage, Timer
from tests import bpmn as b
from tests.test_jobs import drain, service

CST = ZoneInfo("Asia/Shanghai")


def at(text: str) -> clock.FrozenClock:
    """A frozen clock at a local (Beijing) time."""
    return clock.FrozenClock(datetime.fromisoformat(text).replace(tzinfo=CST).astimezone(UTC))


def cli(database_url: str, *args: str) -> str:
    result = CliRunner().invoke(main, ["--db", database_url, *args])
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


# --- the calendar ----------------------------------------------------------------------------


def test_known_dates(app, database_url):
    calendar = app.services.calendars.get()
    assert cli(database_url, "calendar", "add-workdays", "2026-09-30", "5") == "2026-10-13"
    assert calendar.is_workday(date(2026, 10, 10))  # Saturday, make-up working day
    assert not calendar.is_workday(date(2026, 10, 5))  # Monday in the National Day holiday
    assert cli(database_url, "calendar", "add-workdays", "2026-02-13", "3") == "2026-02-25"
    assert calendar.add_workdays(date(2026, 1, 1), 248).day.year == 2026


def test_a_count_into_an_unknown_year_is_provisional_never_raised(app, database_url):
    assert (
        cli(database_url, "calendar", "add-workdays", "2026-12-28", "5") == "2027-01-04 provisional"
    )
    deadline = app.services.calendars.get().add_workdays(date(2026, 12, 28), 5)
    assert (deadline.provisional_year, deadline.day) == (2027, date(2027, 1, 4))


def test_importing_a_year_recomputes_provisional_due_dates(gf, app, database_url, tmp_path):
    gf.deploy(
        b.doc(
            "year_end",
            b.start(),
            b.script("limit", "sla_start(5)"),
            b.user("review", "审查", candidateGroups="amr", dueDate="${workdays(5)}"),
            b.end(),
            *b.chain("start", "limit", "review", "end"),
        )
    )
    with clock.use_clock(at("2026-12-28T10:00:00")):
        instance = gf.start("year_end")
        task = gf.task(instance.id, "review")
        assert task.due_at == datetime(2027, 1, 4, 17, 30, tzinfo=CST)
        assert task.due_provisional_year == 2027
        assert calendar_ops.provisional_summary(app) == [
            {"year": 2027, "tasks": 1, "timers": 0, "clocks": 1, "instances": 1}
        ]
        listed = cli(database_url, "calendar", "provisional")
        assert listed == "2027: 1 task due dates, 0 timers, 1 clocks in 1 cases"
        # the State Council's notice makes 2027-01-04 part of the New Year holiday
        notice = tmp_path / "2027.json"
        notice.write_text(
            '{"year": 2027, "holidays": [{"date": "2027-01-01", "name": "元旦"},'
            ' {"date": "2027-01-04", "name": "元旦"}], "workdays": []}',
            encoding="utf-8",
        )
        out = cli(database_url, "calendar", "import", str(notice))
        assert "recomputed 1 task due dates, 1 clocks" in out
        task = gf.task(instance.id, "review")
        # 1 January and 4 January are now off: the five working days end on 6 January
        assert (task.due_at, task.due_provisional_year) == (
            datetime(2027, 1, 6, 17, 30, tzinfo=CST),
            None,
        )
        assert calendar_ops.provisional_summary(app) == []
        detail = gf.detail(instance.id)
    assert detail["clocks"][0]["due_date"] == "2027-01-06"
    assert cli(database_url, "calendar", "add-workdays", "2026-12-28", "5") == "2027-01-06"


def test_a_calendar_file_with_mistakes_is_refused_with_the_field(database_url, app, tmp_path):
    notice = tmp_path / "bad.json"
    notice.write_text('{"year": 2027, "holidays": [{"date": "2027-13-01"}]}', encoding="utf-8")
    result = CliRunner().invoke(main, ["--db", database_url, "calendar", "import", str(notice)])
    assert result.exit_code == 1
    assert "'2027-13-01' is not a date" in result.stderr
    assert "$.holidays[0].date" in result.stderr
    assert not app.services.calendars.get().knows(2027)


# --- SLA clocks --------------------------------------------------------------------------------


SUPPLEMENT = b.doc(
    "supplement",
    b.start(),
    b.script("accept", "sla_start(5)"),
    b.user("check", "审查", candidateGroups="amr"),
    b.xor("complete", default="f_ok"),
    b.script("ask", "sla_pause(reason='补正')"),
    b.user("returns", "申请人补正", candidateGroups="center"),
    b.script("back", "sla_resume()"),
    b.user("decide", "决定", candidateGroups="amr"),
    b.end(),
    *b.chain("start", "accept", "check", "complete"),
    b.flow("f_missing", "complete", "ask", condition="not materials_ok"),
    *b.chain("ask", "returns", "back", "check", prefix="g"),
    b.flow("f_ok", "complete", "decide"),
    b.flow("f_end", "decide", "end"),
)


def test_a_supplement_pause_moves_the_deadline_by_the_paused_working_days(gf, app):
    gf.deploy(SUPPLEMENT)
    amr, front = gf.clerk("li", "amr"), gf.clerk("wang", "center")
    frozen = at("2026-11-02T09:00:00")  # Monday
    with clock.use_clock(frozen):
        instance = gf.start("supplement")
        [case] = gf.detail(instance.id)["clocks"]
        assert (case["state"], case["due_date"]) == ("running", "2026-11-09")
        gf.complete(gf.task(instance.id, "check").id, amr, materials_ok=False)  # Monday: pause
        assert gf.detail(instance.id)["clocks"][0]["state"] == "paused"
        frozen.set(datetime(2026, 11, 5, 2, 0, tzinfo=UTC))  # Thursday
        gf.complete(gf.task(instance.id, "returns").id, front)  # resume: Tue-Thu did not count
        [case] = gf.detail(instance.id)["clocks"]
        assert (case["state"], case["paused_workdays"], case["due_date"]) == (
            "running",
            3,
            "2026-11-12",
        )
        assert case["remaining_workdays"] == 5


def test_clocks_pause_and_resume_as_commands_for_special_procedures(gf, app):
    gf.deploy(SUPPLEMENT)
    amr = gf.clerk("li", "amr")
    frozen = at("2026-11-02T09:00:00")
    with clock.use_clock(frozen):
        instance = gf.start("supplement")
        app.runner.execute(commands.ChangeClock(instance.id, "pause", reason="现场核查"), amr)
        with pytest.raises(Exception, match="is paused, it cannot pause"):
            app.runner.execute(commands.ChangeClock(instance.id, "pause"), amr)
        frozen.advance(timedelta(days=7))  # the following Monday
        app.runner.execute(commands.ChangeClock(instance.id, "resume"), gf.ops)
        [case] = gf.detail(instance.id)["clocks"]
    assert (case["paused_workdays"], case["due_date"]) == (5, "2026-11-16")
    history = [h for h in gf.detail(instance.id)["history"] if h["command"] == "clock"]
    assert [(h["actor"], h["data"]["action"], h["data"]["reason"]) for h in history] == [
        ("li", "pause", "现场核查"),
        ("ops", "resume", None),
    ]


# --- timers and the scheduler -------------------------------------------------------------------


def boundary(id: str, attached: str, expression: str, cancel: bool) -> str:
    return (
        f'<bpmn:boundaryEvent id="{id}" attachedToRef="{attached}" cancelActivity="{str(cancel).lower()}">'
        f"<bpmn:timerEventDefinition><bpmn:timeDate>{expression}</bpmn:timeDate>"
        "</bpmn:timerEventDefinition></bpmn:boundaryEvent>"
    )


ESCALATION = b.doc(
    "escalation",
    b.start(),
    b.user("approve", "审批", candidateGroups="amr", dueDate="${workdays(2)}"),
    boundary("remind", "approve", "${workdays(1)}", cancel=False),
    service("sms", "notify.sms", "短信催办"),
    b.end("reminded"),
    boundary("overdue", "approve", "${workdays(2)}", cancel=True),
    b.user("supervise", "督办", candidateGroups="center"),
    b.end(),
    b.end("escalated"),
    *b.chain("start", "approve", "end"),
    b.flow("r1", "remind", "sms"),
    b.flow("r2", "sms", "reminded"),
    b.flow("o1", "overdue", "supervise"),
    b.flow("o2", "supervise", "escalated"),
)


def test_boundary_timers_remind_then_escalate_on_working_days(gf, app):
    gf.deploy(ESCALATION)
    frozen = at("2026-09-29T09:00:00")  # Tuesday before the National Day holiday
    with clock.use_clock(frozen):
        instance = gf.start("escalation", phone="13800138000", sms_text="您有一件审批即将到期")
        with app.database.read_session() as session:
            due = {
                t.element_id: t.due_at
                for t in session.scalars(select(Timer).where(Timer.instance_id == instance.id))
            }
        assert due == {
            "remind": datetime(2026, 9, 30, 17, 30, tzinfo=CST),
            "overdue": datetime(2026, 10, 8, 17, 30, tzinfo=CST),
        }
        scheduler = Scheduler(app)
        assert scheduler.tick() == 0
        frozen.set(datetime(2026, 9, 30, 17, 31, tzinfo=CST).astimezone(UTC))
        assert scheduler.tick() == 1
        drain(app)
        with app.database.read_session() as session:
            assert session.scalars(select(SentMessage.text)).all() == ["您有一件审批即将到期"]
        assert [t.element_id for t in gf.open_tasks(instance.id)] == ["approve"]  # not interrupted
        frozen.set(datetime(2026, 10, 7, 18, 0, tzinfo=CST).astimezone(UTC))  # still the holiday
        assert scheduler.tick() == 0
        frozen.set(datetime(2026, 10, 8, 17, 31, tzinfo=CST).astimezone(UTC))
        assert scheduler.tick() == 1
    assert [t.element_id for t in gf.open_tasks(instance.id)] == ["supervise"]
    assert gf.task(instance.id, "supervise").candidate_groups == ["center"]
    states = {t["element_id"]: t["state"] for t in gf.detail(instance.id)["tasks"]}
    assert states["approve"] == "cancelled"


def test_a_timer_start_event_is_scheduled_on_deploy(gf, app):
    daily = b.doc(
        "nightly",
        b.start(
            "start",
            "<bpmn:timerEventDefinition><bpmn:timeCycle>R2/2026-11-03T01:00:00+08:00/P1D</bpmn:timeCycle>"
            "</bpmn:timerEventDefinition>",
        ),
        b.user("sweep", "汇总未评价办件", candidateGroups="center"),
        b.end(),
        *b.chain("start", "sweep", "end"),
    )
    frozen = at("2026-11-02T12:00:00")
    with clock.use_clock(frozen):
        gf.deploy(daily)
        scheduler = Scheduler(app)
        assert scheduler.tick() == 0
        frozen.set(datetime(2026, 11, 3, 1, 1, tzinfo=CST).astimezone(UTC))
        assert scheduler.tick() == 1
        frozen.advance(timedelta(days=1))
        assert scheduler.tick() == 1
        frozen.advance(timedelta(days=1))
        assert scheduler.tick() == 0  # R2: two cases in all
    with app.database.read_session() as session:
        started = session.scalars(select(AuditEvent).where(AuditEvent.command == "start")).all()
    assert [e.details["timer"] for e in started] == ["start", "start"]
    assert len(gf.worklist(gf.clerk("wang", "center"))) == 2


def test_overdue_and_due_soon_tasks_and_cases_through_the_api(gf, app):
    from tests.api_support import ApiHarness

    api = ApiHarness(app)
    api.user("front", ["clerk"], ["center"])
    api.user("boss", ["ops"])
    gf.deploy(
        b.doc(
            "limits",
            b.start(),
            b.script("accept", "sla_start(days)"),
            b.user("work", "办理", candidateGroups="center", dueDate="${workdays(days)}"),
            b.end(),
            *b.chain("start", "accept", "work", "end"),
        )
    )
    frozen = at("2026-11-02T09:00:00")
    with clock.use_clock(frozen):
        soon = gf.start("limits", days=1, business_key="SOON")
        later = gf.start("limits", days=5, business_key="LATER")
        frozen.set(
            datetime(2026, 11, 3, 18, 0, tzinfo=CST).astimezone(UTC)
        )  # after Tuesday's close
        tasks = {t["business_key"]: t for t in api.get("/api/tasks", "front").json()}
        assert (tasks["SOON"]["overdue"], tasks["LATER"]["overdue"]) == (True, False)
        assert [t["business_key"] for t in api.get("/api/tasks?overdue=true", "front").json()] == [
            "SOON"
        ]
        assert api.get("/api/tasks?due_soon=true", "front").json() == []
        overdue = api.get("/api/instances?overdue=true", "boss").json()["items"]
        assert [i["business_key"] for i in overdue] == ["SOON"]
        frozen.set(
            datetime(2026, 11, 6, 9, 0, tzinfo=CST).astimezone(UTC)
        )  # Friday: LATER due Monday
        api.tokens.clear()  # yesterday's logins have expired
        assert [t["business_key"] for t in api.get("/api/tasks?due_soon=true", "front").json()] == [
            "LATER"
        ]
        assert [
            i["business_key"]
            for i in api.get("/api/instances?due_soon=true", "boss").json()["items"]
        ] == ["LATER"]
        detail = api.get(f"/api/instances/{later.id}", "boss").json()
        assert detail["clocks"][0]["due_soon"] is True
        paused = api.post(
            f"/api/instances/{later.id}/clocks/case/pause", "front", json={"reason": "专家评审"}
        )
        assert (paused.status_code, paused.json()["state"]) == (200, "paused")
        again = api.post(f"/api/instances/{later.id}/clocks/case/pause", "front", json={})
        assert again.status_code == 409
    assert soon.id != later.id


def test_the_calendar_over_the_api(app):
    from tests.api_support import ApiHarness

    api = ApiHarness(app)
    api.user("front", ["clerk"], ["center"])
    api.user("boss", ["ops"])
    counted = api.get("/api/calendar/add-workdays?date=2026-12-28&count=5", "front").json()
    assert counted == {"date": "2027-01-04", "provisional": True, "unknown_years": [2027]}
    body = {"holidays": [{"date": "2027-01-01", "name": "元旦"}], "workdays": []}
    assert (
        api.client.put("/api/calendar/2027", json=body, headers=api.headers("front")).status_code
        == 403
    )
    assert (
        api.client.put("/api/calendar/2027", json=body, headers=api.headers("boss")).status_code
        == 200
    )
    assert api.get("/api/calendar/2027", "front").json()["known"] is True
    assert (
        api.get("/api/calendar/add-workdays?date=2026-12-28&count=5", "front").json()["date"]
        == "2027-01-05"
    )
    bad = api.client.put(
        "/api/calendar/2027",
        json={"holidays": [{"date": "2026-12-31"}]},
        headers=api.headers("boss"),
    )
    assert bad.status_code == 422
    assert bad.json()["details"][0]["path"] == "$.holidays[0].date"
    edit = api.client.put(
        "/api/calendar/days/2027-01-04",
        json={"is_workday": False, "name": "调休"},
        headers=api.headers("boss"),
    )
    assert edit.status_code == 200
    assert (
        api.get("/api/calendar/add-workdays?date=2026-12-28&count=5", "front").json()["date"]
        == "2027-01-06"
    )


def test_two_schedulers_fire_each_of_1000_due_timers_exactly_once(gf, app):
    # 1000 on PostgreSQL, where the schedulers really race; SQLite serialises writers anyway
    count = 1000 if app.database.dialect == "postgresql" else 200
    gf.deploy(
        b.doc(
            "cooling",
            b.start(),
            '<bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition>'
            "<bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition>"
            "</bpmn:intermediateCatchEvent>",
            b.script("after", "fired = True"),
            b.end(),
            *b.chain("start", "wait", "after", "end"),
        )
    )
    frozen = at("2026-11-02T09:00:00")
    with clock.use_clock(frozen):
        instances = [gf.start("cooling") for _ in range(count)]
        frozen.advance(timedelta(hours=2))
        schedulers = [Scheduler(app, batch=25), Scheduler(app, batch=25)]
        errors: list[BaseException] = []

        def run(scheduler: Scheduler) -> None:
            try:
                while scheduler.tick():
                    pass
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(s,)) for s in schedulers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    with app.database.read_session() as session:
        fired = session.scalars(
            select(AuditEvent.instance_id).where(AuditEvent.command == "timer")
        ).all()
        waiting = session.scalar(
            select(func.count()).select_from(Timer).where(Timer.state != "done")
        )
    assert sorted(fired) == sorted(i.id for i in instances)
    assert waiting == 0
    sample = gf.detail(instances[0].id)
    assert sample["status"] == "completed"
    assert {e["element_id"]: e["completed"] for e in sample["elements"]}["after"] == 1


def test_a_seeded_database_knows_2004_to_2026(app):
    calendar = app.services.calendars.get()
    assert calendar.knows(2004) and calendar.knows(2026) and not calendar.knows(2027)
    with app.database.read_session() as session:
        assert workcalendar.year_days(session, 2026)["workdays"][-1]["date"] == "2026-10-10"


def _material_wait() -> str:
    """补正: after asking for material, whichever comes first wins - the applicant's
    supplement (a message) or the deadline (a timer), which ends the case as not passed."""
    return b.doc(
        "await_material",
        b.start(),
        '<bpmn:eventBasedGateway id="wait" />',
        '<bpmn:intermediateCatchEvent id="supplied"><bpmn:messageEventDefinition '
        'messageRef="msg_supplied" /></bpmn:intermediateCatchEvent>',
        '<bpmn:intermediateCatchEvent id="deadline"><bpmn:timerEventDefinition>'
        "<bpmn:timeDuration>P5D</bpmn:timeDuration></bpmn:timerEventDefinition>"
        "</bpmn:intermediateCatchEvent>",
        b.user("review", "审核补正材料", candidateGroups="center"),
        b.end("lapsed"),
        b.end(),
        b.flow("f1", "start", "wait"),
        b.flow("f2", "wait", "supplied"),
        b.flow("f3", "wait", "deadline"),
        b.flow("f4", "supplied", "review"),
        b.flow("f5", "review", "end"),
        b.flow("f6", "deadline", "lapsed"),
    ).replace(
        "</bpmn:definitions>",
        '<bpmn:message id="msg_supplied" name="material_supplied" />\n</bpmn:definitions>',
    )


def test_an_event_based_gateway_waits_on_its_message_and_its_timer_at_once(gf, app):
    from engine.runtime import messages

    gf.deploy(_material_wait())
    frozen = at("2026-11-02T09:00:00")
    with clock.use_clock(frozen):
        by_mail = gf.start("await_material", business_key="BZ-1").id
        by_deadline = gf.start("await_material", business_key="BZ-2").id
        for case in (by_mail, by_deadline):
            with app.database.read_session() as session:
                assert (
                    session.scalar(
                        select(func.count())
                        .select_from(Timer)
                        .where(Timer.instance_id == case, Timer.state == "waiting")
                    )
                    == 1
                )
            assert gf.detail(case)["status"] == "waiting"
        messages.deliver(app.runner, gf.ops, "material_supplied", {"pages": 3}, "BZ-1")
        assert [t.element_id for t in gf.open_tasks(by_mail)] == ["review"]
        frozen.set(datetime(2026, 11, 7, 9, 1, tzinfo=CST).astimezone(UTC))
        assert Scheduler(app).tick() == 1  # only the case still waiting has a timer left
    assert gf.detail(by_deadline)["status"] == "completed"
    elements = {e["element_id"]: e for e in gf.detail(by_deadline)["elements"]}
    assert elements["lapsed"]["completed"] == 1 and "review" not in elements
    assert gf.detail(by_mail)["variables"]["pages"] == 3
    with pytest.raises(Exception, match="no case is waiting"):
        messages.deliver(app.runner, gf.ops, "material_supplied", {}, "BZ-2")


def test_a_message_event_subprocess_can_be_triggered_from_outside(gf, app):
    """申请人撤回: a withdrawal message interrupts the case wherever it is and runs the
    withdrawal steps instead (an interrupting message start event of an event subprocess)."""
    from engine.runtime import messages

    gf.deploy(
        b.doc(
            "withdrawable",
            b.start(),
            b.user("review", "审查", candidateGroups="center"),
            b.end(),
            *b.chain("start", "review", "end"),
            '<bpmn:subProcess id="withdrawal" triggeredByEvent="true">'
            '<bpmn:startEvent id="withdrawn" isInterrupting="true"><bpmn:messageEventDefinition '
            'messageRef="msg_withdraw" /></bpmn:startEvent>'
            '<bpmn:userTask id="archive" name="撤件归档" camunda:candidateGroups="center" />'
            '<bpmn:endEvent id="withdrawal_end" />'
            '<bpmn:sequenceFlow id="w1" sourceRef="withdrawn" targetRef="archive" />'
            '<bpmn:sequenceFlow id="w2" sourceRef="archive" targetRef="withdrawal_end" />'
            "</bpmn:subProcess>",
        ).replace(
            "</bpmn:definitions>",
            '<bpmn:message id="msg_withdraw" name="withdraw" />\n</bpmn:definitions>',
        )
    )
    kept = gf.start("withdrawable", business_key="CH-1").id
    withdrawn = gf.start("withdrawable", business_key="CH-2").id
    messages.deliver(app.runner, gf.ops, "withdraw", {"reason": "不再办理"}, "CH-2")
    assert [t.element_id for t in gf.open_tasks(withdrawn)] == ["archive"]
    assert [t.element_id for t in gf.open_tasks(kept)] == ["review"]
    states = {t["element_id"]: t["state"] for t in gf.detail(withdrawn)["tasks"]}
    assert states["review"] == "cancelled"


def test_a_process_with_a_counter_start_and_a_message_start_starts_at_the_right_one(gf, app):
    """窗口受理 starts at the counter; an online application (a message) starts at its own
    start event only, never also at the counter's."""
    from engine.runtime import messages

    gf.deploy(
        b.doc(
            "two_ways_in",
            b.start("at_counter"),
            '<bpmn:startEvent id="online"><bpmn:messageEventDefinition messageRef="msg_online" />'
            "</bpmn:startEvent>",
            b.user("counter_check", "窗口核验", candidateGroups="center"),
            b.user("online_check", "网上预审", candidateGroups="center"),
            b.end("end_counter"),
            b.end("end_online"),
            *b.chain("at_counter", "counter_check", "end_counter", prefix="c"),
            *b.chain("online", "online_check", "end_online", prefix="o"),
        ).replace(
            "</bpmn:definitions>",
            '<bpmn:message id="msg_online" name="online_application" />\n</bpmn:definitions>',
        )
    )
    at_counter = gf.start("two_ways_in").id
    online = messages.deliver(app.runner, gf.ops, "online_application", {"name": "张三"}, "WS-1")
    assert online.started
    assert [t.element_id for t in gf.open_tasks(at_counter)] == ["counter_check"]
    assert [t.element_id for t in gf.open_tasks(online.instance_id)] == ["online_check"]
