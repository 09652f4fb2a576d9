""" "One thing, done once" bundles end to end through the API: every catalogue bundle with its
departments, the six dedicated flows in their own order, the combined form and the figures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import main
from engine.runtime import bundle_forms, clock
from engine.runtime.catalog import parse_bundles_tsv
from tests.center_support import Center, beijing, local

ROOT = Path(__file__).resolve().parent.parent
BUNDLES = parse_bundles_tsv((ROOT / "processes/catalog/bundles.tsv").read_text(encoding="utf-8"))
APPROVE = {"approved": True, "opinion": "同意"}


@pytest.fixture(scope="module")
def hall(module_app) -> Iterator[Center]:
    """One hall for the whole module: the bundles' cases do not touch each other."""
    frozen = clock.FrozenClock(beijing("2026-11-02T09:00:00"))  # a Monday
    with clock.use_clock(frozen):
        yield Center(module_app, frozen)


@pytest.fixture
def center(app) -> Iterator[Center]:
    frozen = clock.FrozenClock(beijing("2026-11-02T09:00:00"))
    with clock.use_clock(frozen):
        yield Center(app, frozen)


def apply(center: Center, code: str, **changes) -> str:
    data = {**bundle_forms.example_for(next(b for b in BUNDLES if b["code"] == code)), **changes}
    response = center.post(f"/api/one-thing/{code}/applications", "front", json={"data": data})
    assert response.status_code == 201, response.text
    case_id = response.json()["id"]
    center.work(
        "front", case_id, "accept", materials_checked=[], materials_told=True, decision="accept"
    )
    return case_id


def open_steps(center: Center, case_id: str) -> list[dict]:
    """The case's open department steps, as ops see them in the all-tasks list."""
    response = center.get("/api/tasks", "ops", params={"scope": "all", "limit": 1000})
    return [t for t in response.json() if t["instance_id"] == case_id and t["element_id"] == "step"]


def departments_now(center: Center, case_id: str) -> list[str]:
    return sorted(t["candidate_groups"][0] for t in open_steps(center, case_id))


def finish_steps(center: Center, case_id: str, departments: list[str] | None = None) -> None:
    """Each department's clerk completes its open step, from that department's own queue."""
    for task in open_steps(center, case_id):
        department = task["candidate_groups"][0]
        if departments is not None and department not in departments:
            continue
        center.finish(center.clerk_of(department), task["id"], APPROVE, settle=False, claim=False)
    center.settle()


@pytest.mark.parametrize("bundle", BUNDLES, ids=[b["code"] for b in BUNDLES])
def test_every_bundle_runs_end_to_end_through_exactly_its_departments(hall, bundle):
    data = bundle_forms.example_for(bundle)
    if bundle["code"] == "qiye_zhuxiao":
        data["cancel_route"] = "general"  # the simple route waits 20 days; its own test covers it
    response = hall.post(
        f"/api/one-thing/{bundle['code']}/applications", "front", json={"data": data}
    )
    assert response.status_code == 201, response.text
    case_id = response.json()["id"]
    hall.work(
        "front", case_id, "accept", materials_checked=[], materials_told=True, decision="accept"
    )
    seen: set[str] = set()
    for _ in range(12):
        steps = open_steps(hall, case_id)
        if not steps:
            break
        seen.update(t["candidate_groups"][0] for t in steps)
        finish_steps(hall, case_id)
    assert seen == set(bundle["departments"])
    hall.work("front", case_id, "pickup", delivery="window")
    case = hall.case(case_id)
    assert case["status"] == "completed"
    assert [s["code"] for s in case["case_statuses"]] == [1, 3, 8, 11]


def test_the_catalogue_lists_at_least_154_bundles(database_url, app):
    result = CliRunner().invoke(
        main, ["--db", database_url, "catalog", "list", "--kind", "one-thing", "--json"]
    )
    bundles = json.loads(result.stdout)
    assert len(bundles) >= 154
    assert {b["flow"] for b in bundles} == {"parallel", "sequential", "mixed"}
    assert all(b["kind"] == "one-thing" and b["form_fields"] for b in bundles)


def test_a_wrong_application_is_refused_field_by_field(center):
    form = center.get("/api/one-thing/xinshenger_chusheng/form", "front").json()
    assert (
        form["required"]
        == bundle_forms.schema_for(next(b for b in BUNDLES if b["code"] == "xinshenger_chusheng"))[
            "required"
        ]
    )
    data = bundle_forms.example_for(next(b for b in BUNDLES if b["code"] == "xinshenger_chusheng"))
    data.update(phone="12345", birth_date="2026-02-30", extra="x")
    del data["baby_name"]
    response = center.post(
        "/api/one-thing/xinshenger_chusheng/applications", "front", json={"data": data}
    )
    assert response.status_code == 422
    paths = {d["path"] for d in response.json()["details"]}
    assert {"$.data.phone", "$.data.birth_date", "$.data.baby_name", "$.data"} <= paths
    assert (
        center.post(
            "/api/one-thing/no_such_bundle/applications", "front", json={"data": {}}
        ).status_code
        == 404
    )
    assert center.get("/api/instances", "ops").json()["items"] == []


