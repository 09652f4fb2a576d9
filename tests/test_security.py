"""Bad input is refused with a clear 4xx and nothing stored; logins are rate limited;
secrets stay out of the logs; the calendar and lint hold for any input (hypothesis)."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from engine.bpmn.lint import lint_sources
from engine.bpmn.parser import SourceFile
from engine.runtime import clock
from engine.store.models import AuditEvent, Instance, ProcessDefinition
from tests import bpmn as b
from tests.api_support import PASSWORD, ApiHarness


@pytest.fixture
def api(app) -> ApiHarness:
    harness = ApiHarness(app)
    harness.user("front", ["clerk"], ["center"])
    harness.user("designer", ["designer"])
    return harness


def _token(api: ApiHarness, password: str):
    return api.client.post("/api/auth/token", data={"username": "front", "password": password})


def test_logins_are_limited_after_five_failures_and_open_again_after_the_window(api):
    frozen = clock.FrozenClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))
    with clock.use_clock(frozen):
        for _ in range(5):
            assert _token(api, "wrong").status_code == 401
        locked = _token(api, PASSWORD)  # even the right password waits
        assert locked.status_code == 429
        assert locked.json()["error"] == "too_many_attempts"
        assert 0 < int(locked.headers["retry-after"]) <= 300
        page = api.client.post("/login", data={"username": "front", "password": PASSWORD})
        assert page.status_code == 429 and "登录失败次数过多" in page.text
        frozen.advance(timedelta(minutes=5, seconds=1))
        assert _token(api, PASSWORD).status_code == 200
        # a success starts the count again
        for _ in range(4):
            assert _token(api, "wrong").status_code == 401
        assert _token(api, PASSWORD).status_code == 200
    with api.app.database.read_session() as session:
        failed = session.scalar(select(func.count()).where(AuditEvent.command == "login_failed"))
    assert failed == 9


def test_passwords_and_tokens_never_reach_the_log(api, caplog):
    caplog.set_level(logging.DEBUG)
    token = _token(api, PASSWORD).json()["access_token"]
    _token(api, "a-wrong-secret")
    api.client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    logged = caplog.text
    assert PASSWORD not in logged and "a-wrong-secret" not in logged and token not in logged


def test_oversized_and_unmeasured_bodies_are_refused_before_reading(api, app):
    headers = api.headers("front")
    big = {"definition_key": "x", "variables": {"blob": "x" * 1_100_000}}
    response = api.client.post("/api/instances", headers=headers, json=big)
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"

    def chunks():
        yield b'{"definition_key": "x"}'

    chunked = api.client.post(
        "/api/instances",
        headers={**headers, "Content-Type": "application/json"},
        content=chunks(),
    )
    assert chunked.status_code == 411
    with app.database.read_session() as session:
        assert session.scalar(select(func.count()).select_from(Instance)) == 0


def test_malformed_json_is_a_422_with_a_json_body(api):
    response = api.client.post(
        "/api/instances",
        headers={**api.headers("front"), "Content-Type": "application/json"},
        content=b'{"definition_key": ',
    )
    assert response.status_code == 422
    assert set(response.json()) == {"error", "message", "details"}


def _upload(api: ApiHarness, name: str, data: bytes):
    return api.post(
        "/api/definitions", "designer", files=[("files", (name, data, "application/xml"))]
    )


def test_deeply_nested_huge_and_foreign_files_are_refused_with_a_message(api, app):
    deep = (
        b'<?xml version="1.0"?><bpmn:definitions '
        b'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">'
        + b"<bpmn:documentation>" * 5000
        + b"</bpmn:documentation>" * 5000
        + b"</bpmn:definitions>"
    )
    response = _upload(api, "deep.bpmn", deep)
    assert response.status_code == 422
    assert "deep.bpmn" in response.text and "depth" in response.text.lower()

    huge = b.doc("huge", b.start(), b.end(), *b.chain("start", "end")).encode()
    huge = huge.replace(
        b"</bpmn:definitions>", b"<!--" + b"x" * 5_100_000 + b"--></bpmn:definitions>"
    )
    response = _upload(api, "huge.bpmn", huge)
    assert response.status_code in (413, 422)
    assert "larger than" in response.json()["message"]

    foreign = b'<?xml version="1.0"?><model xmlns="urn:example:not-bpmn"><task id="a"/></model>'
    response = _upload(api, "foreign.bpmn", foreign)
    assert response.status_code == 422
    assert "not a BPMN 2.0 file" in response.text

    extended = b.doc(
        "extended",
        b.start(),
        '<bpmn:userTask id="t" camunda:candidateGroups="center"><bpmn:extensionElements>'
        '<acme:widget xmlns:acme="urn:acme:unknown" colour="red" /></bpmn:extensionElements>'
        "</bpmn:userTask>",
        b.end(),
        *b.chain("start", "t", "end"),
    )
    assert _upload(api, "extended.bpmn", extended.encode()).status_code == 201  # ignored, fine
    with app.database.read_session() as session:
        keys = session.scalars(select(ProcessDefinition.key)).all()
    assert keys == ["extended"]


@pytest.mark.parametrize(
    "value",
    ["' OR 1=1 --", "%", "_", "\\", "x'); DROP TABLE instances; --", "\u0000", "${7*7}"],
)
def test_filter_values_are_data_never_code(api, value):
    for path in (
        "/api/instances",
        "/api/tasks",
    ):
        params = {"business_key": value} if path == "/api/instances" else {"q": value}
        response = api.get(path, "front", params=params)
        assert response.status_code in (200, 422), response.text
        if response.status_code == 200:
            items = response.json()
            assert (items["items"] if isinstance(items, dict) else items) == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.dates(min_value=date(2004, 1, 1), max_value=date(2027, 12, 31)),
    count=st.integers(min_value=0, max_value=400),
)
def test_working_day_arithmetic_holds_for_any_day_and_count(module_app, start, count):
    calendar = module_app.services.calendars.get()
    deadline = calendar.add_workdays(start, count)
    counted, unknown = calendar.workdays_between(start, deadline.day)
    assert counted == count
    if count:
        assert calendar.is_workday(deadline.day)
        assert deadline.day > start
    if count:
        assert unknown == deadline.unknown_years  # 2027 is not known: flagged, never guessed
    else:
        # nothing was counted, but the deadline day itself may be a holiday nobody knows yet
        assert unknown == frozenset()
        assert deadline.unknown_years == ({start.year} if start.year >= 2027 else set())
    assert deadline.provisional == (deadline.day.year >= 2027 or bool(unknown))


def _workhours_walked(calendar, start: datetime, end: datetime) -> float:
    """The definition, day by day: each working day's office window clipped to the span."""
    total, day = 0.0, start.astimezone(calendar.office.tz).date()
    while day <= end.astimezone(calendar.office.tz).date():
        if calendar.is_workday(day):
            opens = datetime.combine(day, calendar.office.opens, calendar.office.tz)
            closes = datetime.combine(day, calendar.office.closes, calendar.office.tz)
            begin, finish = max(start, opens), min(end, closes)
            total += max(0.0, (finish - begin).total_seconds() / 3600)
        day += timedelta(days=1)
    return total


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.datetimes(min_value=datetime(2004, 1, 1), max_value=datetime(2027, 12, 31)),
    span=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=800)),
)
def test_office_hours_between_two_moments_match_a_day_by_day_count(module_app, start, span):
    calendar = module_app.services.calendars.get()
    begin = start.replace(tzinfo=UTC)
    counted = calendar.workhours_between(begin, begin + span)
    assert counted == pytest.approx(_workhours_walked(calendar, begin, begin + span), abs=1e-6)


XML_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=300)


@settings(max_examples=150, deadline=None)
@given(body=XML_TEXT, wrap=st.booleans())
def test_lint_answers_any_input_with_problems_never_a_crash(body, wrap):
    text = (
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">'
        f"{body}</bpmn:definitions>"
        if wrap
        else body
    )
    problems = lint_sources([SourceFile("fuzz.bpmn", text.encode("utf-8", "replace"))])
    for problem in problems:
        assert problem.file == "fuzz.bpmn" and problem.message
