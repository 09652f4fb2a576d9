"""A case start writes its case once: the row goes in with its first document and status,
not as an empty case updated in the same transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from tests import bpmn as b

FLOW = b.doc(
    "one_write",
    b.start(),
    b.user("check", candidateGroups="amr"),
    b.end(),
    *b.chain("start", "check", "end"),
)


def test_a_started_case_is_written_in_one_insert_with_its_document(gf):
    gf.deploy(FLOW)
    writes: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        words = statement.split()
        if words[:3] == ["INSERT", "INTO", "instances"] or words[:2] == ["UPDATE", "instances"]:
            writes.append(words[0])

    event.listen(gf.app.database.engine, "before_cursor_execute", seen)
    try:
        case = gf.start("one_write", applicant="张三")
    finally:
        event.remove(gf.app.database.engine, "before_cursor_execute", seen)

    assert writes == ["INSERT"]
    stored = gf.instance(case.id)
    assert stored.status == "running"
    assert stored.document  # the workflow as it stopped at "check", not an empty case
    assert stored.variables["applicant"] == "张三"
    assert [t.element_id for t in gf.open_tasks(case.id)] == ["check"]
    assert gf.detail(case.id)["status"] == "running"
