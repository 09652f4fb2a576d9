"""The HTTP API: a whole case over HTTP, errors as JSON, tokens."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from engine.runtime import clock
from tests.api_support import PASSWORD, ApiHarness

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def api(app):
    harness = ApiHarness(app)
    harness.user("designer", ["designer"])
    harness.user("ops", ["ops"])
    harness.user("admin", ["admin"])
    harness.user("front", ["clerk"], ["center"])
    harness.user("amr1", ["clerk"], ["amr"])
    harness.user("fire1", ["clerk"], ["fire"])
    harness.user("urban1", ["clerk"], ["urban"])
    return harness


def _upload_bundle() -> list[tuple[str, tuple[str, bytes, str]]]:
    files = [
        (
            "files",
            (
                "joint_review.bpmn",
                (ROOT / "processes" / "joint_review.bpmn").read_bytes(),
                "application/xml",
            ),
        )
    ]
    for form in sorted((ROOT / "forms").glob("joint_*.schema.json")):
        files.append(("files", (form.name, form.read_bytes(), "application/json")))
    return files


ACCEPT = {
    "applicant_name": "张三",
    "id_number": "11010519491231002X",
    "phone": "13800138000",
    "shop_name": "张记面馆",
    "address": "城关镇人民路1号",
    "area_m2": 45,
    "materials_told": True,
}


def test_a_whole_case_over_http(api):
    deployed = api.post("/api/definitions", "designer", files=_upload_bundle())
    assert deployed.status_code == 201, deployed.text
    assert deployed.json()["processes"] == [
        {"key": "joint_review", "name": "开办餐饮店联合审验", "version": 1, "created": True}
    ]
    assert api.post("/api/definitions", "designer", files=_upload_bundle()).status_code == 200

    started = api.post(
        "/api/instances", "front", json={"definition_key": "joint_review", "business_key": "JR-1"}
    )
    assert started.status_code == 201, started.text
    case = started.json()
    assert (case["status"], case["definition_key"], case["version"], case["business_key"]) == (
        "running",
        "joint_review",
        1,
        "JR-1",
    )

    queue = api.get("/api/tasks", "front").json()
    assert [t["name"] for t in queue] == ["受理并一次性告知"]
    accept = queue[0]
    detail = api.get(f"/api/tasks/{accept['id']}", "front").json()
    assert detail["form_schema"]["title"] == "受理并一次性告知"
    invalid = api.post(
        f"/api/tasks/{accept['id']}/complete", "front", json={"data": {**ACCEPT, "phone": "12"}}
    )
    assert invalid.status_code == 422
    assert [d["path"] for d in invalid.json()["details"]] == ["$.phone"]
    done = api.post(f"/api/tasks/{accept['id']}/complete", "front", json={"data": ACCEPT})
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "completed"

    for user, department in (("amr1", "amr"), ("fire1", "fire"), ("urban1", "urban")):
        tasks = api.get("/api/tasks?scope=group", user).json()
        assert [t["candidate_groups"] for t in tasks] == [[department]]
        task_id = tasks[0]["id"]
        claimed = api.post(f"/api/tasks/{task_id}/claim", user)
        assert claimed.json()["assignee"] == user
        assert [t["id"] for t in api.get("/api/tasks?scope=mine", user).json()] == [task_id]
        body = {"data": {f"{department}_approved": True, f"{department}_opinion": "同意"}}
        assert api.post(f"/api/tasks/{task_id}/complete", user, json=body).status_code == 200

    pickup = api.get("/api/tasks", "front").json()[0]
    assert (
        api.post(
            f"/api/tasks/{pickup['id']}/complete", "front", json={"data": {"delivery": "window"}}
        ).status_code
        == 200
    )
    final = api.get(f"/api/instances/{case['id']}", "ops").json()
    assert final["status"] == "completed"
    assert final["variables"]["approved"] is True
    assert [h["command"] for h in final["history"]] == [
        "start",
        "complete",
        "claim",
        "complete",
        "claim",
        "complete",
        "claim",
        "complete",
        "complete",
    ]


def test_errors_are_json_with_the_right_status(api):
    assert api.client.get("/api/me").json() == {
        "error": "unauthorized",
        "message": "log in first: send Authorization: Bearer <token> from /api/auth/token",
        "details": None,
    }
    assert api.client.get("/api/me").headers["www-authenticate"] == "Bearer"
    missing = api.get("/api/instances/nope", "ops")
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    bad = api.post(
        "/api/instances", "front", json={"definition_key": "", "variables": [], "extra": True}
    )
    assert bad.status_code == 422
    assert {d["path"] for d in bad.json()["details"]} == {
        "$.definition_key",
        "$.variables",
        "$.extra",
    }
    unknown = api.get("/api/no/such/route", "ops")
    assert (unknown.status_code, unknown.json()["error"]) == (404, "not_found")
    wrong_login = api.client.post(
        "/api/auth/token", data={"username": "front", "password": "wrong"}
    )
    assert (wrong_login.status_code, wrong_login.json()["message"]) == (
        401,
        "wrong username or password",
    )


def test_deploying_a_broken_file_answers_422_with_file_and_line(api):
    broken = (
        (ROOT / "processes" / "joint_review.bpmn")
        .read_text(encoding="utf-8")
        .replace('camunda:formKey="joint_pickup"', 'camunda:formKey="nowhere"')
    )
    response = api.post(
        "/api/definitions",
        "designer",
        files=[("files", ("../../etc/joint.bpmn", broken.encode(), "application/xml"))],
    )
    assert response.status_code == 422
    problems = response.json()["details"]
    assert {p["file"] for p in problems} == {"joint.bpmn"}
    nowhere = [p for p in problems if "uses form 'nowhere'" in p["message"]]
    assert len(nowhere) == 1 and isinstance(nowhere[0]["line"], int) and nowhere[0]["line"] > 1
    assert api.get("/api/definitions", "designer").json() == []
    other = api.post(
        "/api/definitions", "designer", files=[("files", ("notes.txt", b"hello", "text/plain"))]
    )
    assert other.status_code == 422
    assert "only BPMN files" in other.json()["message"]


def test_claimed_by_someone_else_and_completed_twice_are_409(api):
    api.post("/api/definitions", "designer", files=_upload_bundle())
    api.user("front2", ["clerk"], ["center"])
    case = api.post("/api/instances", "front", json={"definition_key": "joint_review"}).json()
    task = api.get("/api/tasks", "front").json()[0]
    assert api.post(f"/api/tasks/{task['id']}/claim", "front").status_code == 200
    taken = api.post(f"/api/tasks/{task['id']}/claim", "front2")
    assert (taken.status_code, taken.json()["error"]) == (409, "conflict")
    assert "already claimed by front" in taken.json()["message"]
    assert (
        api.post(f"/api/tasks/{task['id']}/complete", "front", json={"data": ACCEPT}).status_code
        == 200
    )
    again = api.post(f"/api/tasks/{task['id']}/complete", "front", json={"data": ACCEPT})
    assert again.status_code == 409
    wrong_department = api.post(f"/api/tasks/{task['id']}/complete", "amr1", json={"data": ACCEPT})
    assert wrong_department.status_code in (403, 409)
    assert api.get(f"/api/instances/{case['id']}", "front").status_code == 200
    assert (
        api.get(f"/api/instances/{case['id']}", "urban1").status_code == 200
    )  # urban has work in it now


def test_tokens_expire_and_can_be_revoked(api):
    token = api.login("front")
    assert api.get("/api/me", "front").status_code == 200
    assert api.post("/api/auth/logout", "front").status_code == 204
    revoked = api.client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert (revoked.status_code, revoked.json()["message"]) == (
        401,
        "the token has been revoked; log in again",
    )
    api.tokens.clear()
    later = clock.FrozenClock(
        clock.now() + timedelta(minutes=api.app.settings.token_ttl_minutes + 1)
    )
    api.login("front")
    with clock.use_clock(later):
        expired = api.get("/api/me", "front")
    assert (expired.status_code, expired.json()["message"]) == (
        401,
        "the token has expired; log in again",
    )


def test_a_token_revoked_by_another_process_is_refused_once_its_memory_lapses(api):
    """Each process remembers a token's owner for GOVFLOW_TOKEN_CACHE_SECONDS; a revocation
    made elsewhere (straight in the database here) takes effect when that runs out."""
    from engine.accounts import tokens

    seconds = [1000.0]
    api.app.token_cache.clock = lambda: seconds[0]
    api.app.token_cache.ttl = 5.0
    token = api.login("front")
    assert api.get("/api/me", "front").status_code == 200
    with api.app.database.session() as session:
        tokens.revoke(session, token)
    seconds[0] += 4.9
    assert api.get("/api/me", "front").status_code == 200
    seconds[0] += 0.2
    refused = api.get("/api/me", "front")
    assert (refused.status_code, refused.json()["message"]) == (
        401,
        "the token has been revoked; log in again",
    )
    api.tokens.clear()
    api.app.token_cache.ttl = 0  # no memory: a revocation elsewhere counts at once
    token = api.login("front")
    assert api.get("/api/me", "front").status_code == 200
    with api.app.database.session() as session:
        tokens.revoke(session, token)
    assert api.get("/api/me", "front").status_code == 401


def test_passwords_are_stored_hashed(api):
    from sqlalchemy import select

    from engine.store.models import User

    with api.app.database.session() as session:
        stored = session.scalars(select(User.password_hash).where(User.username == "front")).one()
    assert PASSWORD not in stored
    assert stored.startswith("$argon2id$")


def test_messages_reach_the_waiting_case_or_start_one(api):
    process = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:message id="m_paid" name="fee_paid" />
  <bpmn:message id="m_apply" name="online_application" />
  <bpmn:process id="fees" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:messageEventDefinition messageRef="m_apply" /></bpmn:startEvent>
    <bpmn:intermediateCatchEvent id="wait_fee"><bpmn:messageEventDefinition messageRef="m_paid" /></bpmn:intermediateCatchEvent>
    <bpmn:userTask id="issue" name="出证" camunda:candidateGroups="amr" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" />
    <bpmn:endEvent id="end" />
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="wait_fee" />
    <bpmn:sequenceFlow id="f2" sourceRef="wait_fee" targetRef="issue" />
    <bpmn:sequenceFlow id="f3" sourceRef="issue" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>"""
    assert (
        api.post(
            "/api/definitions",
            "designer",
            files=[("files", ("fees.bpmn", process.encode(), "application/xml"))],
        ).status_code
        == 201
    )
    started = api.post(
        "/api/messages",
        "front",
        json={
            "name": "online_application",
            "correlation_key": "WEB-7",
            "payload": {"applicant": "李四"},
        },
    )
    assert started.status_code == 200, started.text
    assert started.json()["started"] is True
    case_id = started.json()["instance_id"]
    case = api.get(f"/api/instances/{case_id}", "ops").json()
    assert (case["status"], case["business_key"], case["variables"]["applicant"]) == (
        "waiting",
        "WEB-7",
        "李四",
    )
    unknown = api.post(
        "/api/messages", "front", json={"name": "fee_paid", "correlation_key": "WEB-8"}
    )
    assert unknown.status_code == 404
    paid = api.post(
        "/api/messages",
        "front",
        json={"name": "fee_paid", "correlation_key": "WEB-7", "payload": {"amount": 50}},
    )
    assert paid.json() == {"instance_id": case_id, "started": False}
    case = api.get(f"/api/instances/{case_id}", "ops").json()
    assert (case["status"], case["variables"]["amount"]) == ("running", 50)
    assert [t["element_id"] for t in case["tasks"]] == ["issue"]


