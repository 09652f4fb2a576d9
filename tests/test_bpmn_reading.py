"""Reading BPMN safely, from Camunda Modeler and from plain BPMN tools."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.errors import BpmnProblems
from engine.store.models import DefinitionVersion
from tests import bpmn as b

FIXTURES = Path(__file__).parent / "fixtures"

XXE = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE definitions [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="xxe" name="&secret;" isExecutable="true">
    <bpmn:startEvent id="s" /><bpmn:endEvent id="e" />
    <bpmn:sequenceFlow id="f" sourceRef="s" targetRef="e" />
  </bpmn:process>
</bpmn:definitions>
"""

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="lolz" name="&lol9;" isExecutable="true" />
</bpmn:definitions>
"""


def _versions(app) -> int:
    with app.database.session() as session:
        return int(session.scalar(select(func.count()).select_from(DefinitionVersion)) or 0)


@pytest.mark.parametrize("content", [XXE, BILLION_LAUGHS], ids=["xxe", "billion-laughs"])
def test_entity_attacks_are_refused_with_a_clear_message_and_nothing_stored(gf, app, content):
    with pytest.raises(BpmnProblems) as refused:
        gf.deploy(content, name="attack.bpmn")
    problem = refused.value.details[0]
    assert problem["file"].endswith("attack.bpmn")
    assert problem["line"] == 2
    assert "DOCTYPE declarations are not allowed" in problem["message"]
    assert _versions(app) == 0


def test_malformed_xml_is_reported_with_its_line(gf):
    broken = b.doc("p", b.start(), b.end(), b.flow("f", "start", "end")).replace(
        "<bpmn:endEvent", "<bpmn:endEvent <", 1
    )
    with pytest.raises(BpmnProblems) as refused:
        gf.deploy(broken, name="broken.bpmn")
    problem = refused.value.details[0]
    assert problem["line"] is not None and problem["line"] > 1
    assert "not well-formed XML" in problem["message"]


def test_a_file_that_is_not_bpmn_is_refused(gf):
    with pytest.raises(BpmnProblems, match=r"not a BPMN 2\.0 file"):
        gf.deploy('<?xml version="1.0"?><html><body/></html>', name="page.bpmn")


def test_a_gbk_encoded_file_loads(gf):
    xml = b.doc(
        "gbk_case",
        b.start(),
        b.user("t", "审批（中文名称）", candidateGroups="amr"),
        b.end(),
        *b.chain("start", "t", "end"),
        name="编码测试",
    ).replace('encoding="UTF-8"', 'encoding="GBK"')
    gf.deploy(xml.encode("gbk"), name="gbk.bpmn")
    instance = gf.start("gbk_case")
    assert gf.task(instance.id, "t").name == "审批（中文名称）"


def test_a_camunda_modeler_5_file_loads_and_runs(gf):
    gf.deploy(
        (FIXTURES / "modeler5_individual_business.bpmn").read_text(encoding="utf-8"),
        forms={"business_check": {"type": "object"}, "business_apply": {"type": "object"}},
    )
    clerk = gf.clerk("li", "amr")
    front = gf.clerk("wang", "center")
    instance = gf.start("individual_business", accepted_by="wang")
    check = gf.task(instance.id, "Activity_check")
    assert check.name == "材料审核"
    assert check.candidate_groups == ["amr"]
    assert check.candidate_users == ["amr_lead"]
    assert check.priority == 70
    assert check.form_key == "embedded:app:forms/business_check.html"
    assert check.due_at is not None and check.follow_up_at is not None
    gf.complete(check.id, clerk, complete=False)
    supplement = gf.task(instance.id, "Activity_supplement")
    assert supplement.assignee == "wang"
    gf.complete(supplement.id, front)
    gf.complete(gf.task(instance.id, "Activity_check").id, clerk, complete=True)
    issue = gf.task(instance.id, "Activity_issue")
    assert gf.detail(instance.id)["status"] == "running"
    gf.complete(issue.id, clerk)
    detail = gf.detail(instance.id)
    assert detail["status"] == "completed"
    assert {e["element_id"]: e["completed"] for e in detail["elements"]}["Activity_check"] == 2


def test_a_plain_bpmn_file_uses_lanes_and_potential_owners(gf):
    gf.deploy(
        (FIXTURES / "plain_potential_owner.bpmn").read_text(encoding="utf-8"), name="plain.bpmn"
    )
    instance = gf.start("plain_review")
    lane_task = gf.task(instance.id, "lane_task")
    assert lane_task.candidate_groups == ["tax"]
    gf.complete(lane_task.id, gf.clerk("zhou", "tax"))
    owner_task = gf.task(instance.id, "owner_task")
    assert owner_task.candidate_groups == ["medins"]
    assert owner_task.candidate_users == ["chen"]
