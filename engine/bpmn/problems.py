"""A problem found in a BPMN or form file, located by file and line."""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import BpmnProblems


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int | None
    message: str

    def format(self) -> str:
        return f"{self.file}:{self.line if self.line is not None else 0}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "message": self.message}


def raise_problems(problems: list[Problem], summary: str | None = None) -> None:
    """Raise BpmnProblems carrying every problem, if there are any."""
    if not problems:
        return
    problems = sorted(set(problems), key=lambda p: (p.file, p.line or 0, p.message))
    head = summary or problems[0].format()
    if len(problems) > 1 and summary is None:
        head = f"{head} (and {len(problems) - 1} more)"
    elif summary is not None and len(problems) == 1:
        head = f"{summary}: {problems[0].format()}"
    raise BpmnProblems(head, [p.to_dict() for p in problems])