def test_instances_page_with_a_cursor_and_filter(api):
    api.post("/api/definitions", "designer", files=_upload_bundle())
    ids = [
        api.post(
            "/api/instances",
            "front",
            json={"definition_key": "joint_review", "business_key": f"P-{i}"},
        ).json()["id"]
        for i in range(5)
    ]
    first = api.get("/api/instances?limit=2", "ops").json()
    second = api.get(f"/api/instances?limit=2&cursor={first['next_cursor']}", "ops").json()
    third = api.get(f"/api/instances?limit=2&cursor={second['next_cursor']}", "ops").json()
    seen = [i["id"] for page in (first, second, third) for i in page["items"]]
    assert sorted(seen) == sorted(ids)
    assert third["next_cursor"] is None
    assert [
        i["business_key"] for i in api.get("/api/instances?business_key=P-3", "ops").json()["items"]
    ] == ["P-3"]
    assert api.get("/api/instances?cursor=garbage", "ops").status_code == 422
    # a clerk sees only cases with work for them
    assert len(api.get("/api/instances", "front").json()["items"]) == 5
    assert api.get("/api/instances", "amr1").json()["items"] == []


def test_comments_on_a_task(api):
    api.post("/api/definitions", "designer", files=_upload_bundle())
    api.post("/api/instances", "front", json={"definition_key": "joint_review"})
    task = api.get("/api/tasks", "front").json()[0]
    added = api.post(
        f"/api/tasks/{task['id']}/comments", "front", json={"body": "申请人下午补交照片"}
    )
    assert added.status_code == 201
    assert [c["body"] for c in api.get(f"/api/tasks/{task['id']}/comments", "front").json()] == [
        "申请人下午补交照片"
    ]
    assert api.get(f"/api/tasks/{task['id']}/comments", "amr1").status_code == 403


