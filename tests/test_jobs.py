"""Service tasks as durable jobs, run by the in-process executor."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from engine.jobs import store, wakeup
from engine.jobs.dispatcher import Dispatcher
from engine.jobs.execution import run_job
from engine.jobs.executors import InProcessExecutor
from engine.jobs.handlers import load_modules
from engine.jobs.wakeup import CHANNEL, Waiter
from engine.runtime import clock, commands
from engine.store.db import Database
from engine.store.models import AuditEvent, Certificate, Delivery, Job, Payment, SentMessage
from tests import bpmn as b
from workers.delivery import S10_WEIGHTS

load_modules(["tests.job_handlers"])

ERRORS = '<bpmn:error id="err_id" name="身份证号码无效" errorCode="invalid_id_number" />\n'


def service(id: str, topic: str, name: str | None = None) -> str:
    label = f' name="{name}"' if name else ""
    return f'<bpmn:serviceTask id="{id}"{label} camunda:type="external" camunda:topic="{topic}" />'


def error_boundary(id: str, attached: str, error_ref: str) -> str:
    return (
        f'<bpmn:boundaryEvent id="{id}" attachedToRef="{attached}">'
        f'<bpmn:errorEventDefinition errorRef="{error_ref}" /></bpmn:boundaryEvent>'
    )


def parallel_with(topic: str, then: str | None = None) -> str:
    """A service task beside a user task of amr, joined; with `then`, a user task of amr of
    that id after the join (process `job_then_task` instead of `with_job`)."""
    after = [b.user(then, "办结", candidateGroups="amr")] if then else []
    tail = [b.flow("f5", "join", then), b.flow("f6", then, "end")] if then else []
    return b.doc(
        "job_then_task" if then else "with_job",
        b.start(),
        b.par("split"),
        service("call", topic, "外部服务"),
        b.user("meanwhile", "并行办理", candidateGroups="amr"),
        b.par("join"),
        *after,
        b.end(),
        *b.chain("start", "split"),
        b.flow("f1", "split", "call"),
        b.flow("f2", "split", "meanwhile"),
        b.flow("f3", "call", "join"),
        b.flow("f4", "meanwhile", "join"),
        *(tail or [b.flow("f5", "join", "end")]),
    )


ID_CHECK = b.definitions(
    ERRORS,
    b.process(
        "id_check",
        b.start(),
        service("verify", "verify.id_card", "核验身份证"),
        error_boundary("bad_id", "verify", "err_id"),
        b.user("correct", "补正身份证号码", candidateGroups="center"),
        b.user("accept", "受理", candidateGroups="center"),
        b.end(),
        b.end("end_bad"),
        *b.chain("start", "verify", "accept", "end"),
        b.flow("f_bad", "bad_id", "correct"),
        b.flow("f_bad_end", "correct", "end_bad"),
    ),
)


def drain(app, rounds: int = 20) -> int:
    """Run dispatcher rounds with a real in-process executor until nothing is due."""
    total = 0
    for _ in range(rounds):
        executor = InProcessExecutor(app, threads=2)
        handed = Dispatcher(app, executor).tick()
        executor.shutdown()
        total += handed
        if handed == 0:
            break
    return total


def jobs_of(app, instance_id: str) -> list[Job]:
    with app.database.session() as session:
        return list(
            session.scalars(
                select(Job).where(Job.instance_id == instance_id).order_by(Job.created_at)
            )
        )


def test_an_external_service_task_parks_and_the_other_branch_goes_on(gf, app):
    gf.deploy(parallel_with("payment.check"))
    instance = gf.start("with_job", fee_amount=0)
    [job] = jobs_of(app, instance.id)
    assert (job.topic, job.state, job.element_id, job.payload["fee_amount"]) == (
        "payment.check",
        "pending",
        "call",
        0,
    )
    assert gf.detail(instance.id)["status"] == "running"
    gf.complete(gf.task(instance.id, "meanwhile").id, gf.clerk("li", "amr"))
    assert gf.detail(instance.id)["status"] == "waiting"
    assert drain(app) == 1
    detail = gf.detail(instance.id)
    assert detail["status"] == "completed"
    assert detail["variables"]["fee_status"] == "free"
    [job] = jobs_of(app, instance.id)
    assert (job.state, job.attempts, job.result) == (
        "completed",
        1,
        {"fee_status": "free", "fee_paid_amount": 0},
    )


@pytest.mark.parametrize(
    ("id_number", "path"),
    [("11010519491231002X", "accept"), ("110105194912310021", "correct")],
    ids=["valid", "invalid"],
)
def test_an_invalid_id_number_takes_the_bpmn_error_path(gf, app, id_number, path):
    gf.deploy(ID_CHECK)
    instance = gf.start("id_check", id_number=id_number)
    drain(app)
    detail = gf.detail(instance.id)
    assert [t["element_id"] for t in detail["tasks"] if t["state"] == "open"] == [path]
    if path == "correct":
        assert detail["variables"]["error_code"] == "invalid_id_number"
        assert "check digit should be X" in detail["variables"]["error_message"]
    else:
        assert (detail["variables"]["birth_date"], detail["variables"]["gender"]) == (
            "1949-12-31",
            "female",
        )
    assert detail["status"] == "running"


def test_failures_retry_with_exponential_backoff_then_succeed(gf, app):
    gf.deploy(parallel_with("test.flaky"))
    frozen = clock.FrozenClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))
    with clock.use_clock(frozen):
        instance = gf.start("with_job", succeed_on=3)
        drain(app)
        [job] = jobs_of(app, instance.id)
        assert (job.state, job.attempts) == ("pending", 1)
        assert job.next_run_at == frozen.current + timedelta(seconds=2)
        assert "transient failure on attempt 1" in job.error
        assert drain(app) == 0  # not due yet
        frozen.advance(timedelta(seconds=2))
        drain(app)
        [job] = jobs_of(app, instance.id)
        assert (job.state, job.attempts, job.next_run_at) == (
            "pending",
            2,
            frozen.current + timedelta(seconds=4),
        )
        frozen.advance(timedelta(seconds=4))
        drain(app)
    [job] = jobs_of(app, instance.id)
    assert (job.state, job.attempts) == ("completed", 3)
    assert gf.detail(instance.id)["variables"]["flaky_done_on"] == 3


def test_exhausted_retries_raise_an_incident_and_ops_retry_once_fixed(gf, app):
    from tests.job_handlers import OUTAGES

    gf.deploy(parallel_with("test.outside"))
    frozen = clock.FrozenClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))
    OUTAGES.add("outside")
    try:
        with clock.use_clock(frozen):
            instance = gf.start("with_job")
            for _ in range(2):
                drain(app)
                frozen.advance(timedelta(seconds=10))
            detail = gf.detail(instance.id)
            assert detail["status"] == "error"
            [incident] = [i for i in detail["incidents"] if i["resolved_at"] is None]
            assert incident["element_id"] == "call"
            assert "test.outside failed 2 time(s)" in incident["message"]
            assert "ConnectionError: the outside system does not answer" in incident["message"]
            # the other branch keeps running meanwhile
            gf.complete(gf.task(instance.id, "meanwhile").id, gf.clerk("li", "amr"))
            OUTAGES.discard("outside")
            app.runner.execute(commands.RetryIncident(incident["id"], "gateway back"), gf.ops)
            [job] = jobs_of(app, instance.id)
            assert (job.state, job.attempts) == ("pending", 0)
            drain(app)
    finally:
        OUTAGES.discard("outside")
    detail = gf.detail(instance.id)
    assert detail["status"] == "completed"
    assert detail["variables"]["outside_answered_on"] == 1


def test_a_lost_worker_is_replaced_when_its_lease_runs_out_and_its_late_result_is_ignored(gf, app):
    gf.deploy(parallel_with("payment.check"))
    frozen = clock.FrozenClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))
    with clock.use_clock(frozen):
        instance = gf.start("with_job", fee_amount=0)
        # a dispatcher leases the job to a worker that then dies without a word
        [lost], _ = store.claim_due(app.database, frozen.current, 10, grace_s=5)
        assert drain(app) == 0  # still leased
        frozen.advance(timedelta(seconds=30 + 5 + 1))  # payment.check timeout 30 s + grace
        with app.database.session() as session:
            before = session.scalars(select(Job).where(Job.id == lost.job_id)).one().lease_until
        assert before < frozen.current
        assert drain(app) == 1
        # the dead worker wakes up and reports: its lease is gone, nothing is applied twice
        assert run_job(app, lost.job_id, lost.token) == "stale lease: not run"
    [job] = jobs_of(app, instance.id)
    assert (job.state, job.attempts) == ("completed", 2)
    with app.database.session() as session:
        applied = [
            e for e in session.scalars(select(AuditEvent).where(AuditEvent.command == "job_result"))
        ]
    assert len(applied) == 1


def test_one_round_leases_each_job_for_its_own_topics_timeout_and_skips_the_exhausted(gf, app):
    """Jobs of three cases due at once: each leased job carries its own token and its own
    topic's timeout plus the grace, its attempt counted; one out of attempts is left as it is
    and reported as such."""
    frozen = clock.FrozenClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))
    with clock.use_clock(frozen):
        started = {}
        for topic in ("payment.check", "test.slow", "test.flaky"):
            gf.deploy(parallel_with(topic))  # a new version of with_job each time
            started[topic] = gf.start("with_job", fee_amount=0, succeed_on=1).id
        with app.database.session() as session:
            tired = session.scalars(
                select(Job).where(Job.instance_id == started["test.flaky"])
            ).one()
            tired.attempts = tired.max_attempts
        leases, exhausted = store.claim_due(app.database, frozen.current, 10, grace_s=5)
    assert exhausted == [tired.id]
    assert sorted(lease.topic for lease in leases) == ["payment.check", "test.slow"]
    assert len({lease.token for lease in leases}) == 2
    timeouts = {"payment.check": 30, "test.slow": 2}
    for lease in leases:
        [job] = jobs_of(app, started[lease.topic])
        assert (job.id, job.state, job.attempts, job.lease_owner) == (
            lease.job_id,
            "running",
            1,
            lease.token,
        )
        assert job.lease_until == frozen.current + timedelta(seconds=timeouts[lease.topic] + 5)
        assert job.updated_at == frozen.current
    [untouched] = jobs_of(app, started["test.flaky"])
    assert (untouched.state, untouched.lease_owner) == ("pending", None)


def test_a_dispatcher_with_more_due_jobs_than_its_batch_hands_them_all_over_at_once(gf, app):
    """Five jobs due, a batch of two, a poll of a minute: the rounds follow each other while
    they come back full, so every job is done in seconds."""
    gf.deploy(parallel_with("payment.check"))
    instances = [gf.start("with_job", fee_amount=0).id for _ in range(5)]
    dispatcher = Dispatcher(app, InProcessExecutor(app, threads=2), batch=2)
    started = time.monotonic()
    dispatcher.start(poll_s=60)
    try:
        while time.monotonic() - started < 10 and any(
            jobs_of(app, i)[0].state != "completed" for i in instances
        ):
            time.sleep(0.05)
        states = [jobs_of(app, i)[0].state for i in instances]
        assert states == ["completed"] * 5, f"after 10 s: {states}"
    finally:
        dispatcher.stop()
        dispatcher.executor.shutdown()


def test_a_dispatcher_whose_broker_is_down_gives_the_jobs_back_and_waits(gf, app, caplog):
    """Celery's broker refuses connections: the leased jobs go back to the queue, attempts
    not counted, and the dispatcher waits for its poll instead of trying again at once."""
    from engine.jobs.executors import CeleryExecutor

    gf.deploy(parallel_with("payment.check"))
    instances = [gf.start("with_job", fee_amount=0).id for _ in range(3)]
    executor = CeleryExecutor("redis://127.0.0.1:1/0")  # nothing listens on port 1
    dispatcher = Dispatcher(app, executor, batch=2)
    with caplog.at_level(logging.WARNING, logger="govflow.jobs"):
        dispatcher.start(poll_s=60)
        try:
            time.sleep(2.0)
        finally:
            dispatcher.stop()
            executor.shutdown()
    refused = [r for r in caplog.records if "executor refused job" in r.getMessage()]
    # a round or two (SQLite's event may still be set by the cases' commits), not a spin
    assert 1 <= len(refused) <= 6, f"{len(refused)} refusals in 2 s"
    for instance_id in instances:
        [job] = jobs_of(app, instance_id)
        assert (job.state, job.attempts, job.lease_owner) == ("pending", 0, None)


def test_a_result_is_applied_exactly_once(gf, app):
    from engine.runtime.job_results import ApplyJobResult

    gf.deploy(parallel_with("payment.check"))
    instance = gf.start("with_job", fee_amount=0)
    [lease], _ = store.claim_due(app.database, clock.now(), 10)
    first = app.runner.execute(
        ApplyJobResult(lease.job_id, lease.token, "ok", {"fee_status": "free"}), gf.ops
    )
    second = app.runner.execute(
        ApplyJobResult(lease.job_id, lease.token, "ok", {"fee_status": "paid"}), gf.ops
    )
    assert (first, second) == ("completed", "ignored: not the current lease")
    assert gf.detail(instance.id)["variables"]["fee_status"] == "free"


def test_a_job_result_leaves_the_parallel_task_in_the_queue_once_and_opens_the_next(gf, app):
    """A job result reads the case's open task rows with the case (one statement): the task
    of the other branch stays in the department's queue, once, and the task after the join
    opens there; a task the result ends (a terminate end) leaves the queue."""
    gf.deploy(parallel_with("payment.check", then="after"))
    clerk = gf.clerk("li", "amr")
    waiting = gf.start("job_then_task", fee_amount=0)
    assert drain(app) == 1
    assert [t.element_id for t in gf.worklist(clerk)] == ["meanwhile"]
    gf.complete(gf.task(waiting.id, "meanwhile").id, clerk)  # the join opens "after"
    [after] = gf.worklist(clerk)
    gf.complete(after.id, clerk)
    assert gf.worklist(clerk) == []
    # the job's result is the last to reach the join: it opens "after" itself
    last = gf.start("job_then_task", fee_amount=0)
    gf.complete(gf.task(last.id, "meanwhile").id, clerk)
    assert gf.worklist(clerk) == []
    assert drain(app) == 1
    assert [(t.element_id, t.instance_id) for t in gf.worklist(clerk)] == [("after", last.id)]

    gf.deploy(
        b.doc(
            "job_ends_all",
            b.start(),
            b.par("split"),
            service("call", "payment.check", "外部服务"),
            b.user("meanwhile", "并行办理", candidateGroups="amr"),
            '<bpmn:endEvent id="stop"><bpmn:terminateEventDefinition /></bpmn:endEvent>',
            b.end(),
            *b.chain("start", "split"),
            b.flow("f1", "split", "call"),
            b.flow("f2", "split", "meanwhile"),
            b.flow("f3", "call", "stop"),
            b.flow("f4", "meanwhile", "end"),
        )
    )
    ended = gf.start("job_ends_all", fee_amount=0)
    assert [t.element_id for t in gf.worklist(clerk)] == ["after", "meanwhile"]
    assert drain(app) == 1
    assert gf.detail(ended.id)["status"] == "completed"
    assert [t.element_id for t in gf.worklist(clerk)] == ["after"]


def test_a_job_is_stamped_with_its_start_when_its_result_is_applied(gf, app):
    """Running a job writes nothing before its result: the worker's start time goes into the
    row with the result, between the lease and the completion."""
    from tests.job_handlers import SEEN_WHILE_RUNNING

    gf.deploy(_one_service_process("test.peek"))
    SEEN_WHILE_RUNNING.clear()
    instance = gf.start("one")
    leased_before = clock.now()
    assert drain(app) == 1
    assert SEEN_WHILE_RUNNING == [("running", None)]
    [job] = jobs_of(app, instance.id)
    assert job.state == "completed"
    assert leased_before <= job.started_at <= job.completed_at
    assert gf.detail(instance.id)["variables"]["peeked"] is True


def test_cancelling_the_case_cancels_its_pending_job(gf, app):
    gf.deploy(parallel_with("payment.check"))
    instance = gf.start("with_job", fee_amount=0)
    app.runner.execute(commands.CancelInstance(instance.id, "withdrawn"), gf.ops)
    assert [j.state for j in jobs_of(app, instance.id)] == ["cancelled"]
    assert drain(app) == 0


def _one_service_process(topic: str) -> str:
    return b.doc(
        "one", b.start(), service("call", topic), b.end(), *b.chain("start", "call", "end")
    )


def test_sms_is_recorded_by_the_local_adapter(gf, app):
    gf.deploy(_one_service_process("notify.sms"))
    instance = gf.start(
        "one",
        phone="13800138000",
        sms_text="您的证照已办结，请到综合窗口领取。",
        business_key="JR-9",
    )
    drain(app)
    with app.database.session() as session:
        [message] = session.scalars(select(SentMessage)).all()
    assert (message.to, message.text, message.business_key) == (
        "13800138000",
        "您的证照已办结，请到综合窗口领取。",
        "JR-9",
    )
    assert gf.detail(instance.id)["variables"]["sms_id"] == f"sms-{message.id}"


def test_a_certificate_is_issued_as_a_numbered_pdf(gf, app):
    gf.deploy(_one_service_process("certificate.issue"))
    frozen = clock.FrozenClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))
    with clock.use_clock(frozen):
        first = gf.start("one", certificate_kind="食品经营许可证", shop_name="张记面馆")
        second = gf.start("one", certificate_kind="食品经营许可证", shop_name="李记小吃")
        drain(app)
    numbers = [gf.detail(i.id)["variables"]["certificate_number"] for i in (first, second)]
    # two worker threads take the jobs in either order: each case gets its own next number
    assert sorted(numbers) == ["JY2026000001", "JY2026000002"]
    with app.database.session() as session:
        pdf = session.scalars(select(Certificate.pdf).where(Certificate.number == numbers[0])).one()
    assert pdf.startswith(b"%PDF")


def test_an_ems_mail_out_gets_a_valid_s10_tracking_number(gf, app):
    gf.deploy(_one_service_process("delivery.ems"))
    instance = gf.start(
        "one", ems_address="城关镇人民路1号", applicant_name="张三", phone="13800138000"
    )
    drain(app)
    number = gf.detail(instance.id)["variables"]["tracking_number"]
    digits = number[2:10]
    check = 11 - sum(int(d) * w for d, w in zip(digits, S10_WEIGHTS, strict=True)) % 11
    assert (number[:2], number[-2:], int(number[10])) == (
        "EA",
        "CN",
        {10: 0, 11: 5}.get(check, check),
    )
    with app.database.session() as session:
        assert session.scalars(select(Delivery.address)).one() == "城关镇人民路1号"


def test_fee_status_follows_the_recorded_payments(gf, app):
    gf.deploy(_one_service_process("payment.check"))
    with app.database.session() as session:
        session.add(Payment(business_key="PAID-1", amount=Decimal("50.00"), reference="POS-1"))
    paid = gf.start("one", fee_amount=50, business_key="PAID-1")
    owed = gf.start("one", fee_amount=50, business_key="OWED-1")
    drain(app)
    assert gf.detail(paid.id)["variables"]["fee_status"] == "paid"
    assert gf.detail(owed.id)["variables"]["fee_status"] == "unpaid"


def test_credit_codes_are_checked(gf, app):
    gf.deploy(_one_service_process("verify.credit_code"))
    good = gf.start("one", credit_code="91350100M000100Y43")
    bad = gf.start("one", credit_code="91350100M000100Y44")
    drain(app)
    assert gf.detail(good.id)["variables"]["registration_authority"] == "工商（市场监管）"
    detail = gf.detail(bad.id)
    assert detail["status"] == "error"
    assert "invalid_credit_code" in detail["incidents"][0]["message"]


def test_job_metrics_per_topic(gf, app):
    gf.deploy(_one_service_process("payment.check"))
    gf.start("one")
    gf.start("one")
    drain(app)
    gf.start("one")
    with app.database.session() as session:
        figures = store.metrics(session)
    entry = figures["payment.check"]
    assert (entry["pending"], entry["completed"], entry["failed"]) == (1, 2, 0)
    assert entry["latency_p50_s"] is not None and entry["latency_p50_s"] >= 0


def test_an_idle_dispatcher_hands_a_new_job_over_when_its_command_commits(gf, app):
    """A job is handed to a worker as the command that made it commits, not at the idle
    dispatcher's next poll: with a poll of a minute, the job is still done in seconds."""
    gf.deploy(parallel_with("payment.check"))
    dispatcher = Dispatcher(app, InProcessExecutor(app, threads=2))
    dispatcher.start(poll_s=60)
    try:
        time.sleep(0.5)  # its first round found nothing: it waits
        started = time.monotonic()
        instance = gf.start("with_job", fee_amount=0)
        while time.monotonic() - started < 10 and jobs_of(app, instance.id)[0].state != "completed":
            time.sleep(0.05)
        [job] = jobs_of(app, instance.id)
        assert job.state == "completed", f"still {job.state} after 10 s"
        assert time.monotonic() - started < 10
    finally:
        dispatcher.stop()
        dispatcher.executor.shutdown()
    assert gf.detail(instance.id)["variables"]["fee_status"] == "free"


