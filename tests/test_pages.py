"""Pages over HTTP without a browser: diagrams of real modelers' files, sessions, CSRF,
security headers, who may open which page, attachment names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conformance import CONFORMANCE
from engine.bpmn.diagram import DiagramError, read_diagram, render_svg
from engine.runtime.attachments import safe_filename
from tests import bpmn as b
from tests.api_support import PASSWORD, ApiHarness

MIWG = CONFORMANCE / "miwg" / "reference"
REFERENCE_MODELS = sorted(MIWG.glob("*.bpmn"))


@pytest.mark.parametrize("path", REFERENCE_MODELS, ids=lambda p: p.name)
def test_every_miwg_reference_model_is_drawn(path: Path):
    diagram = read_diagram(path.read_bytes(), path.name)
    svg = render_svg(
        diagram, {diagram.shapes[0].element_id: "active"}, {diagram.shapes[-1].element_id: 3}
    )
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert len(re.findall(r"<g class=\"shape", svg)) == len(diagram.shapes)
    from lxml import etree

    etree.fromstring(svg.encode())  # well-formed


def test_the_reference_models_are_there():
    assert len(REFERENCE_MODELS) == 21


def test_a_file_without_diagram_information_says_so():
    with pytest.raises(DiagramError, match="no diagram information"):
        read_diagram(b.doc("p", b.start(), b.end(), *b.chain("start", "end")).encode(), "p.bpmn")


@pytest.fixture
def web(app):
    api = ApiHarness(app)
    api.user("li", ["clerk"], ["amr"])
    api.user("ops1", ["ops"])
    return api


def _login(web: ApiHarness, username: str) -> str:
    response = web.client.post(
        "/login", data={"username": username, "password": PASSWORD}, follow_redirects=False
    )
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    page = web.client.get("/")
    return re.search(r'name="_csrf" value="([^"]+)"', page.text).group(1)


def test_pages_need_a_login_and_send_each_role_to_its_start_page(web):
    response = web.client.get("/worklist?view=mine", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/worklist%3Fview%3Dmine"
    bad = web.client.post("/login", data={"username": "li", "password": "wrong"})
    assert bad.status_code == 401 and "用户名或密码不正确" in bad.text
    evil = web.client.post(
        "/login",
        data={"username": "li", "password": PASSWORD, "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert evil.headers["location"] == "/"
    assert web.client.get("/", follow_redirects=False).headers["location"] == "/worklist"
    forbidden = web.client.get("/ops")
    assert forbidden.status_code == 403 and "this page is for ops staff" in forbidden.text
    _login(web, "ops1")
    assert web.client.get("/", follow_redirects=False).headers["location"] == "/ops"
    assert web.client.get("/ops").status_code == 200


def test_posts_without_the_csrf_token_are_refused_and_pages_carry_security_headers(web):
    csrf = _login(web, "li")
    page = web.client.get("/worklist")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    refused = web.client.post("/logout", data={"_csrf": "forged"})
    assert refused.status_code == 403
    assert web.client.get("/worklist").status_code == 200  # still logged in
    out = web.client.post("/logout", data={"_csrf": csrf}, follow_redirects=False)
    assert out.headers["location"] == "/login"
    assert web.client.get("/worklist", follow_redirects=False).status_code == 303


def test_logging_out_revokes_the_session_token_for_good(web):
    csrf = _login(web, "li")
    token = web.client.cookies.get("govflow_session")
    web.client.post("/logout", data={"_csrf": csrf})
    web.client.cookies.set("govflow_session", token)
    assert web.client.get("/worklist", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Windows\\system32\\cmd.exe", "cmd.exe"),
        ("..", "attachment"),
        ("营业执照\u0000.pdf", "营业执照.pdf"),
        (".htaccess", "htaccess"),
        ("a<b>:c.pdf", "a_b__c.pdf"),
    ],
)
def test_attachment_names_lose_path_tricks(raw: str, safe: str):
    assert safe_filename(raw) == safe


def test_a_comment_left_on_the_task_page_shows_there_and_in_the_audit(web, gf, app):
    gf.deploy(
        b.doc(
            "commented",
            b.start(),
            b.user("review", "审核", candidateGroups="amr"),
            b.end(),
            *b.chain("start", "review", "end"),
        )
    )
    case = gf.start("commented").id
    task = gf.task(case, "review")
    csrf = _login(web, "li")
    posted = web.client.post(
        f"/tasks/{task.id}/comment", data={"_csrf": csrf, "body": "请补充租赁合同"}
    )
    assert posted.status_code == 200 and "已添加备注" in posted.text
    assert "请补充租赁合同" in web.client.get(f"/tasks/{task.id}").text
    history = [h["command"] for h in gf.detail(case)["history"]]
    assert "comment" in history


def test_a_designer_lints_then_deploys_from_the_page(web, gf):
    web.user("zhao_designer", ["designer"])
    csrf = _login(web, "zhao_designer")
    bpmn = b.doc(
        "page_deployed",
        b.start(),
        b.user("review", "审核", candidateGroups="amr"),
        b.end(),
        *b.chain("start", "review", "end"),
        name="页面部署",
    ).encode()
    files = {"files": ("page_deployed.bpmn", bpmn, "application/xml")}
    checked = web.client.post("/designer/upload", data={"_csrf": csrf, "mode": "lint"}, files=files)
    assert checked.status_code == 200
    assert 'id="lint-problems"' not in checked.text and "检查通过，可以部署" in checked.text
    deployed = web.client.post(
        "/designer/upload", data={"_csrf": csrf, "mode": "deploy"}, files=files
    )
    assert deployed.status_code == 200
    assert "已部署：page_deployed v1" in deployed.text
    case = gf.start("page_deployed")  # the deployed process runs
    assert gf.task(case.id, "review").state == "open"
