"""Scripts and conditions run in a restricted evaluator; an escape fails only its element."""

from __future__ import annotations

import time

import pytest

from engine.runtime.sandbox import Sandbox, ScriptError
from tests import bpmn as b

ESCAPES = {
    "import": "import os",
    "from-import": "from subprocess import run",
    "dunder attribute": "x = ().__class__.__bases__[0].__subclasses__()",
    "dunder name": "x = __builtins__",
    "open": "x = open('/etc/passwd').read()",
    "exec": "exec('x = 1')",
    "eval": "x = eval('1 + 1')",
    "getattr": "x = getattr((), '__class__')",
    "format string": "x = '{0.__class__.__mro__}'.format(1)",
    "type": "x = type(1)",
    "class": "class A:\n    pass",
    "bare except": "try:\n    x = 1\nexcept:\n    pass",
    "finally": "try:\n    x = 1\nfinally:\n    y = 2",
    "generator": "def g():\n    yield 1",
    "memory bomb": "x = 'a' * (10 ** 10)",
    "big power": "x = 9 ** 9 ** 9",
    "huge range": "x = list(range(10 ** 9))",
    "padding bomb": "x = 'a'.ljust(10 ** 10)",
}


@pytest.mark.parametrize("source", ESCAPES.values(), ids=ESCAPES.keys())
def test_escapes_are_refused(source):
    with pytest.raises(ScriptError):
        Sandbox(1.0).execute(source, {})


def test_an_endless_loop_stops_at_the_time_limit():
    started = time.monotonic()
    with pytest.raises(ScriptError, match=r"longer than the limit of 0\.3 s"):
        Sandbox(0.3).execute("n = 0\nwhile True:\n    n += 1", {})
    assert time.monotonic() - started < 2


def test_the_time_limit_cannot_be_caught_by_the_script():
    with pytest.raises(ScriptError, match="longer than the limit"):
        Sandbox(0.3).execute(
            "try:\n    while True:\n        pass\nexcept Exception:\n    x = 1", {}
        )


def test_ordinary_scripts_work_and_only_storable_names_become_data():
    from datetime import date, timedelta

    data = {"amount": 120, "items": ["a", "b"]}
    Sandbox(1.0, {"date": date, "timedelta": timedelta}).execute(
        "total = amount * 2\nnames = [i.upper() for i in items]\ndef helper(x):\n    return x\n"
        "label = f'{len(names)} items'\nwhen = date(2026, 1, 1) + timedelta(days=1)",
        data,
    )
    assert data["total"] == 240
    assert data["names"] == ["A", "B"]
    assert data["label"] == "2 items"
    assert data["when"] == date(2026, 1, 2)
    assert "helper" not in data


def test_a_failed_script_leaves_the_data_unchanged():
    data = {"a": 1}
    with pytest.raises(ScriptError, match="line 2: NameError"):
        Sandbox(1.0).execute("a = 2\nb = missing", data)
    assert data == {"a": 1}


def test_a_value_that_cannot_be_stored_is_refused_by_name():
    with pytest.raises(ScriptError, match="handle holds a"):
        Sandbox(1.0).execute("handle = zip([1])", {})


def _two_branches(script_code: str) -> str:
    return b.doc(
        "escape",
        b.start(),
        b.par("split"),
        b.script("evil", script_code, name="越权脚本"),
        b.user("work", "正常办理", candidateGroups="amr"),
        b.par("join"),
        b.end(),
        *b.chain("start", "split"),
        b.flow("f1", "split", "evil"),
        b.flow("f2", "split", "work"),
        b.flow("f3", "evil", "join"),
        b.flow("f4", "work", "join"),
        b.flow("f5", "join", "end"),
    )


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("x = '{0.__class__}'.format(applicant)", "str.format is not allowed"),
        ("n = 0\nwhile True:\n    n += 1", "longer than the limit"),
        ("x = 'a' * (10 ** size)", "over the limit"),
    ],
    ids=["format-string", "endless-loop", "memory-bomb"],
)
def test_an_escape_at_run_time_fails_its_element_and_the_case_goes_on(gf, code, reason):
    gf.deploy(_two_branches(code))
    clerk = gf.clerk("li", "amr")
    instance = gf.start("escape", applicant="张三", size=10)
    detail = gf.detail(instance.id)
    assert detail["status"] == "error"
    incident = detail["incidents"][0]
    assert incident["element_id"] == "evil"
    assert "越权脚本" in incident["message"]
    assert reason in incident["message"]
    assert {e["element_id"]: e["failed"] for e in detail["elements"]}["evil"] == 1
    # the other branch is still worked on, and the engine keeps serving commands
    gf.complete(gf.task(instance.id, "work").id, clerk)
    assert gf.detail(instance.id)["elements"]
    other = gf.start("escape", applicant="李四", size=10)
    assert gf.detail(other.id)["status"] == "error"