def _listeners(app) -> list[tuple[int, str]]:
    """The backends of this test's database listening for new jobs: (pid, application)."""
    with app.database.engine.begin() as connection:
        rows = connection.exec_driver_sql(
            "SELECT pid, application_name FROM pg_stat_activity "
            f"WHERE datname = current_database() AND query = 'LISTEN {CHANNEL}'"
        )
        return [(row[0], row[1]) for row in rows]


def _no_listeners_soon(app) -> bool:
    """Whether the listeners are gone within 5 s: the server process of a closed connection
    (an earlier test's dispatcher) ends a moment after the close."""
    gone = time.monotonic() + 5
    while _listeners(app) and time.monotonic() < gone:
        time.sleep(0.05)
    return _listeners(app) == []


def test_a_dispatcher_that_lost_its_listening_connection_says_so_and_listens_again(app, caplog):
    """On PostgreSQL: the connection the dispatcher listens on is killed; its next wait says
    so, opens another and ends for a round (a job committed while nobody listened would
    otherwise wait for the poll); a NOTIFY from elsewhere then wakes the new one."""
    if app.database.engine.dialect.name != "postgresql":
        pytest.skip("NOTIFY and LISTEN are PostgreSQL's; SQLite wakes in process")
    assert _no_listeners_soon(app)
    waiter = Waiter(app.database, threading.Event())
    try:
        waiter.listen()
        [(pid, _)] = _listeners(app)
        with app.database.engine.begin() as connection:
            connection.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
        begun = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="govflow.jobs"):
            waiter.wait(30)  # a round as soon as it listens again: jobs nobody heard of
        assert time.monotonic() - begun < 5
        assert "lost the job notifications" in caplog.text
        assert "listening for new jobs again" in caplog.text
        [(again, _)] = _listeners(app)
        assert again != pid
        with app.database.engine.begin() as connection:
            connection.exec_driver_sql(f"NOTIFY {CHANNEL}")
        begun = time.monotonic()
        waiter.wait(30)
        assert time.monotonic() - begun < 5
    finally:
        waiter.close()
    assert _no_listeners_soon(app)


