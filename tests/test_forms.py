"""Form submissions are checked against the task's JSON Schema; a bad one stores nothing."""

from __future__ import annotations

import pytest

from engine.errors import InvalidInput
from engine.runtime.forms import form_name, validate_submission
from tests import bpmn as b

APPLICATION = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "applicant": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "id_number": {"type": "string", "pattern": "^[0-9]{17}[0-9X]$"},
            },
            "required": ["name", "id_number"],
        },
        "fee": {"type": "number", "minimum": 0},
        "materials": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "submitted_on": {"type": "string", "format": "date"},
    },
    "required": ["applicant", "fee", "materials"],
    "additionalProperties": False,
}


@pytest.fixture
def form_case(gf):
    gf.deploy(
        b.doc(
            "with_form",
            b.start(),
            b.user(
                "apply", "申请", candidateGroups="center", formKey="embedded:app:forms/apply.html"
            ),
            b.end(),
            *b.chain("start", "apply", "end"),
        ),
        forms={"apply": APPLICATION},
    )
    clerk = gf.clerk("wang", "center")
    instance = gf.start("with_form")
    return instance, gf.task(instance.id, "apply"), clerk


def test_every_error_comes_back_with_its_json_path(gf, form_case):
    _instance, task, clerk = form_case
    with pytest.raises(InvalidInput) as refused:
        gf.complete(
            task.id,
            clerk,
            applicant={"name": "", "id_number": "123"},
            fee="ten",
            materials=[],
            submitted_on="yesterday",
            extra=1,
        )
    paths = {d["path"]: d["message"] for d in refused.value.details}
    assert set(paths) == {
        "$",
        "$.applicant.name",
        "$.applicant.id_number",
        "$.fee",
        "$.materials",
        "$.submitted_on",
    }
    assert "extra" in paths["$"]
    assert "is not of type 'number'" in paths["$.fee"]
    assert "is not a 'date'" in paths["$.submitted_on"]


def test_a_missing_required_field_is_reported_at_the_field(gf, form_case):
    _, task, clerk = form_case
    with pytest.raises(InvalidInput) as refused:
        gf.complete(task.id, clerk, applicant={"name": "张三"}, materials=["身份证"])
    assert {d["path"] for d in refused.value.details} == {"$.applicant.id_number", "$.fee"}


def test_an_invalid_submission_stores_nothing(gf, form_case):
    instance, task, clerk = form_case
    before = gf.instance(instance.id)
    audit = gf.audit_count(instance.id)
    with pytest.raises(InvalidInput):
        gf.complete(task.id, clerk, fee=-1)
    after = gf.instance(instance.id)
    assert (after.version, after.document) == (before.version, before.document)
    assert gf.audit_count(instance.id) == audit
    assert gf.task(instance.id, "apply").state == "open"
    assert gf.task(instance.id, "apply").assignee is None


def test_a_valid_submission_completes_and_lands_in_the_case_data(gf, form_case):
    instance, task, clerk = form_case
    gf.complete(
        task.id,
        clerk,
        applicant={"name": "张三", "id_number": "11010519491231002X"},
        fee=0,
        materials=["身份证", "营业执照"],
        submitted_on="2026-11-27",
    )
    detail = gf.detail(instance.id)
    assert detail["status"] == "completed"
    assert detail["variables"]["applicant"]["name"] == "张三"
    assert detail["history"][-1]["data"]["materials"] == ["身份证", "营业执照"]


def test_form_keys_in_modeler_styles_name_the_same_schema():
    for key in (
        "apply",
        "forms/apply.schema.json",
        "embedded:app:forms/apply.html",
        "camunda-forms:deployment:apply.form",
    ):
        assert form_name(key) == "apply"


def test_data_that_is_not_an_object_is_refused():
    assert validate_submission(None, ["a"])[0].path == "$"