def test_certificates_download_and_job_metrics(api):
    from tests.test_jobs import _one_service_process, drain

    process = _one_service_process("certificate.issue")
    assert (
        api.post(
            "/api/definitions",
            "designer",
            files=[("files", ("cert.bpmn", process.encode(), "application/xml"))],
        ).status_code
        == 201
    )
    case = api.post(
        "/api/instances",
        "front",
        json={
            "definition_key": "one",
            "variables": {"certificate_kind": "营业执照", "holder": "张记面馆"},
        },
    ).json()
    drain(api.app)
    number = api.get(f"/api/instances/{case['id']}", "front").json()["variables"][
        "certificate_number"
    ]
    assert number.startswith("YZ")
    pdf = api.get(f"/api/certificates/{number}.pdf", "front")
    assert (pdf.status_code, pdf.headers["content-type"]) == (200, "application/pdf")
    assert pdf.content.startswith(b"%PDF")
    assert api.get(f"/api/certificates/{number}.pdf", "amr1").status_code == 403
    assert api.get("/api/certificates/NOPE1.pdf", "front").status_code == 404
    metrics = api.get("/api/jobs/metrics", "ops").json()
    assert metrics["certificate.issue"]["completed"] == 1
    assert api.get("/api/jobs/metrics", "front").status_code == 403


