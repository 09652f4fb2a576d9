"""The OMG MIWG suite: does every file load, as a process govflow can run or as a diagram it
can draw, or is it refused with a message that says why? Counts per tool and per reference
model.

    .venv/bin/python -m conformance.miwg [--json conformance/results/miwg.json]

A file loads as *executable* when govflow's parser turns its processes into specs (what
deploy does). A file whose processes are not declared executable (isExecutable absent or
false: an interchange export, not a model meant to run) loads as *viewable* when its diagram
is drawn; the reason it could not run is kept as a note. Anything else is *refused* with the
message deploy would give. A traceback is a harness failure, reported as *crashed*.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from lxml import etree

from conformance import CONFORMANCE
from engine.bpmn.diagram import read_diagram
from engine.bpmn.parser import BPMN_NS, SourceFile, parse_sources
from engine.bpmn.safe_xml import UnsafeXml, parse_xml_bytes

CORPUS = CONFORMANCE / "miwg"
LOADED = ("executable", "viewable")


@dataclass
class Outcome:
    file: str
    tool: str
    reference_model: str
    status: str
    processes: int
    message: str

    @property
    def loaded(self) -> bool:
        return self.status in LOADED


def _declared_executable(data: bytes, name: str) -> bool:
    try:
        root = parse_xml_bytes(data, name)
    except UnsafeXml:
        return False
    return any(p.get("isExecutable") == "true" for p in root.iter(f"{{{BPMN_NS}}}process"))


def classify(path: Path, name: str, tool: str = "", reference: str = "") -> Outcome:
    """What govflow makes of one file."""
    data = path.read_bytes()
    try:
        bundle = parse_sources([SourceFile(name, data)])
        problems = [p for p in bundle.problems if "no executable process" not in p.message]
        if bundle.processes and not problems:
            return Outcome(name, tool, reference, "executable", len(bundle.processes), "")
        reason = problems[0].format() if problems else ""
        if _declared_executable(data, name):
            return Outcome(name, tool, reference, "refused", 0, reason or "not executable")
        try:
            diagram = read_diagram(data, name)
        except Exception as exc:
            return Outcome(name, tool, reference, "refused", 0, str(exc))
        note = f"{len(diagram.shapes)} shapes drawn"
        if reason:
            note += f"; would not run: {reason}"
        return Outcome(name, tool, reference, "viewable", 0, note)
    except Exception as exc:  # a crash is the harness's finding, never hidden
        return Outcome(name, tool, reference, "crashed", 0, f"{type(exc).__name__}: {exc}")


def manifest(corpus: Path = CORPUS) -> list[dict[str, str]]:
    with (corpus / "MANIFEST.tsv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def run(corpus: Path = CORPUS, only: str | None = None) -> list[Outcome]:
    outcomes = []
    for row in manifest(corpus):
        if only and only not in row["file"]:
            continue
        outcomes.append(
            classify(
                corpus / row["file"], row["file"], row["source_tool"], row["reference_model_id"]
            )
        )
    return outcomes


def summary(outcomes: list[Outcome]) -> dict[str, object]:
    per_tool: dict[str, Counter[str]] = defaultdict(Counter)
    per_model: dict[str, Counter[str]] = defaultdict(Counter)
    for outcome in outcomes:
        per_tool[outcome.tool][outcome.status] += 1
        per_model[outcome.reference_model][outcome.status] += 1
    totals = Counter(o.status for o in outcomes)
    return {
        "files": len(outcomes),
        "loaded": sum(1 for o in outcomes if o.loaded),
        "totals": dict(totals),
        "per_tool": {k: dict(v) for k, v in sorted(per_tool.items())},
        "per_reference_model": {k: dict(v) for k, v in sorted(per_model.items())},
        "refused": [asdict(o) for o in outcomes if not o.loaded],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=Path("conformance/results/miwg.json"))
    parser.add_argument("--only", help="only files whose path contains this")
    args = parser.parse_args(argv)
    outcomes = run(only=args.only)
    result = summary(outcomes)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"{result['loaded']} of {result['files']} MIWG files load: {result['totals']}")
    for tool, counts in result["per_tool"].items():  # type: ignore[union-attr]
        print(f"  {tool:45} {counts}")
    crashed = [o for o in outcomes if o.status == "crashed"]
    for outcome in crashed:
        print(f"CRASHED {outcome.file}: {outcome.message}", file=sys.stderr)
    return 1 if crashed else 0


if __name__ == "__main__":
    etree.set_default_parser(etree.XMLParser(resolve_entities=False, no_network=True))
    sys.exit(main())