def test_the_dispatcher_listens_with_the_databases_own_connection_settings(app, caplog):
    """The listening connection is made from the engine's own arguments: a URL whose query
    carries spaces (an application name, server options) connects as the engine does."""
    if app.database.engine.dialect.name != "postgresql":
        pytest.skip("NOTIFY and LISTEN are PostgreSQL's; SQLite wakes in process")
    url = app.database.engine.url.update_query_dict(
        {"application_name": "govflow jobs test", "options": "-c statement_timeout=5000"}
    )
    database = Database(url.render_as_string(hide_password=False))
    assert _no_listeners_soon(app)
    waiter = Waiter(database, threading.Event())
    try:
        with caplog.at_level(logging.WARNING, logger="govflow.jobs"):
            waiter.listen()
            waiter.wait(0.05)
        assert caplog.text == ""
        assert [name for _, name in _listeners(app)] == ["govflow jobs test"]
    finally:
        waiter.close()
        database.dispose()


def test_a_savepoint_inside_the_command_does_not_count_as_its_commit(app):
    """A command that adds a job and then releases a savepoint (a day's first work order
    number) wakes the dispatcher at its own commit, not at the savepoint's."""
    wakeup._committed.clear()
    with app.database.session() as session:
        wakeup.job_added(session)
        with session.begin_nested():
            pass
        assert not wakeup._committed.is_set()
    assert wakeup._committed.is_set()
    wakeup._committed.clear()
