"""Regression tests for the SpiffWorkflow 3.2.0 traps govflow guards against."""

from __future__ import annotations

from dataclasses import replace

from engine.app import Govflow
from engine.runtime import commands
from tests import bpmn as b
from tests.support import GovflowHarness


def loop_process(iterations: int) -> str:
    # Three elements per iteration: raw 3.2.0 stops after ~333 iterations and reports "completed".
    return b.doc(
        "loop",
        b.start(),
        b.script("init", "i = 0\nseen = []"),
        b.script("inc", "i = i + 1"),
        b.script("record", "seen = seen + [i] if len(seen) < 5 else seen\nlast = i"),
        b.xor("again", default="f_done"),
        b.end(),
        *b.chain("start", "init", "inc", "record", "again"),
        b.flow("f_back", "again", "inc", condition=f"i < {iterations}"),
        b.flow("f_done", "again", "end"),
    )


def test_a_400_iteration_loop_runs_every_iteration(gf):
    gf.deploy(loop_process(400))
    instance = gf.start("loop")
    detail = gf.detail(instance.id)
    assert detail["status"] == "completed"
    assert detail["variables"]["i"] == 400
    assert detail["variables"]["last"] == 400
    counts = {e["element_id"]: e["completed"] for e in detail["elements"]}
    assert counts["inc"] == 400
    assert counts["record"] == 400
    assert counts["end"] == 1


def test_the_live_document_stays_small_while_a_loop_runs(gf):
    gf.deploy(loop_process(400))
    instance = gf.start("loop")
    # History is moved out of the live document: 400 iterations leave a short tree behind.
    assert len(gf.instance(instance.id).document) < 20_000


def test_parallel_branches_changing_different_existing_keys_keep_both_changes(gf):
    gf.deploy(
        b.doc(
            "merge",
            b.start(),
            b.script("init", "a = 'old'\nb = 'old'\nshared = {'x': 1, 'y': 1}"),
            b.par("split"),
            b.user("left", candidateGroups="amr"),
            b.user("right", candidateGroups="amr"),
            b.par("join"),
            b.user("after", candidateGroups="amr"),
            b.end(),
            *b.chain("start", "init", "split"),
            b.flow("fl", "split", "left"),
            b.flow("fr", "split", "right"),
            b.flow("fl2", "left", "join"),
            b.flow("fr2", "right", "join"),
            *b.chain("join", "after", "end"),
        )
    )
    clerk = gf.clerk("li", "amr")
    instance = gf.start("merge")
    gf.complete(gf.task(instance.id, "left").id, clerk, a="from left", shared={"x": 2, "y": 1})
    gf.complete(gf.task(instance.id, "right").id, clerk, b="from right", shared={"x": 1, "y": 3})
    variables = gf.detail(instance.id)["variables"]
    assert variables["a"] == "from left"
    assert variables["b"] == "from right"
    assert variables["shared"] == {"x": 2, "y": 3}


def test_user_data_with_a_typename_key_loads_again(gf):
    gf.deploy(
        b.doc(
            "typename",
            b.start(),
            b.user("first", candidateGroups="amr"),
            b.user("second", candidateGroups="amr"),
            b.end(),
            *b.chain("start", "first", "second", "end"),
        )
    )
    clerk = gf.clerk("li", "amr")
    instance = gf.start("typename", typename="营业执照", nested={"typename": "UUID", "value": "x"})
    gf.complete(gf.task(instance.id, "first").id, clerk, more={"typename": "datetime", "$dt": "no"})
    # The next command loads the document again.
    gf.complete(gf.task(instance.id, "second").id, clerk)
    variables = gf.detail(instance.id)["variables"]
    assert variables["typename"] == "营业执照"
    assert variables["nested"] == {"typename": "UUID", "value": "x"}
    assert variables["more"] == {"typename": "datetime", "$dt": "no"}
    assert gf.detail(instance.id)["status"] == "completed"


def test_a_runaway_loop_becomes_an_incident_not_a_hang(settings, tmp_path):
    capped = Govflow(replace(settings, max_steps_per_command=500))  # the roster has amr
    gf = GovflowHarness(capped, tmp_path)
    gf.deploy(
        b.doc(
            "forever",
            b.start(),
            b.script("spin", "n = 0"),
            b.xor("again", default="f_out"),
            b.end(),
            *b.chain("start", "spin", "again"),
            b.flow("f_back", "again", "spin", condition="True"),
            b.flow("f_out", "again", "end"),
        )
    )
    instance = gf.start("forever")
    detail = gf.detail(instance.id)
    assert detail["status"] == "error"
    incidents = [i for i in detail["incidents"] if i["resolved_at"] is None]
    assert [i["kind"] for i in incidents] == ["runaway"]
    assert "500" in incidents[0]["message"]
    capped.dispose()


def test_retrying_a_capped_loop_continues_where_it_stopped(settings, tmp_path):
    capped = Govflow(replace(settings, max_steps_per_command=500))
    gf = GovflowHarness(capped, tmp_path)
    gf.deploy(loop_process(200))  # about 800 engine steps in all
    instance = gf.start("loop")
    first = gf.detail(instance.id)
    assert first["status"] == "error"
    reached = {e["element_id"]: e["completed"] for e in first["elements"]}["inc"]
    assert 100 < reached < 200
    incident = first["incidents"][0]["id"]
    capped.runner.execute(commands.RetryIncident(incident, "continue"), gf.ops)
    done = gf.detail(instance.id)
    assert done["status"] == "completed"
    assert done["variables"]["i"] == 200
    assert {e["element_id"]: e["completed"] for e in done["elements"]}["inc"] == 200
    capped.dispose()
