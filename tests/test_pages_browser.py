"""The pages in a real browser (Debian's Chromium, headless, through Playwright): a clerk works
a task with a form, ops retries an incident, a designer sees a lint problem. Screenshots go to
test-artifacts/screenshots/."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine.api.app import create_app
from engine.app import Govflow
from engine.runtime import clock
from engine.store.models import Attachment, Instance
from tests import bpmn as b
from tests.api_support import PASSWORD, ApiHarness
from tests.live_server import served
from tests.test_jobs import drain, service

# alone, after the parallel part: a browser is timing-sensitive on a busy machine
pytestmark = pytest.mark.serial

CHROMIUM = Path(os.environ.get("GOVFLOW_TEST_CHROMIUM", "/usr/bin/chromium"))
SHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
VIEWPORT = {"width": 1366, "height": 768}

FORM = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "餐饮店开业登记",
    "type": "object",
    "properties": {
        "applicant": {"type": "string", "title": "申请人", "minLength": 1},
        "area": {"type": "number", "title": "经营面积（平方米）", "minimum": 1},
        "opened_on": {"type": "string", "format": "date", "title": "开业日期"},
        "kind": {
            "type": "string",
            "title": "经营类型",
            "enum": ["food", "retail"],
            "enumNames": ["餐饮", "零售"],
        },
        "agree": {"type": "boolean", "title": "已一次性告知材料清单", "const": True},
        "note": {"type": "string", "title": "情况说明", "maxLength": 1000},
        "licence": {"type": "object", "title": "营业执照扫描件", "x-widget": "file"},
        "staff": {
            "type": "array",
            "title": "从业人员",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "title": "姓名"},
                    "health_cert": {"type": "boolean", "title": "持健康证"},
                },
                "required": ["name"],
            },
        },
    },
    "required": ["applicant", "area", "kind", "agree", "licence"],
}

SHOP = b.doc(
    "shop_opening",
    b.start(),
    b.user("register", "开业登记", candidateGroups="amr", formKey="shop_form", dueDate="P1D"),
    b.end(),
    *b.chain("start", "register", "end"),
    name="餐饮店开业",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        yield instance
        instance.close()


@pytest.fixture
def site(app: Govflow) -> Iterator[str]:
    """The real application served by uvicorn on a free port, in a thread."""
    with served(create_app(app)) as base:
        yield base


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN")
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SHOTS / f"{request.node.name}-final.png"), full_page=True)
    context.close()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def login(page: Any, site: str, username: str) -> None:
    """With the keyboard only, as a counter clerk would."""
    page.goto(f"{site}/")
    assert "/login" in page.url
    # autofocus is applied at the next rendering step, which can come after "load": typing
    # before it lost the first letters (a CI run failed on "ops_wang"), so wait for the focus.
    page.wait_for_function("document.activeElement && document.activeElement.id === 'username'")
    page.keyboard.type(username)  # the user name field has the focus
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "/login" not in page.url, page.locator("main").inner_text()


def fits_the_counter_screen(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_a_clerk_claims_a_task_fixes_an_invalid_form_and_completes_it(
    gf, app, browser, site, page, tmp_path
):
    api = ApiHarness(app)
    api.user("amr_li", ["clerk"], ["amr"])
    gf.deploy(SHOP, "shop.bpmn", forms={"shop_form": FORM})
    case = gf.start("shop_opening", business_key="CY-2026-0007").id

    login(page, site, "amr_li")
    assert page.url.endswith("/worklist")
    row = page.locator("tr", has_text="开业登记")
    assert "CY-2026-0007" in row.inner_text()
    assert fits_the_counter_screen(page)
    shot(page, "clerk-1-worklist")
    row.get_by_role("button", name="签收").click()
    page.wait_for_load_state()
    assert "已签收" in page.locator(".flash").inner_text()
    page.get_by_role("link", name="开业登记").click()
    page.wait_for_load_state()

    # every field has a label the browser knows
    for label in (
        "申请人",
        "经营面积（平方米）",
        "开业日期",
        "经营类型",
        "情况说明",
        "营业执照扫描件",
    ):
        assert page.get_by_label(label).count() >= 1, label
    page.get_by_label("申请人").fill("张三")
    page.get_by_label("经营面积（平方米）").fill("0")
    page.get_by_label("经营类型").select_option("food")
    page.get_by_role("button", name="提交办结").click()
    page.wait_for_load_state()
    shot(page, "clerk-2-invalid")
    assert "不能小于 1" in page.locator("#f-area-err").inner_text()
    assert "必须勾选" in page.locator("#f-agree-err").inner_text()
    assert "必填" in page.locator("#f-licence-err").inner_text()
    assert page.get_by_label("申请人").input_value() == "张三"  # what was typed stays
    assert page.get_by_label("经营面积（平方米）").get_attribute("aria-invalid") == "true"
    assert fits_the_counter_screen(page)

    page.get_by_label("经营面积（平方米）").fill("36.5")
    page.get_by_label("开业日期").fill("2026-12-01")
    page.get_by_label("已一次性告知材料清单").check()
    page.get_by_label("情况说明").fill("临街店面")
    page.get_by_label("营业执照扫描件").set_input_files(
        files=[{"name": "营业执照.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 demo"}]
    )
    page.get_by_label("姓名").first.fill("李四")
    page.get_by_role("button", name="添加一行").click()
    page.get_by_label("姓名").nth(1).fill("王五")
    page.get_by_label("持健康证").nth(1).check()
    page.get_by_role("button", name="提交办结").click()
    page.wait_for_load_state()
    shot(page, "clerk-3-done")
    assert page.url.split("?")[0].endswith("/worklist")
    assert "已办结" in page.locator(".flash").inner_text()

    detail = gf.detail(case)
    assert detail["status"] == "completed"
    data = detail["variables"]
    assert (data["applicant"], data["area"], data["kind"], data["agree"]) == (
        "张三",
        36.5,
        "food",
        True,
    )
    assert data["opened_on"] == "2026-12-01"
    assert data["staff"] == [
        {"name": "李四", "health_cert": False},
        {"name": "王五", "health_cert": True},
    ]
    assert data["licence"]["filename"] == "营业执照.pdf"
    with app.database.read_session() as session:
        stored = session.get(Attachment, data["licence"]["id"])
        assert stored is not None and stored.content == b"%PDF-1.4 demo"


def test_a_clerk_presses_next_and_gets_the_soonest_due_task_then_an_empty_queue(
    gf, app, browser, site, page
):
    api = ApiHarness(app)
    api.user("amr_zhou", ["clerk"], ["amr"])
    gf.deploy(SHOP, "shop.bpmn", forms={"shop_form": FORM})
    moment = datetime(2026, 9, 1, 1, 0, tzinfo=UTC)
    with clock.use_clock(clock.FrozenClock(moment)):
        gf.start("shop_opening", business_key="CY-EARLY")  # due first
    with clock.use_clock(clock.FrozenClock(moment + timedelta(hours=3))):
        gf.start("shop_opening", business_key="CY-LATER")

    login(page, site, "amr_zhou")
    for expected in ("CY-EARLY", "CY-LATER"):
        page.goto(f"{site}/worklist")
        page.get_by_role("button", name="签收下一件").click()
        page.wait_for_load_state()
        assert "/tasks/" in page.url
        assert "已签收下一件" in page.locator(".flash").inner_text()
        assert expected in page.locator("main").inner_text()
    page.goto(f"{site}/worklist")
    page.get_by_role("button", name="签收下一件").click()
    page.wait_for_load_state()
    assert page.url.split("?")[0].endswith("/worklist")
    assert "本部门暂无待签收事项" in page.locator(".flash").inner_text()
    shot(page, "clerk-next-empty")
    mine = {t.business_key for t in gf.worklist(gf.app.actor("amr_zhou"), "mine")}
    assert mine == {"CY-EARLY", "CY-LATER"}


def test_ops_sees_an_incident_and_retries_it(gf, app, browser, site, page):
    from tests.job_handlers import OUTAGES

    api = ApiHarness(app)
    api.user("ops_wang", ["ops"])
    gf.deploy(
        b.definitions(
            b.process(
                "outside_call",
                b.start(),
                service("call", "test.outside", "调用外部系统"),
                b.end(),
                *b.chain("start", "call", "end"),
            ),
            b.diagram(
                "outside_call",
                ["start", "call", "end"],
                [("f_start_call", "start", "call"), ("f_call_end", "call", "end")],
            ),
        ),
        "outside.bpmn",
    )
    frozen = clock.FrozenClock(datetime.now(UTC))
    OUTAGES.add("outside")
    try:
        with clock.use_clock(frozen):
            case = gf.start("outside_call").id
            for _ in range(2):
                drain(app)
                frozen.advance(timedelta(seconds=10))
        assert gf.detail(case)["status"] == "error"
    finally:
        OUTAGES.discard("outside")

    login(page, site, "ops_wang")
    assert page.url.endswith("/ops")
    incident_row = page.locator("#incidents tr", has_text="call")
    assert "the outside system does not answer" in incident_row.inner_text()
    assert fits_the_counter_screen(page)
    shot(page, "ops-1-dashboard")

    incident_row.get_by_role("link").first.click()  # the case page with its diagram
    page.wait_for_load_state()
    assert page.locator('svg [data-element="call"].failed').count() == 1
    shot(page, "ops-2-case")
    page.go_back()
    page.wait_for_load_state()
    page.locator("#incidents tr", has_text="call").get_by_label("重试理由").fill("外部系统已恢复")
    page.locator("#incidents tr", has_text="call").get_by_role("button", name="重试").click()
    page.wait_for_load_state()
    assert "已重试" in page.locator(".flash").inner_text()
    assert page.locator("#incidents tr", has_text="call").count() == 0
    shot(page, "ops-3-retried")
    drain(app)
    assert gf.detail(case)["status"] == "completed"


def test_a_designer_uploads_a_broken_file_and_sees_the_lint_problem(gf, app, browser, site, page):
    api = ApiHarness(app)
    api.user("designer_zhao", ["designer"])
    broken = b.doc(
        "broken",
        b.start(),
        b.user("review", "审核", candidateGroups="no_such_department"),
        b.end(),
        *b.chain("start", "review", "end"),
    )
    login(page, site, "designer_zhao")
    assert page.url.endswith("/designer")
    page.get_by_label("BPMN 文件与表单（*.bpmn、*.schema.json）").set_input_files(
        files=[{"name": "broken.bpmn", "mimeType": "application/xml", "buffer": broken.encode()}]
    )
    page.get_by_role("button", name="检查并部署").click()
    page.wait_for_load_state()
    shot(page, "designer-1-lint")
    problems = page.locator("#lint-problems").inner_text()
    line = next(i for i, text in enumerate(broken.splitlines(), start=1) if 'id="review"' in text)
    assert f"broken.bpmn:{line}" in problems
    assert "no_such_department" in problems
    with app.database.read_session() as session:
        assert session.scalars(select(Instance)).first() is None

    good = broken.replace("no_such_department", "amr")
    page.get_by_label("BPMN 文件与表单（*.bpmn、*.schema.json）").set_input_files(
        files=[{"name": "good.bpmn", "mimeType": "application/xml", "buffer": good.encode()}]
    )
    page.get_by_role("button", name="检查并部署").click()
    page.wait_for_load_state()
    assert "broken v1" in page.locator("#deploy-result").inner_text()
    page.get_by_role("link", name="broken").first.click()
    page.wait_for_load_state()
    shot(page, "designer-2-diagram")
    assert page.locator("svg.bpmn").count() == 1 or "no diagram" in page.content()
