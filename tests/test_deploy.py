"""Deploying: versions only when content changes, instances stay on their version."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from engine.errors import BpmnProblems, Forbidden, InvalidInput
from engine.store.models import AuditEvent, DefinitionVersion, FormSchema, ProcessDefinition
from tests import bpmn as b


def review(task_name: str = "审查", form: str | None = "review") -> str:
    return b.doc(
        "review",
        b.start(),
        b.user("check", task_name, candidateGroups="amr", formKey=form),
        b.end(),
        *b.chain("start", "check", "end"),
        name="审查流程",
    )


FORM_V1 = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
FORM_V2 = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}, "note": {"type": "string"}},
    "required": ["ok", "note"],
}


def test_redeploying_unchanged_content_keeps_the_version(gf):
    first = gf.deploy(review(), forms={"review": FORM_V1})
    again = gf.deploy(review(), forms={"review": FORM_V1})
    assert [(p.key, p.version, p.created) for p in first.processes] == [("review", 1, True)]
    assert [(p.key, p.version, p.created) for p in again.processes] == [("review", 1, False)]


def test_a_changed_file_or_form_makes_a_new_version(gf):
    gf.deploy(review(), forms={"review": FORM_V1})
    assert gf.deploy(review("审查（新）"), forms={"review": FORM_V1}).processes[0].version == 2
    assert gf.deploy(review("审查（新）"), forms={"review": FORM_V2}).processes[0].version == 3
    assert gf.deploy(review("审查（新）"), forms={"review": FORM_V2}).processes[0].version == 3


def test_instances_stay_on_their_version_while_new_ones_run_beside_them(gf):
    clerk = gf.clerk("li", "amr")
    gf.deploy(review(), forms={"review": FORM_V1})
    old = gf.start("review")
    gf.deploy(review("审查（新）"), forms={"review": FORM_V2})
    new = gf.start("review")
    assert (gf.detail(old.id)["version"], gf.detail(new.id)["version"]) == (1, 2)
    assert gf.task(old.id, "check").name == "审查"
    assert gf.task(new.id, "check").name == "审查（新）"
    # each version validates with its own form
    gf.complete(gf.task(old.id, "check").id, clerk, ok=True)
    gf.complete(gf.task(new.id, "check").id, clerk, ok=True, note="新表单要求意见")
    assert gf.detail(old.id)["status"] == gf.detail(new.id)["status"] == "completed"
    explicit = gf.app.start("review", gf.designer, version=1)
    assert gf.detail(explicit.id)["version"] == 1


def test_a_deploy_with_problems_stores_nothing(gf, app):
    gf.deploy(review(), forms={"review": FORM_V1})
    broken = review().replace('candidateGroups="amr"', 'candidateGroups="no_such_dept"')
    with pytest.raises(BpmnProblems) as refused:
        gf.deploy(broken, forms={"review": FORM_V2})
    assert "nothing was deployed" in refused.value.message
    assert refused.value.details[0]["message"].startswith("candidate group 'no_such_dept'")
    with app.database.session() as session:
        assert session.scalar(select(func.count()).select_from(DefinitionVersion)) == 1
        assert session.get(FormSchema, "review").content == FORM_V1


def test_an_invalid_form_schema_is_a_problem(gf):
    with pytest.raises(BpmnProblems) as refused:
        gf.deploy(review(), forms={"review": {"type": "object", "required": "ok"}})
    assert "not a valid JSON Schema" in refused.value.details[0]["message"]


def test_a_form_deployed_earlier_serves_later_processes(gf):
    form = gf.write("forms/review.schema.json", FORM_V1)
    assert gf.app.deploy_paths([form], gf.designer).forms == ["review"]
    result = gf.deploy(review(), name="later.bpmn")
    assert result.processes[0].version == 1
    instance = gf.start("review")
    with pytest.raises(InvalidInput, match="form data is invalid"):
        gf.complete(gf.task(instance.id, "check").id, gf.clerk("li", "amr"), ok="yes")


def test_only_designers_and_admins_deploy(gf, app):
    clerk = gf.clerk("li", "amr")
    path = gf.write("p.bpmn", review(form=None))
    with pytest.raises(Forbidden):
        app.deploy_paths([path], clerk)
    with app.database.session() as session:
        assert session.scalar(select(func.count()).select_from(ProcessDefinition)) == 0


def test_a_deploy_is_audited(gf, app):
    gf.deploy(review(), forms={"review": FORM_V1})
    with app.database.session() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.command == "deploy")).one()
    assert event.actor == "designer"
    assert event.details["processes"] == [
        {"key": "review", "name": "审查流程", "version": 1, "created": True}
    ]
    assert event.details["forms"] == ["review"]


def test_a_process_calling_another_file_deploys_with_both(gf):
    child = b.doc(
        "child",
        b.start(),
        b.user("inner", "子流程任务", candidateGroups="amr"),
        b.end(),
        *b.chain("start", "inner", "end"),
    )
    parent = b.doc(
        "parent",
        b.start(),
        '<bpmn:callActivity id="call" calledElement="child" />',
        b.end(),
        *b.chain("start", "call", "end"),
    )
    paths = [gf.write("child.bpmn", child), gf.write("parent.bpmn", parent)]
    result = gf.app.deploy_paths(paths, gf.designer)
    assert sorted(p.key for p in result.processes) == ["child", "parent"]
    instance = gf.start("parent")
    task = gf.task(instance.id, "inner")
    gf.complete(task.id, gf.clerk("li", "amr"))
    assert gf.detail(instance.id)["status"] == "completed"


def test_a_case_start_reads_neither_the_bpmn_nor_the_spec_of_its_version(gf, app):
    """A start needs its version's id and number; the restored spec is kept in memory. The
    version row's sources and spec (the window service's: 66,000 characters) are not read
    again for every case."""
    from sqlalchemy import event

    gf.deploy(review(), forms={"review": FORM_V1})
    gf.start("review")  # the version is loaded once
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    event.listen(app.database.engine, "before_cursor_execute", record)
    try:
        second = gf.start("review")
        explicit = gf.app.start("review", gf.designer, version=1)
    finally:
        event.remove(app.database.engine, "before_cursor_execute", record)
    assert gf.detail(second.id)["version"] == gf.detail(explicit.id)["version"] == 1
    reads = [s for s in seen if "definition_versions" in s]
    assert reads, "the start looked its version up"
    assert not [s for s in reads if "definition_versions.sources" in s or ".spec" in s], reads
