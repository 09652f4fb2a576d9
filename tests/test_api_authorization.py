"""Authorization matrix: every role against every endpoint family."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api_support import ApiHarness
from tests.test_api import _upload_bundle

ROOT = Path(__file__).resolve().parent.parent
ROLES = ("anonymous", "clerk", "other_clerk", "designer", "ops", "admin")
USERS = {
    "anonymous": None,
    "clerk": "front",
    "other_clerk": "amr1",
    "designer": "designer",
    "ops": "ops",
    "admin": "admin",
}


@pytest.fixture
def world(app):
    api = ApiHarness(app)
    api.user("designer", ["designer"])
    api.user("ops", ["ops"])
    api.user("admin", ["admin"])
    api.user("front", ["clerk"], ["center"])
    api.user("amr1", ["clerk"], ["amr"])
    assert api.post("/api/definitions", "designer", files=_upload_bundle()).status_code == 201
    return api


def _fresh_case(api: ApiHarness) -> tuple[str, str]:
    case = api.post("/api/instances", "front", json={"definition_key": "joint_review"}).json()
    task = next(
        t
        for t in api.get("/api/tasks?scope=all&limit=1000", "ops").json()
        if t["instance_id"] == case["id"]
    )
    return case["id"], task["id"]


def _bpmn_upload():
    return [
        (
            "files",
            (
                "joint_review.bpmn",
                (ROOT / "processes" / "joint_review.bpmn").read_bytes(),
                "application/xml",
            ),
        )
    ]


# (family, method, path template, body kind, expected status per role)
MATRIX = [
    ("me", "GET", "/api/me", None, (401, 200, 200, 200, 200, 200)),
    ("definitions: list", "GET", "/api/definitions", None, (401, 200, 200, 200, 200, 200)),
    (
        "definitions: read",
        "GET",
        "/api/definitions/joint_review",
        None,
        (401, 200, 200, 200, 200, 200),
    ),
    (
        "definitions: bpmn",
        "GET",
        "/api/definitions/joint_review/versions/1/bpmn",
        None,
        (401, 200, 200, 200, 200, 200),
    ),
    ("definitions: deploy", "POST", "/api/definitions", "upload", (401, 403, 403, 200, 403, 200)),
    (
        "definitions: lint",
        "POST",
        "/api/definitions/lint",
        "upload",
        (401, 403, 403, 200, 403, 200),
    ),
    ("instances: start", "POST", "/api/instances", "start", (401, 201, 201, 201, 201, 201)),
    ("instances: list", "GET", "/api/instances", None, (401, 200, 200, 200, 200, 200)),
    ("instances: read", "GET", "/api/instances/{case}", None, (401, 200, 403, 200, 200, 200)),
    (
        "instances: suspend",
        "POST",
        "/api/instances/{case}/suspend",
        None,
        (401, 403, 403, 403, 200, 200),
    ),
    (
        "instances: cancel",
        "POST",
        "/api/instances/{case}/cancel",
        None,
        (401, 403, 403, 403, 200, 200),
    ),
    ("messages", "POST", "/api/messages", "message", (401, 404, 404, 403, 404, 404)),
    ("incidents: list", "GET", "/api/incidents", None, (401, 403, 403, 403, 200, 200)),
    ("tasks: my queues", "GET", "/api/tasks", None, (401, 200, 200, 200, 200, 200)),
    ("tasks: all", "GET", "/api/tasks?scope=all", None, (401, 403, 403, 403, 200, 200)),
    ("tasks: read", "GET", "/api/tasks/{task}", None, (401, 200, 403, 403, 200, 200)),
    ("tasks: claim", "POST", "/api/tasks/{task}/claim", None, (401, 200, 403, 403, 403, 403)),
    ("tasks: assign", "POST", "/api/tasks/{task}/assign", "assign", (401, 200, 403, 403, 200, 200)),
    (
        "tasks: complete",
        "POST",
        "/api/tasks/{task}/complete",
        "complete",
        (401, 200, 403, 403, 403, 403),
    ),
    (
        "tasks: comment",
        "POST",
        "/api/tasks/{task}/comments",
        "comment",
        (401, 201, 403, 403, 201, 201),
    ),
    ("departments: list", "GET", "/api/departments", None, (401, 200, 200, 200, 200, 200)),
    ("departments: add", "POST", "/api/departments", "department", (401, 403, 403, 403, 403, 201)),
    ("users: list", "GET", "/api/users", None, (401, 403, 403, 403, 200, 200)),
    ("users: add", "POST", "/api/users", "user", (401, 403, 403, 403, 403, 201)),
    ("catalog: list", "GET", "/api/catalog", None, (401, 200, 200, 200, 200, 200)),
    ("catalog: change", "PUT", "/api/catalog/amr-01", "item", (401, 403, 403, 403, 200, 200)),
    ("policies: list", "GET", "/api/policies", None, (401, 200, 200, 200, 200, 200)),
    (
        "policies: set",
        "PUT",
        "/api/policies/rating_default_workdays",
        "policy",
        (401, 403, 403, 403, 200, 200),
    ),
    ("work orders: list", "GET", "/api/work-orders", None, (401, 200, 200, 403, 200, 200)),
    (
        "work orders: figures",
        "GET",
        "/api/work-orders/figures",
        None,
        (401, 200, 200, 403, 200, 200),
    ),
    ("work orders: export", "GET", "/api/work-orders/export", None, (401, 200, 200, 403, 200, 200)),
    ("one thing: form", "GET", "/api/one-thing/tuixiu/form", None, (401, 200, 200, 200, 200, 200)),
    (
        "one thing: apply",
        "POST",
        "/api/one-thing/tuixiu/applications",
        "application",
        (401, 422, 422, 422, 422, 422),
    ),
    ("figures: items", "GET", "/api/figures/items", None, (401, 200, 200, 200, 200, 200)),
    # a ledger with one bad row: 422 once the user may import, and nothing is stored
    ("ledger: import", "POST", "/api/ledger", "ledger", (401, 422, 403, 403, 422, 422)),
    ("ops: stuck", "GET", "/api/ops/stuck", None, (401, 403, 403, 403, 200, 200)),
    (
        "ops: bulk retry",
        "POST",
        "/api/ops/incidents/retry",
        "bulk_retry",
        (401, 403, 403, 403, 200, 200),
    ),
    (
        "ops: bulk suspend",
        "POST",
        "/api/ops/instances/suspend",
        "bulk_case",
        (401, 403, 403, 403, 200, 200),
    ),
    # no token sits at "nowhere": 409 once the user may move tokens
    ("ops: move", "POST", "/api/ops/instances/{case}/move", "move", (401, 403, 403, 403, 409, 409)),
    (
        "ops: variables",
        "PATCH",
        "/api/ops/instances/{case}/variables",
        "variables",
        (401, 403, 403, 403, 200, 200),
    ),
    ("ops: migration", "POST", "/api/ops/migrations", "migration", (401, 403, 403, 403, 200, 200)),
    ("ops: purge", "POST", "/api/ops/purge", "purge", (401, 403, 403, 403, 200, 200)),
    ("metrics", "GET", "/metrics", None, (200, 200, 200, 200, 200, 200)),
]

ACCEPT = {
    "applicant_name": "张三",
    "id_number": "11010519491231002X",
    "phone": "13800138000",
    "shop_name": "面馆",
    "address": "人民路1号",
    "area_m2": 20,
    "materials_told": True,
}


def _body(kind: str | None, role: str) -> dict:
    if kind == "upload":
        return {"files": _bpmn_upload()}
    if kind == "ledger":
        text = "window,department,description,contact,reported_on\n综合窗口,nosuch,慢,张三,2026-01-05\n"
        return {"files": {"file": ("ledger.csv", text.encode("utf-8"), "text/csv")}}
    bodies = {
        "start": {"definition_key": "joint_review"},
        "message": {"name": "nobody_waits_for_this"},
        "assign": {"user": "front"},
        "complete": {"data": ACCEPT},
        "comment": {"body": "请核对材料"},
        "department": {"code": f"dept_{role}", "name": f"部门 {role}"},
        "user": {"username": f"new_{role}", "roles": ["designer"]},
        "item": {
            "code": "amr-01",
            "name": "企业设立登记",
            "department": "amr",
            "promised_workdays": 3,
            "approval_levels": 1,
        },
        "policy": {"value": 5},
        "application": {"data": {"applicant_name": "张三"}},
        "bulk_retry": {"kind": "job", "reason": "接口恢复"},
        "bulk_case": {"definition_key": "no_such_process", "reason": "系统切换"},
        "move": {"from": "nowhere", "to": "end", "reason": "人工处理"},
        "variables": {"values": {"note": "已电话核实"}, "reason": "人工核实"},
        "migration": {"definition_key": "joint_review", "to_version": 1},
        "purge": {"dry_run": True},
    }
    return {"json": bodies[kind]} if kind else {}


def test_every_role_against_every_endpoint_family(world):
    api = world
    mismatches = []
    for family, method, template, kind, expected in MATRIX:
        for role, want in zip(ROLES, expected, strict=True):
            case, task = _fresh_case(api)
            path = template.format(case=case, task=task)
            user = USERS[role]
            if method == "GET":
                response = api.get(path, user)
            elif method in ("PUT", "PATCH"):
                response = api.client.request(
                    method, path, headers=api.headers(user), **_body(kind, role)
                )
            else:
                response = api.post(path, user, **_body(kind, role))
            if response.status_code != want:
                mismatches.append(
                    f"{family} as {role}: {response.status_code} (wanted {want}) {response.text[:120]}"
                )
            if response.status_code >= 400:
                assert set(response.json()) == {"error", "message", "details"}
    assert mismatches == []