def test_business_startup_licence_first_then_six_in_parallel_within_half_a_day(center):
    case_id = apply(center, "qiye_kaiban")
    assert departments_now(center, case_id) == ["amr"]
    [licence] = open_steps(center, case_id)
    assert local(licence["due_at"]) == "2026-11-02T13:30"  # half of a 9-hour office day
    center.move_to("2026-11-02T10:00:00")
    finish_steps(center, case_id)
    assert center.case(case_id)["variables"]["business_licence"]  # issued before the fan-out
    assert departments_now(center, case_id) == ["bank", "hpf", "hrss", "medins", "police", "tax"]
    center.move_to("2026-11-02T11:00:00")
    finish_steps(center, case_id)
    center.work("front", case_id, "pickup", delivery="window")
    [row] = center.get("/api/figures/items", "ops", params={"kind": "one-thing"}).json()
    assert (row["item_code"], row["volume"], row["concluded"]) == ("qiye_kaiban", 1, 1)
    assert row["on_time_rate"] == 1.0
    assert row["median_workdays"] == pytest.approx(2 / 9, abs=0.01)  # 09:00 to 11:00


def test_company_deregistration_waits_for_the_notice_then_tax_then_registry(center):
    case_id = apply(center, "qiye_zhuxiao", cancel_route="simple")
    assert open_steps(center, case_id) == []  # the 20-day public notice runs first
    center.move_to("2026-11-22T09:01:00")
    assert departments_now(center, case_id) == ["tax"]
    finish_steps(center, case_id)
    assert departments_now(center, case_id) == ["amr"]
    finish_steps(center, case_id)
    assert departments_now(center, case_id) == [
        "bank",
        "customs",
        "hpf",
        "hrss",
        "medins",
        "police",
    ]


def test_newborn_birth_certificate_then_household_then_insurance_and_card(center):
    case_id = apply(center, "xinshenger_chusheng")
    assert departments_now(center, case_id) == ["health"]
    finish_steps(center, case_id)
    assert departments_now(center, case_id) == ["police"]
    finish_steps(center, case_id)
    assert departments_now(center, case_id) == ["hrss", "medins"]
    finish_steps(center, case_id, ["medins"])
    assert departments_now(center, case_id) == ["hrss", "tax"]  # the fee follows enrolment
    finish_steps(center, case_id)
    assert center.waiting(case_id) == ["pickup"]


def test_retirement_approval_then_fund_in_two_steps_beside_medical_insurance(center):
    case_id = apply(center, "tuixiu")
    assert departments_now(center, case_id) == ["hrss"]
    finish_steps(center, case_id)
    assert departments_now(center, case_id) == ["hpf", "medins"]
    finish_steps(center, case_id, ["hpf"])
    assert departments_now(center, case_id) == ["hpf", "medins"]  # 封存, then 提取
    finish_steps(center, case_id)
    assert center.waiting(case_id) == ["pickup"]


def test_house_transfer_then_only_the_chosen_utilities(center):
    case_id = apply(center, "ershoufang_guohu", utilities=["power", "gas"])
    for department in ("housing", "tax", "nre"):
        assert departments_now(center, case_id) == [department]
        finish_steps(center, case_id)
    assert departments_now(center, case_id) == ["gas", "power"]
    finish_steps(center, case_id)
    assert center.waiting(case_id) == ["pickup"]


def test_restaurant_checks_only_what_the_shop_needs(center):
    case_id = apply(center, "canyindian", area_m2=30, sells_tobacco=False, signage=True)
    assert departments_now(center, case_id) == ["amr"]
    finish_steps(center, case_id)
    # under 50 m2 no fire inspection; no tobacco licence without tobacco sales
    assert departments_now(center, case_id) == ["amr", "eco", "police", "tax", "urban"]


def test_a_refused_step_ends_the_bundle_as_not_passed(center):
    case_id = apply(center, "tuixiu")
    [step] = open_steps(center, case_id)
    center.finish(
        center.clerk_of("hrss"),
        step["id"],
        {
            "approved": False,
            "opinion": "缴费年限不足",
        },
    )
    while open_steps(center, case_id):  # the other departments still give their results
        finish_steps(center, case_id)
    case = center.case(case_id)
    assert case["case_status"] == 13
    assert "退休核准未通过" in case["case_statuses"][-1]["note"]
