"""`govflow lint`: every problem as file:line: message, exit 1; silence and exit 0 when clean."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import main
from tests import bpmn as b

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def lint(database_url, app, tmp_path):
    runner = CliRunner()

    def run(*files: tuple[str, str]) -> tuple[int, list[str]]:
        paths = []
        for name, content in files:
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
            paths.append(str(path))
        result = runner.invoke(main, ["--db", database_url, "lint", *paths])
        lines = [line.replace(str(tmp_path) + "/", "") for line in result.output.splitlines()]
        return result.exit_code, lines

    return run


def _line_of(content: str, needle: str) -> int:
    for number, line in enumerate(content.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(needle)


def _layout(*elements: str) -> str:
    """One element per line so problems can be matched to lines."""
    return b.definitions(b.process("p", *elements)).replace("><", ">\n<")


def test_a_clean_process_prints_nothing_and_exits_0(lint):
    code, lines = lint(("ok.bpmn", b.doc("ok", b.start(), b.end(), b.flow("f", "start", "end"))))
    assert (code, lines) == (0, [])


def test_the_bundled_processes_are_clean(database_url, app):
    result = CliRunner().invoke(
        main, ["--db", database_url, "lint", str(ROOT / "processes"), str(ROOT / "forms")]
    )
    assert (result.exit_code, result.output) == (0, "")


def test_missing_start_and_end_events(lint):
    content = _layout(b.user("t", candidateGroups="amr"))
    code, lines = lint(("bare.bpmn", content))
    assert code == 1
    assert "bare.bpmn:3: process 'p' has no start event" in lines
    assert "bare.bpmn:3: process 'p' has no end event" in lines


def test_unreachable_elements(lint):
    content = _layout(
        b.start(),
        b.end(),
        b.flow("f", "start", "end"),
        b.user("orphan", "孤立任务", candidateGroups="amr"),
    )
    code, lines = lint(("orphan.bpmn", content))
    assert code == 1
    line = _line_of(content, 'id="orphan"')
    assert lines == [
        f"orphan.bpmn:{line}: userTask 'orphan' (孤立任务) cannot be reached from a start event"
    ]


def test_exclusive_gateway_flows_need_a_condition_or_default(lint):
    content = _layout(
        b.start(),
        b.xor("gw"),
        b.end("a"),
        b.end("b"),
        b.flow("f0", "start", "gw"),
        b.flow("fa", "gw", "a", condition="x > 1"),
        b.flow("fb", "gw", "b"),
    )
    code, lines = lint(("gw.bpmn", content))
    assert code == 1
    line = _line_of(content, 'id="fb"')
    assert (
        f"gw.bpmn:{line}: sequence flow 'fb' leaving exclusiveGateway 'gw' has no condition and is not the gateway's default flow"
        in lines
    )


def test_timer_expressions_that_cannot_evaluate(lint):
    content = _layout(
        b.start(),
        b.user("t", candidateGroups="amr"),
        b.end(),
        *b.chain("start", "t", "end"),
        b.timer_boundary("late", "t", "P3X"),
        b.timer_boundary("later", "t", "${'tomorrow'}"),
    )
    code, lines = lint(("timer.bpmn", content))
    assert code == 1
    text = "\n".join(lines)
    assert "timeDuration 'P3X'" in text or "'P3X'" in text
    assert "evaluates to 'tomorrow', which is not ISO 8601 text" in text


def test_a_form_key_without_a_form(lint):
    content = _layout(
        b.start(),
        b.user("t", "受理", candidateGroups="center", formKey="accept_form"),
        b.end(),
        *b.chain("start", "t", "end"),
    )
    code, lines = lint(
        ("form.bpmn", content), ("forms/accept_from.schema.json", '{"type": "object"}')
    )
    assert code == 1
    line = _line_of(content, 'id="t"')
    assert lines == [
        f"form.bpmn:{line}: userTask 't' (受理) uses form 'accept_form' but there is no "
        "forms/accept_form.schema.json (did you mean 'accept_from'?)"
    ]


def test_a_candidate_group_that_is_no_department(lint):
    content = _layout(
        b.start(), b.user("t", candidateGroups="amr, amrr"), b.end(), *b.chain("start", "t", "end")
    )
    code, lines = lint(("groups.bpmn", content))
    assert code == 1
    line = _line_of(content, 'id="t"')
    assert lines == [
        f"groups.bpmn:{line}: candidate group 'amrr' of userTask 't' is not a department code "
        "(did you mean 'amr'?)"
    ]


def test_a_lane_that_names_no_department(lint):
    lanes = '<bpmn:laneSet id="ls"><bpmn:lane id="l" name="后台"><bpmn:flowNodeRef>t</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>\n'
    content = b.definitions(
        b.process("p", b.start(), b.user("t"), b.end(), *b.chain("start", "t", "end"), lanes=lanes)
    )
    code, lines = lint(("lane.bpmn", content))
    assert code == 1
    assert "is in lane '后台', which names no department" in "\n".join(lines)


def test_a_parallel_gateway_inside_a_loop(lint):
    content = _layout(
        b.start(),
        b.par("fork"),
        b.user("a", candidateGroups="amr"),
        b.user("c", candidateGroups="amr"),
        b.par("merge"),
        b.xor("again", default="out"),
        b.end(),
        b.flow("f0", "start", "fork"),
        b.flow("f1", "fork", "a"),
        b.flow("f2", "fork", "c"),
        b.flow("f3", "a", "merge"),
        b.flow("f4", "c", "merge"),
        b.flow("f5", "merge", "again"),
        b.flow("back", "again", "fork", condition="retry"),
        b.flow("out", "again", "end"),
    )
    code, lines = lint(("loop.bpmn", content))
    assert code == 1
    flagged = sorted(line.split(":")[2].split("'")[1] for line in lines)
    assert flagged == ["fork", "merge"]
    assert all("sits inside a loop" in line for line in lines)


def test_alternatives_of_an_exclusive_split_joined_by_a_parallel_gateway(lint):
    """The window flow once had this: a case that silently never reached the pickup window."""
    content = _layout(
        b.start(),
        b.par("split"),
        b.xor("two_level", default="f_one"),
        b.user("sign", "签发", candidateGroups="amr"),
        b.user("meanwhile", "并行", candidateGroups="amr"),
        b.par("join"),
        b.end(),
        b.flow("f0", "start", "split"),
        b.flow("f1", "split", "two_level"),
        b.flow("f2", "split", "meanwhile"),
        b.flow("f_two", "two_level", "sign", condition="levels == 2"),
        b.flow("f_one", "two_level", "join"),
        b.flow("f_sign", "sign", "join"),
        b.flow("f3", "meanwhile", "join"),
        b.flow("f4", "join", "end"),
    )
    code, lines = lint(("join.bpmn", content))
    assert code == 1
    line = _line_of(content, 'id="join"')
    assert lines == [
        f"join.bpmn:{line}: parallelGateway 'join' joins flows f_one, f_sign, which are "
        "alternatives of exclusiveGateway 'two_level': only one of them ever carries a token, "
        "so the join would wait for ever. Merge them with an exclusive gateway before the "
        "parallel join"
    ]


def test_a_chain_longer_than_the_parser_can_take(lint):
    ids = [f"s{i}" for i in range(320)]
    content = _layout(
        b.start(), *[b.script(i, "x = 1") for i in ids], b.end(), *b.chain("start", *ids, "end")
    )
    code, lines = lint(("long.bpmn", content))
    assert code == 1
    assert len(lines) == 1
    assert "is element 301 of one unbroken chain" in lines[0]
    assert "at most 300" in lines[0]


def test_scripts_and_conditions_are_compiled_by_the_sandbox(lint):
    content = _layout(
        b.start(),
        b.script("s", "x = 1\nimport os"),
        b.xor("gw", default="f2"),
        b.end("e1"),
        b.end("e2"),
        b.flow("f0", "start", "s"),
        b.flow("f00", "s", "gw"),
        b.flow("f1", "gw", "e1", condition="x.__class__"),
        b.flow("f2", "gw", "e2"),
    )
    code, lines = lint(("scripts.bpmn", content))
    assert code == 1
    text = "\n".join(lines)
    assert "script of scriptTask 's': import is not allowed in scripts" in text
    assert "condition of sequence flow 'f1' is not valid" in text


def test_schema_errors_are_reported_with_their_line(lint):
    content = _layout(b.start(), b.end(), b.flow("f", "start", "end")).replace(
        "<bpmn:endEvent", '<bpmn:endEvent unknownAttribute="1"', 1
    )
    code, lines = lint(("xsd.bpmn", content))
    assert code == 1
    assert lines[0].startswith(f"xsd.bpmn:{_line_of(content, 'unknownAttribute')}: schema:")
    assert "unknownAttribute" in lines[0]


def test_every_problem_in_every_file_is_listed(lint):
    bad_a = _layout(b.user("t", candidateGroups="nope"))
    bad_b = _layout(b.start(), b.end(), b.xor("g"))
    code, lines = lint(("a.bpmn", bad_a), ("b.bpmn", bad_b))
    assert code == 1
    files = {line.split(":")[0] for line in lines}
    assert files == {"a.bpmn", "b.bpmn"}
    assert len(lines) >= 4
