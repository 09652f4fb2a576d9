"""The one-window flow (前台综合受理、后台分类审批、窗口统一出件) end to end through the API,
with the bundled processes/window_service.bpmn, its forms and the item catalogue."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from engine.runtime import clock
from tests.center_support import Center, beijing, local

PHONE = "13912345678"
ALL_REQUIRED = {
    "amr-01": ["申请表", "申请人身份证件", "营业执照或名称自主申报告知书"],
    "amr-03": ["申请表", "申请人身份证件", "营业执照或名称自主申报告知书"],
    "amr-05": [
        "申请表",
        "申请人身份证件",
        "营业执照或名称自主申报告知书",
        "经营场所使用证明",
        "设施设备清单",
    ],
}


@pytest.fixture
def center(app) -> Iterator[Center]:
    frozen = clock.FrozenClock(beijing("2026-11-02T09:00:00"))  # a Monday
    with clock.use_clock(frozen):
        yield Center(app, frozen)


def apply(center: Center, item: str) -> str:
    case = center.start(
        "window_service", "front", item_code=item, applicant_name="张三", phone=PHONE
    )
    return case["id"]


def statuses(center: Center, instance_id: str) -> list[int]:
    return [s["code"] for s in center.case(instance_id)["case_statuses"]]


def only_department_sees(center: Center, instance_id: str, element_id: str) -> None:
    """The back-office task is in the item's department queue and nobody else's."""
    [task] = center.queue("amr_clerk", instance_id)
    assert task["element_id"] == element_id
    assert center.queue("hrss_clerk", instance_id) == []
    assert element_id not in [t["element_id"] for t in center.queue("front", instance_id)]
    assert center.get(f"/api/tasks/{task['id']}", "hrss_clerk").status_code == 403
    assert center.post(f"/api/tasks/{task['id']}/claim", "front").status_code == 403


def test_the_answer_to_an_application_shows_its_case_number_and_status(center):
    """The front desk sees the number and the status 已接件 the start gave the case in the
    answer to its POST, as a later read shows them; so does a program that starts the case
    through the Python API."""
    started = center.start(
        "window_service", "front", item_code="amr-01", applicant_name="张三", phone=PHONE
    )
    assert re.fullmatch(r"36078100000020261102\d{6}", started["business_key"])
    assert (started["case_status"], started["case_status_name"]) == (1, "已接件")
    read = center.case(started["id"])
    assert (read["business_key"], read["case_status"]) == (started["business_key"], 1)
    # and so does the case an embedding program gets back from the Python API
    case = center.app.start(
        "window_service",
        center.app.actor("front"),
        variables={"item_code": "amr-01", "applicant_name": "李四", "phone": PHONE},
    )
    assert re.fullmatch(r"36078100000020261102\d{6}", case.business_key or "")
    assert case.case_status == 1


def test_a_normal_case_is_accepted_approved_in_two_levels_handed_out_and_rated(center):
    case_id = apply(center, "amr-05")  # 食品经营许可: 10 working days, two levels, a licence
    case = center.case(case_id)
    assert re.fullmatch(r"36078100000020261102\d{6}", case["business_key"])
    assert case["case_status"] == 1 and case["case_status_name"] == "已接件"
    assert center.waiting(case_id) == ["accept"]
    assert center.queue("amr_clerk", case_id) == []

    center.work(
        "front",
        case_id,
        "accept",
        materials_checked=ALL_REQUIRED["amr-05"],
        materials_told=True,
        decision="accept",
    )
    only_department_sees(center, case_id, "handle")
    [handle] = center.queue("amr_clerk", case_id)
    assert local(handle["due_at"]) == "2026-11-16T17:30"  # ten working days after 2 Nov
    case = center.case(case_id)
    assert case["variables"]["contact_clerk"] == "front"  # 首问负责
    assert case["variables"]["materials_notice"]["optional"]  # 一次性告知, recorded

    center.work(
        "amr_clerk",
        case_id,
        "handle",
        recommend="approve",
        opinion="符合条件",
        special_procedure="none",
    )
    only_department_sees(center, case_id, "sign")
    center.work("amr_chief", case_id, "sign", sign_approved=True, sign_opinion="同意")
    assert center.waiting(case_id) == ["pickup"]
    [notice] = center.sms_to(PHONE)
    assert "已办结" in notice and case["business_key"] in notice
    variables = center.case(case_id)["variables"]
    assert variables["certificate_number"]

    center.work("front2", case_id, "pickup", delivery="window")
    center.work("front", case_id, "rating", rating=5, rating_comment="很快")
    case = center.case(case_id)
    assert case["status"] == "completed"
    assert statuses(center, case_id) == [1, 3, 8, 11]


def test_a_refused_case_is_told_why_and_never_reaches_the_department(center):
    case_id = apply(center, "amr-01")
    center.work(
        "front",
        case_id,
        "accept",
        materials_checked=ALL_REQUIRED["amr-01"],
        materials_told=True,
        decision="refuse",
        refuse_reason="不属于本中心受理范围",
    )
    case = center.case(case_id)
    assert case["status"] == "completed"
    assert statuses(center, case_id) == [1, 5]
    assert "不予受理：不属于本中心受理范围" in center.sms_to(PHONE)[0]
    assert center.queue("amr_clerk", case_id) == []
    assert not [t for t in case["tasks"] if t["element_id"] == "handle"]


def test_a_refusal_without_a_reason_is_refused_with_the_field(center):
    case_id = apply(center, "amr-01")
    [task] = center.queue("front", case_id)
    center.post(f"/api/tasks/{task['id']}/claim", "front")
    response = center.post(
        f"/api/tasks/{task['id']}/complete",
        "front",
        json={"data": {"materials_checked": [], "materials_told": True, "decision": "refuse"}},
    )
    assert response.status_code == 422
    assert "refuse_reason" in response.text


def test_a_supplement_request_pauses_the_clock_and_moves_the_deadline(center):
    case_id = apply(center, "amr-01")  # 3 working days: due Thursday 5 November
    assert center.case(case_id)["clocks"][0]["due_date"] == "2026-11-05"
    center.work(
        "front",
        case_id,
        "accept",
        materials_checked=["申请表", "申请人身份证件"],
        materials_told=True,
        decision="accept",
    )
    case = center.case(case_id)
    assert case["case_status"] == 6  # 补正（开始）: the licence of the name is missing
    assert case["clocks"][0]["state"] == "paused"
    assert center.waiting(case_id) == ["supplement"]

    center.move_to("2026-11-05T10:00:00")  # three working days later the applicant returns
    center.work("front", case_id, "supplement", materials_added=["营业执照或名称自主申报告知书"])
    clock_row = center.case(case_id)["clocks"][0]
    assert clock_row["state"] == "running"
    assert clock_row["paused_workdays"] == 3
    assert clock_row["due_date"] == "2026-11-10"  # 5 Nov + 3 working days
    center.work(
        "front",
        case_id,
        "accept",
        materials_checked=ALL_REQUIRED["amr-01"],
        materials_told=True,
        decision="accept",
    )
    [handle] = center.queue("amr_clerk", case_id)
    assert local(handle["due_at"]) == "2026-11-10T17:30"
    assert statuses(center, case_id) == [1, 6, 7, 3, 8]

    center.move_to("2026-11-10T17:00:00")
    overdue = center.get("/api/instances", "ops", params={"overdue": "true"}).json()["items"]
    assert case_id not in [c["id"] for c in overdue]
    center.move_to("2026-11-11T09:00:00")
    overdue = center.get("/api/instances", "ops", params={"overdue": "true"}).json()["items"]
    assert case_id in [c["id"] for c in overdue]
    assert center.queue("amr_clerk", case_id)[0]["overdue"] is True


def test_rongque_supplemented_in_time_ends_as_passed_with_rongque(center):
    case_id = apply(center, "amr-03")  # 企业注销登记: 容缺 allowed, 3 working days
    center.work(
        "front",
        case_id,
        "accept",
        materials_checked=ALL_REQUIRED["amr-03"],
        materials_told=True,
        decision="rongque",
        rongque_promise=True,
    )
    assert center.waiting(case_id) == ["handle", "rongque_supplement"]
    only_department_sees(center, case_id, "handle")
    [supplement] = center.queue("front", case_id)
    assert local(supplement["due_at"]) == "2026-11-05T17:30"  # never past the promised time
    center.move_to("2026-11-04T15:00:00")
    center.work("front", case_id, "rongque_supplement", materials_added=["申请人近期照片"])
    center.work(
        "amr_clerk",
        case_id,
        "handle",
        recommend="approve",
        opinion="同意注销",
        special_procedure="none",
    )
    center.work(
        "front", case_id, "pickup", delivery="ems", ems_address="县城关镇1号", recipient="张三"
    )
    case = center.case(case_id)
    assert statuses(center, case_id) == [1, 3, 8, 12]
    assert case["case_status_name"] == "办结（容缺通过）"
    assert case["variables"]["tracking_number"]
    assert center.waiting(case_id) == ["rating"]


def test_rongque_not_supplemented_ends_the_case_as_not_passed(center):
    case_id = apply(center, "amr-03")
    center.work(
        "front",
        case_id,
        "accept",
        materials_checked=ALL_REQUIRED["amr-03"],
        materials_told=True,
        decision="rongque",
        rongque_promise=True,
    )
    center.move_to("2026-11-05T17:00:00")
    assert center.waiting(case_id) == ["handle", "rongque_supplement"]
    center.move_to("2026-11-05T17:31:00")  # the promised day has closed
    case = center.case(case_id)
    assert case["status"] == "completed"
    assert statuses(center, case_id) == [1, 3, 8, 13]
    assert center.queue("amr_clerk", case_id) == []  # the back-office task went away
    assert "未按承诺补齐" in center.sms_to(PHONE)[-1]


def test_special_procedure_pauses_the_clock(center):
    case_id = apply(center, "amr-01")
    center.work(
        "front",
        case_id,
        "accept",
        materials_checked=ALL_REQUIRED["amr-01"],
        materials_told=True,
        decision="accept",
    )
    center.work(
        "amr_clerk",
        case_id,
        "handle",
        recommend="approve",
        opinion="需现场核查",
        special_procedure="onsite",
    )
    assert center.case(case_id)["clocks"][0]["state"] == "paused"
    # paused from the end of Monday 2 Nov to the end of Monday 9 Nov: five working days
    center.move_to("2026-11-09T09:00:00")
    center.work("amr_clerk", case_id, "special", findings="现场符合", special_passed=True)
    case = center.case(case_id)
    assert case["clocks"][0]["due_date"] == "2026-11-12"  # 5 Nov + 5 paused working days
    assert [local(t["due_at"]) for t in center.queue("amr_clerk", case_id)] == ["2026-11-12T17:30"]
    assert statuses(center, case_id)[-2:] == [9, 10]


def test_an_unrated_case_counts_as_satisfied_after_the_configured_working_days(center):
    response = center.client.put(
        "/api/policies/rating_default_workdays", json={"value": 2}, headers=center.headers("ops")
    )
    assert response.status_code == 200, response.text
    case_id = apply(center, "amr-01")
    center.work(
        "front",
        case_id,
        "accept",
        materials_checked=ALL_REQUIRED["amr-01"],
        materials_told=True,
        decision="accept",
    )
    center.work(
        "amr_clerk",
        case_id,
        "handle",
        recommend="approve",
        opinion="同意",
        special_procedure="none",
    )
    center.work("front", case_id, "pickup", delivery="window")
    center.move_to("2026-11-04T17:00:00")
    assert center.waiting(case_id) == ["rating"]
    center.move_to("2026-11-04T17:31:00")
    variables = center.case(case_id)["variables"]
    assert (variables["rating"], variables["rating_source"]) == (4, "default")


def test_a_bad_rating_opens_a_rectification_work_order_for_the_department(center):
    case_id = apply(center, "amr-01")
    center.work(
        "front",
        case_id,
        "accept",
        materials_checked=ALL_REQUIRED["amr-01"],
        materials_told=True,
        decision="accept",
    )
    center.work(
        "amr_clerk",
        case_id,
        "handle",
        recommend="approve",
        opinion="同意",
        special_procedure="none",
    )
    center.work("front", case_id, "pickup", delivery="window")
    center.work("front", case_id, "rating", rating=1, rating_comment="来回跑了三趟")
    case = center.case(case_id)
    assert case["status"] == "completed"
    orders = center.get("/api/work-orders", "ops").json()["items"]
    [order] = [o for o in orders if o["origin_case"] == case["business_key"]]
    assert order["source"] == "rating"
    assert order["department"] == "amr"
    assert "来回跑了三趟" in order["description"]
    assert order["status"] == "registered"
    assert [t["element_id"] for t in center.queue("front", order["instance_id"])] == ["classify"]
    assert center.queue("hrss_clerk", order["instance_id"]) == []