def test_completing_a_task_answers_with_the_case_number_the_step_assigned(api):
    """The answer to a completion is the task as the command left it, even when the step it
    triggered gave the case its number (the business key) in the same transaction."""
    from tests import bpmn as b

    xml = b.doc(
        "numbered",
        b.start(),
        b.user("accept", "受理", candidateGroups="center"),
        b.script("number", "case_number = assign_case_number()"),
        b.user("approve", "审批", candidateGroups="amr"),
        b.end(),
        *b.chain("start", "accept", "number", "approve", "end"),
    )
    deployed = api.post(
        "/api/definitions", "designer", files=[("files", ("numbered.bpmn", xml, "text/xml"))]
    )
    assert deployed.status_code == 201, deployed.text
    case = api.post("/api/instances", "front", json={"definition_key": "numbered"}).json()
    [accept] = api.get("/api/tasks", "front").json()
    done = api.post(f"/api/tasks/{accept['id']}/complete", "front", json={"data": {}})
    assert done.status_code == 200, done.text
    number = api.get(f"/api/instances/{case['id']}", "ops").json()["business_key"]
    assert number and done.json()["business_key"] == number
    assert done.json()["state"] == "completed"


def test_a_search_of_the_worklist_finds_a_waiting_task_by_the_case_number_given_later(api):
    """A task already in a department's queue when another branch gives the case its number
    is found by that number, and no longer by the key it was started with."""
    from tests import bpmn as b

    xml = b.doc(
        "numbered_later",
        b.start(),
        b.par("split"),
        b.user("check", "核验", candidateGroups="amr"),
        b.user("accept", "受理", candidateGroups="center"),
        b.script("number", "case_number = assign_case_number()"),
        b.par("join"),
        b.end(),
        *b.chain("start", "split", "check", "join", "end"),
        *b.chain("split", "accept", "number", "join", prefix="g"),
    )
    deployed = api.post(
        "/api/definitions", "designer", files=[("files", ("later.bpmn", xml, "text/xml"))]
    )
    assert deployed.status_code == 201, deployed.text
    started = {"definition_key": "numbered_later", "business_key": "TEMP-0042"}
    case = api.post("/api/instances", "front", json=started).json()

    def found(q: str) -> list[str]:
        response = api.get("/api/tasks", "amr1", params={"q": q})
        assert response.status_code == 200, response.text
        return [t["instance_id"] for t in response.json()]

    assert found("TEMP-0042") == [case["id"]]
    [accept] = api.get("/api/tasks", "front").json()
    assert api.post(f"/api/tasks/{accept['id']}/complete", "front", json={"data": {}}).is_success
    number = api.get(f"/api/instances/{case['id']}", "ops").json()["business_key"]
    assert number != "TEMP-0042"
    assert found(number[-10:]) == [case["id"]]
    assert found("TEMP-0042") == []
    assert found("核验") == [case["id"]]
