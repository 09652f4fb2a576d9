"""The rectification loop end to end through the API: registration, classification, dispatch,
the 1/3/7 working-day rules, escalation, extensions, returns, follow-up and the problem list."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from openpyxl import Workbook, load_workbook

from engine.cli import main
from engine.runtime import clock
from tests.center_support import Center, beijing, local


@pytest.fixture
def center(app) -> Iterator[Center]:
    frozen = clock.FrozenClock(beijing("2026-11-02T09:00:00"))  # a Monday
    with clock.use_clock(frozen):
        yield Center(app, frozen)


def report(center: Center, description: str = "营业执照变更跑了三次没办成") -> str:
    """A citizen at the 办不成事 window; the clerk registers the problem."""
    case = center.start(
        "rectification",
        "front",
        source="window",
        window="办不成事反映窗口",
        description=description,
        contact="李四 13800001111",
    )
    return case["id"]


def order(center: Center, instance_id: str, as_user: str = "ops") -> dict:
    response = center.get("/api/work-orders", as_user, params={"limit": 1000})
    assert response.status_code == 200, response.text
    [found] = [o for o in response.json()["items"] if o["instance_id"] == instance_id]
    return found


def classify(center: Center, case_id: str, department: str = "amr", difficulty: str = "general"):
    center.work(
        "front",
        case_id,
        "classify",
        difficulty=difficulty,
        category="业务办理",
        department=department,
    )


def contact(center: Center, case_id: str, as_user: str = "amr_clerk", ours: bool = True) -> None:
    center.work(as_user, case_id, "contact", ours=ours, contact_note="已电话联系反映人")


def answer(center: Center, case_id: str) -> None:
    center.work("amr_clerk", case_id, "handle", action="answer", answer_text="已当场办结变更")
    center.work("front", case_id, "review", review_approved=True)
    center.work("front", case_id, "reply", reply_method="phone", reply_text="已办结，致歉")


def test_a_general_problem_closed_on_time(center):
    case_id = report(center)
    first = order(center, case_id)
    assert first["status"] == "registered" and first["number"].startswith("ZG20261102")
    assert center.case(case_id)["business_key"] == first["number"]
    classify(center, case_id)
    # dispatched: only the responsible department sees the phone-contact task
    assert [t["element_id"] for t in center.queue("amr_clerk", case_id)] == ["contact"]
    assert center.queue("hrss_clerk", case_id) == []
    contact(center, case_id)
    [handle] = center.queue("amr_clerk", case_id)
    assert local(handle["due_at"]) == "2026-11-05T17:30"  # three working days
    center.move_to("2026-11-04T10:00:00")
    answer(center, case_id)
    center.work("front", case_id, "followup", satisfied=True, followup_note="满意")
    done = order(center, case_id)
    assert (done["status"], done["on_time"], done["satisfied"]) == ("closed", True, True)
    assert (done["answered_on"], done["closed_on"]) == ("2026-11-04", "2026-11-04")
    assert center.case(case_id)["status"] == "completed"
    figures = center.get("/api/work-orders/figures", "ops", params={"by": "department"}).json()
    [amr] = [f for f in figures if f["department"] == "amr"]
    assert (amr["rectification_rate"], amr["on_time_rate"], amr["satisfaction_rate"]) == (
        1.0,
        1.0,
        1.0,
    )


def test_a_department_clerk_sees_only_their_departments_orders(center):
    mine, other = report(center, "甲"), report(center, "乙")
    classify(center, mine, "amr")
    classify(center, other, "hrss")
    seen = [o["instance_id"] for o in center.get("/api/work-orders", "amr_clerk").json()["items"]]
    assert seen == [mine]
    everything = center.get("/api/work-orders", "front").json()["items"]  # the center sees all
    assert {o["instance_id"] for o in everything} == {mine, other}


def test_a_missed_phone_contact_escalates_to_the_leading_group(center):
    case_id = report(center)
    classify(center, case_id)
    center.move_to("2026-11-03T17:00:00")
    assert center.queue("leader", case_id) == []
    center.move_to("2026-11-03T17:31:00")  # one working day has closed without a call
    assert [t["element_id"] for t in center.queue("leader", case_id)] == ["supervise"]
    assert order(center, case_id)["escalated"] is True
    assert order(center, case_id)["contact_overdue"] is True
    # the department still has to call; the escalation does not take the case away
    assert [t["element_id"] for t in center.queue("amr_clerk", case_id)] == ["contact"]
    center.work("leader", case_id, "supervise", supervise_note="请今日内联系")
    contact(center, case_id)
    assert [t["element_id"] for t in center.queue("amr_clerk", case_id)] == ["handle"]


def test_an_extension_asked_in_time_and_approved_moves_the_deadline(center):
    case_id = report(center)
    classify(center, case_id)
    contact(center, case_id)
    center.move_to("2026-11-05T10:00:00")  # due today at closing time
    center.work(
        "amr_clerk",
        case_id,
        "handle",
        action="extend",
        extension_workdays=2,
        extension_reason="需要调取档案",
    )
    assert order(center, case_id)["status"] == "extension_requested"
    assert center.queue("amr_clerk", case_id) == []
    center.work("leader", case_id, "approve_extension", approved=True, extension_comment="同意")
    wo = order(center, case_id)
    assert (wo["extension_workdays"], wo["due_date"]) == (2, "2026-11-09")
    [handle] = center.queue("amr_clerk", case_id)
    assert local(handle["due_at"]) == "2026-11-09T17:30"
    center.move_to("2026-11-09T16:00:00")
    answer(center, case_id)
    assert order(center, case_id)["on_time"] is True


def test_an_extension_asked_after_the_deadline_is_not_accepted(center):
    case_id = report(center)
    classify(center, case_id)
    contact(center, case_id)
    center.move_to("2026-11-06T09:00:00")  # a day late
    center.work(
        "amr_clerk",
        case_id,
        "handle",
        action="extend",
        extension_workdays=2,
        extension_reason="太忙",
    )
    assert center.queue("leader", case_id) == []
    variables = center.case(case_id)["variables"]
    assert "已超期" in variables["extension_note"]
    assert [t["element_id"] for t in center.queue("amr_clerk", case_id)] == ["handle"]
    assert order(center, case_id)["overdue"] is True


def test_a_problem_returned_by_the_wrong_department_is_dispatched_again(center):
    case_id = report(center)
    classify(center, case_id, "hrss")
    assert center.queue("amr_clerk", case_id) == []
    center.work("hrss_clerk", case_id, "contact", ours=False, contact_note="属市场监管职责")
    wo = order(center, case_id)
    assert (wo["status"], wo["returns"]) == ("returned", 1)
    assert [t["element_id"] for t in center.queue("front", case_id)] == ["classify"]
    classify(center, case_id, "amr")
    assert [t["element_id"] for t in center.queue("amr_clerk", case_id)] == ["contact"]
    assert center.queue("hrss_clerk", case_id) == []
    assert order(center, case_id)["department"] == "amr"


def test_an_unsatisfied_follow_up_reopens_the_case(center):
    case_id = report(center)
    classify(center, case_id)
    contact(center, case_id)
    answer(center, case_id)
    assert order(center, case_id)["status"] == "answered"
    center.work("front", case_id, "followup", satisfied=False, followup_note="问题未解决")
    wo = order(center, case_id)
    assert (wo["status"], wo["reopened"], wo["satisfied"]) == ("reopened", 1, False)
    assert [t["element_id"] for t in center.queue("amr_clerk", case_id)] == ["handle"]
    answer(center, case_id)
    center.work("front", case_id, "followup", satisfied=True)
    wo = order(center, case_id)
    assert (wo["status"], wo["reopened"], wo["satisfied"]) == ("closed", 1, True)


def test_a_difficult_problem_answered_on_day_seven_is_not_flagged_one_open_on_day_eight_is(
    center,
):
    answered, late = report(center, "跨部门联办"), report(center, "历史遗留问题")
    for case_id in (answered, late):
        classify(center, case_id, difficulty="difficult")
        contact(center, case_id)
    assert order(center, answered)["due_date"] == "2026-11-11"  # seven working days
    center.move_to("2026-11-11T16:00:00")  # day 7
    answer(center, answered)
    assert order(center, answered)["on_time"] is True
    center.move_to("2026-11-11T17:00:00")
    assert order(center, late)["overdue"] is False
    center.move_to("2026-11-12T09:00:00")  # day 8
    assert order(center, answered)["overdue"] is False
    assert order(center, late)["overdue"] is True
    flagged = center.get("/api/work-orders", "ops", params={"overdue": "true"}).json()
    assert [o["instance_id"] for o in flagged["items"]] == [late]
    [amr] = center.get("/api/work-orders/figures", "ops").json()
    assert (amr["overdue"], amr["on_time_rate"]) == (1, 1.0)


def _csv(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode("utf-8")


LEDGER_HEADER = ["window", "department", "description", "contact", "reported_on"]
GOOD = [
    ["税务窗口", "tax", "发票申领排队时间长", "王五 13900002222", "2026-10-28"],
    ["社保窗口", "hrss", "退休审批材料要求不一致", "赵六 13900003333", "2026-10-30"],
]


def test_a_ledger_with_bad_rows_is_refused_row_by_row_and_nothing_is_stored(center):
    rows = [
        LEDGER_HEADER,
        GOOD[0],
        ["不动产窗口", "nosuch", "登记慢", "钱七", "2026-10-29"],
        GOOD[1],
        ["", "amr", "", "孙八", "2026-13-01"],
        ["综合窗口", "amr", "态度差", "周九", "2026-12-25"],
    ]
    response = center.post(
        "/api/ledger", "front", files={"file": ("walkthrough.csv", _csv(rows), "text/csv")}
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert "3 bad row(s)" in body["message"] and "nothing was imported" in body["message"]
    by_line = {d["line"]: d["message"] for d in body["details"]}
    assert set(by_line) == {3, 5, 6}
    assert "'nosuch' is not a department code" in by_line[3]
    assert "window is empty" in by_line[5] and "description is empty" in by_line[5]
    assert "'2026-13-01' is not a date" in by_line[5]
    assert "in the future" in by_line[6]
    assert all(d["file"] == "walkthrough.csv" for d in body["details"])
    assert center.get("/api/work-orders", "ops").json()["total"] == 0


def test_a_good_ledger_becomes_work_orders_and_chinese_headers_are_accepted(center, tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(["窗口", "部门", "问题描述", "联系方式", "日期"])
    for row in GOOD:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    response = center.post(
        "/api/ledger", "front", files={"file": ("台账.xlsx", buffer.getvalue(), xlsx)}
    )
    assert response.status_code == 201, response.text
    assert response.json()["imported"] == 2
    assert [r["line"] for r in response.json()["work_orders"]] == [2, 3]
    orders = center.get("/api/work-orders", "ops", params={"source": "ledger"}).json()["items"]
    assert sorted((o["department"], o["reported_on"], o["window"]) for o in orders) == [
        ("hrss", "2026-10-30", "社保窗口"),
        ("tax", "2026-10-28", "税务窗口"),
    ]
    assert all(o["status"] == "registered" for o in orders)
    # every imported row waits for classification at the center
    for o in orders:
        assert [t["element_id"] for t in center.queue("front", o["instance_id"])] == ["classify"]

    # the same through the CLI, from a CSV file
    path = tmp_path / "ledger.csv"
    path.write_bytes(_csv([LEDGER_HEADER, GOOD[0]]))
    url = str(center.app.database.engine.url.render_as_string(hide_password=False))
    result = CliRunner().invoke(main, ["--db", url, "ledger", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "imported 1 rows" in result.stdout
    assert center.get("/api/work-orders", "ops").json()["total"] == 3


def test_the_problem_list_exports_as_csv_and_xlsx(center):
    case_id = report(center, '=HYPERLINK("http://evil")')
    classify(center, case_id)
    number = order(center, case_id)["number"]
    response = center.get("/api/work-orders/export", "ops", params={"format": "csv"})
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["工单号", "来源", "窗口", "责任部门"]
    assert rows[1][0] == number and rows[1][3] == "amr"
    assert rows[1][6].startswith("'=")  # text from the public never runs as a formula
    response = center.get("/api/work-orders/export", "ops", params={"format": "xlsx"})
    sheet = load_workbook(io.BytesIO(response.content)).active
    values = list(sheet.iter_rows(values_only=True))
    assert values[1][0] == number and values[1][4] == "业务办理"
