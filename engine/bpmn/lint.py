"""Model lint: every problem a BPMN file has, as `file:line: message`, before anything runs.

Checks XML safety and the BPMN 2.0 schema, then the model itself: start and end events,
unreachable elements, gateway conditions, timers, forms, candidate groups and lanes, scripts
and conditions (compiled by the same sandbox that runs them), parallel gateways inside loops
and chains longer than SpiffWorkflow's recursive parser can follow. Finally the files are
parsed as govflow will deploy them, which catches what is left.
"""

from __future__ import annotations

import difflib
import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from copy import deepcopy
from pathlib import Path
from typing import Any

import SpiffWorkflow.bpmn.parser as spiff_parser_pkg
from lxml import etree

from engine.bpmn import juel, timers
from engine.bpmn.compat import dead_ends
from engine.bpmn.parser import (
    BPMN_NS,
    CAMUNDA_NS,
    SourceFile,
    parse_sources,
    read_roots,
    resolve_department,
    split_list,
)
from engine.bpmn.problems import Problem
from engine.runtime.deadlines import DeadlineHelpers
from engine.runtime.forms import form_name
from engine.runtime.sandbox import Sandbox, ScriptError, compile_check
from engine.runtime.scripting import default_helpers
from engine.runtime.workcalendar import WeekdayCalendars

MAX_CHAIN = 300
PYTHON_FORMATS = {"python", "python3", "py", "text/x-python", "application/x-python"}

FLOW_NODES = {
    "startEvent",
    "endEvent",
    "intermediateCatchEvent",
    "intermediateThrowEvent",
    "boundaryEvent",
    "task",
    "userTask",
    "serviceTask",
    "scriptTask",
    "sendTask",
    "receiveTask",
    "manualTask",
    "businessRuleTask",
    "callActivity",
    "subProcess",
    "transaction",
    "adHocSubProcess",
    "exclusiveGateway",
    "parallelGateway",
    "inclusiveGateway",
    "eventBasedGateway",
    "complexGateway",
}
SUBPROCESSES = {"subProcess", "transaction", "adHocSubProcess"}
_NAMESPACES = {
    BPMN_NS: "bpmn",
    "http://www.omg.org/spec/BPMN/20100524/DI": "bpmndi",
    "http://www.omg.org/spec/DD/20100524/DC": "dc",
    "http://www.omg.org/spec/DD/20100524/DI": "di",
    CAMUNDA_NS: "camunda",
}


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def _bpmn(element: etree._Element, name: str) -> list[etree._Element]:
    return element.findall(f"{{{BPMN_NS}}}{name}")


def _camunda(element: etree._Element, name: str) -> str | None:
    return element.get(f"{{{CAMUNDA_NS}}}{name}")


def _label(element: etree._Element) -> str:
    name = element.get("name")
    text = f"{_local(element)} '{element.get('id')}'"
    return f"{text} ({name.strip()})" if name and name.strip() else text


def _is_expression(text: str) -> bool:
    stripped = text.strip()
    return stripped.startswith("${") and stripped.endswith("}")


def _unwrap(text: str) -> str:
    return juel.to_python(text.strip())


@functools.cache
def _bpmn_schema() -> etree.XMLSchema:
    path = Path(spiff_parser_pkg.__file__).parent / "schema" / "BPMN20.xsd"
    return etree.XMLSchema(etree.parse(str(path)))


def _shorten(message: str) -> str:
    for uri, prefix in _NAMESPACES.items():
        message = message.replace(f"{{{uri}}}", f"{prefix}:")
    return message


def xsd_problems(root: etree._Element, filename: str) -> list[Problem]:
    """BPMN 2.0 schema errors, with the line each is on."""
    tree = etree.ElementTree(_copy_for_schema(root))
    schema = _bpmn_schema()
    if schema.validate(tree):
        return []
    return [
        Problem(filename, error.line or None, f"schema: {_shorten(error.message)}")
        for error in schema.error_log
    ]


def _copy_for_schema(root: etree._Element) -> etree._Element:
    """bpmn-js writes correlation expressions as formalExpression where the schema wants
    messagePath; validate a copy with that renamed (deepcopy keeps the source lines)."""
    tag = f"{{{BPMN_NS}}}correlationPropertyRetrievalExpression"
    if next(root.iter(tag), None) is None:
        return root
    copy = deepcopy(root)
    for parent in copy.iter(tag):
        for expr in parent.findall(f"{{{BPMN_NS}}}formalExpression"):
            expr.tag = f"{{{BPMN_NS}}}messagePath"
    return copy


class _Linter:
    def __init__(
        self,
        filename: str,
        root: etree._Element,
        form_keys: set[str] | None,
        departments: Mapping[str, str] | None,
        sandbox: Sandbox,
    ) -> None:
        self.filename = filename
        self.root = root
        self.form_keys = form_keys
        self.departments = departments or {}
        self.sandbox = sandbox
        self.problems: list[Problem] = []
        self.definitions: dict[str, set[str]] = {
            kind: {e.get("id", "") for e in root.iter(f"{{{BPMN_NS}}}{kind}")}
            for kind in ("message", "error", "signal", "escalation")
        }

    def add(self, element: etree._Element | None, message: str, line: int | None = None) -> None:
        if line is None and element is not None:
            line = element.sourceline
        self.problems.append(Problem(self.filename, line, message))

    def run(self) -> list[Problem]:
        for process in _bpmn(self.root, "process"):
            if process.get("isExecutable", "true") != "true":
                continue
            lanes = self._lanes(process)
            self._scope(process, lanes)
        return self.problems

    # --- structure ---------------------------------------------------------------------------

    def _lanes(self, process: etree._Element) -> dict[str, str]:
        lanes: dict[str, str] = {}
        for lane in process.iter(f"{{{BPMN_NS}}}lane"):
            for ref in _bpmn(lane, "flowNodeRef"):
                if ref.text:
                    lanes[ref.text.strip()] = lane.get("name") or ""
        return lanes

    def _scope(self, scope: etree._Element, lanes: dict[str, str]) -> None:
        kind = _local(scope)
        nodes = {n.get("id"): n for n in scope if _local(n) in FLOW_NODES and n.get("id")}
        flows = [f for f in scope if _local(f) == "sequenceFlow"]
        outgoing: dict[str, list[etree._Element]] = defaultdict(list)
        for flow in flows:
            source, target = flow.get("sourceRef"), flow.get("targetRef")
            if source not in nodes:
                self.add(
                    flow, f"sequence flow '{flow.get('id')}' starts at unknown element {source!r}"
                )
                continue
            if target not in nodes:
                self.add(
                    flow, f"sequence flow '{flow.get('id')}' ends at unknown element {target!r}"
                )
                continue
            outgoing[source].append(flow)

        starts = [n for n in nodes.values() if _local(n) == "startEvent"]
        if kind != "adHocSubProcess":
            if not starts and kind not in ("subProcess", "transaction"):
                # a subprocess may start implicitly (engine.bpmn.compat adds the start)
                self.add(scope, f"{_label(scope)} has no start event")
            if not any(_local(n) == "endEvent" for n in nodes.values()) and not (
                (starts or kind != "process") and dead_ends(scope)
            ):
                # without an end event the flow ends where it stops (engine.bpmn.compat adds
                # the end event); a drawing with neither start nor end is reported
                self.add(scope, f"{_label(scope)} has no end event")

        successors = self._successors(nodes, outgoing)
        self._reachability(scope, nodes, starts, successors)
        self._loops(nodes, successors)
        self._alternatives_into_joins(nodes, flows)
        self._chains(starts, successors, nodes)
        for node in nodes.values():
            self._node(node, outgoing.get(node.get("id"), []), lanes)
            if _local(node) in SUBPROCESSES:
                self._scope(node, lanes)

    def _successors(
        self, nodes: dict[str, etree._Element], outgoing: dict[str, list[etree._Element]]
    ) -> dict[str, list[str]]:
        successors: dict[str, list[str]] = {node_id: [] for node_id in nodes}
        for node_id, node in nodes.items():
            if _local(node) == "boundaryEvent":
                attached = node.get("attachedToRef")
                if attached in successors:
                    successors[attached].append(node_id)
        for source, flows in outgoing.items():
            successors[source].extend(f.get("targetRef") for f in flows)
        throws: dict[str, list[str]] = defaultdict(list)
        catches: dict[str, list[str]] = defaultdict(list)
        for node_id, node in nodes.items():
            for link in _bpmn(node, "linkEventDefinition"):
                name = link.get("name") or node.get("name") or ""
                if _local(node) == "intermediateThrowEvent":
                    throws[name].append(node_id)
                elif _local(node) == "intermediateCatchEvent":
                    catches[name].append(node_id)
        for name, sources in throws.items():
            for source in sources:
                successors[source].extend(catches.get(name, []))
        return successors

    def _reachability(
        self,
        scope: etree._Element,
        nodes: dict[str, etree._Element],
        starts: list[etree._Element],
        successors: dict[str, list[str]],
    ) -> None:
        entry = [n.get("id") for n in starts]
        for node_id, node in nodes.items():
            if node.get("triggeredByEvent") == "true" or node.get("isForCompensation") == "true":
                entry.append(node_id)
        if _local(scope) == "adHocSubProcess":
            entry.extend(node_id for node_id in nodes if _local(nodes[node_id]) != "boundaryEvent")
        reached = set(entry)
        stack = list(entry)
        while stack:
            for nxt in successors.get(stack.pop(), []):
                if nxt not in reached:
                    reached.add(nxt)
                    stack.append(nxt)
        for node_id, node in nodes.items():
            if node_id in reached or not starts:
                continue
            if _local(node) == "boundaryEvent" and node.get("attachedToRef") not in reached:
                continue
            self.add(node, f"{_label(node)} cannot be reached from a start event")

    def _loops(self, nodes: dict[str, etree._Element], successors: dict[str, list[str]]) -> None:
        for component in _strongly_connected(successors):
            looping = len(component) > 1 or any(n in successors.get(n, []) for n in component)
            if not looping:
                continue
            for node_id in sorted(component):
                node = nodes[node_id]
                if _local(node) == "parallelGateway":
                    self.add(
                        node,
                        f"{_label(node)} sits inside a loop; SpiffWorkflow 3.2.0 cannot join "
                        "parallel branches reliably across loop iterations: move the parallel "
                        "part into a subprocess and loop the subprocess",
                    )

    def _alternatives_into_joins(
        self, nodes: dict[str, etree._Element], flows: list[etree._Element]
    ) -> None:
        """A parallel join fed directly by two alternatives of one exclusive split waits for
        a token that never comes: the case hangs with no error."""
        incoming: dict[str, list[etree._Element]] = defaultdict(list)
        for flow in flows:
            incoming[flow.get("targetRef") or ""].append(flow)

        def split_of(flow: etree._Element) -> str | None:
            node_id, seen = flow.get("sourceRef"), set()
            while node_id in nodes and node_id not in seen:
                seen.add(node_id)
                node = nodes[node_id]
                if _local(node) in ("exclusiveGateway", "eventBasedGateway"):
                    return node_id
                if _local(node).endswith("Gateway") or len(incoming[node_id]) != 1:
                    return None
                node_id = incoming[node_id][0].get("sourceRef")
            return None

        for join_id, node in nodes.items():
            if _local(node) != "parallelGateway" or len(incoming[join_id]) < 2:
                continue
            origins: dict[str, list[str]] = defaultdict(list)
            for flow in incoming[join_id]:
                split = split_of(flow)
                if split is not None:
                    origins[split].append(flow.get("id") or "?")
            for split, flow_ids in sorted(origins.items()):
                if len(flow_ids) > 1:
                    self.add(
                        node,
                        f"{_label(node)} joins flows {', '.join(flow_ids)}, which are "
                        f"alternatives of {_label(nodes[split])}: only one of them ever carries "
                        "a token, so the join would wait for ever. Merge them with an exclusive "
                        "gateway before the parallel join",
                    )

    def _chains(
        self,
        starts: list[etree._Element],
        successors: dict[str, list[str]],
        nodes: dict[str, etree._Element],
    ) -> None:
        visited: set[str] = set()
        for start in starts:
            start_id = start.get("id")
            if start_id in visited:
                continue
            visited.add(start_id)
            stack: list[tuple[str, int]] = [(start_id, 0)]
            depth = 1
            while stack:
                node_id, index = stack[-1]
                following = successors.get(node_id, [])
                if index >= len(following):
                    stack.pop()
                    continue
                stack[-1] = (node_id, index + 1)
                nxt = following[index]
                if nxt in visited:
                    continue
                visited.add(nxt)
                stack.append((nxt, 0))
                depth = len(stack)
                if depth == MAX_CHAIN + 1:
                    node = nodes[nxt]
                    self.add(
                        node,
                        f"{_label(node)} is element {depth} of one unbroken chain from "
                        f"{_label(start)}; SpiffWorkflow's parser can follow at most {MAX_CHAIN}: "
                        "split the flow with a subprocess or call activity",
                    )
                    return

    # --- single elements ---------------------------------------------------------------------

    def _node(
        self, node: etree._Element, outgoing: list[etree._Element], lanes: dict[str, str]
    ) -> None:
        kind = _local(node)
        if kind in ("exclusiveGateway", "inclusiveGateway"):
            self._gateway(node, outgoing)
        for flow in outgoing:
            self._condition(flow)
        for timer in _bpmn(node, "timerEventDefinition"):
            self._timer(node, timer)
        self._references(node)
        if kind == "userTask":
            self._user_task(node, lanes)
        elif kind == "scriptTask":
            self._script_task(node)
        elif kind == "serviceTask":
            self._service_task(node)
        elif kind == "callActivity" and not (node.get("calledElement") or "").strip():
            self.add(node, f"{_label(node)} has no calledElement")
        if kind == "startEvent":
            self._form_key(node, _camunda(node, "formKey"))

    def _gateway(self, node: etree._Element, outgoing: list[etree._Element]) -> None:
        default = node.get("default")
        ids = {f.get("id") for f in outgoing}
        if default and default not in ids:
            self.add(
                node, f"{_label(node)} names default flow {default!r}, which does not leave it"
            )
        if len(outgoing) < 2:
            return
        for flow in outgoing:
            if flow.get("id") == default:
                continue
            condition = _bpmn(flow, "conditionExpression")
            if not condition or not (condition[0].text or "").strip():
                self.add(
                    flow,
                    f"sequence flow '{flow.get('id')}' leaving {_label(node)} has no condition "
                    "and is not the gateway's default flow",
                )

    def _condition(self, flow: etree._Element) -> None:
        for expression in _bpmn(flow, "conditionExpression"):
            language = (expression.get("language") or "").strip().lower()
            if language and language not in PYTHON_FORMATS:
                self.add(
                    expression,
                    f"condition of sequence flow '{flow.get('id')}' is in {language!r}; "
                    "conditions are Python",
                )
                continue
            text = (expression.text or "").strip()
            if not text:
                continue
            try:
                compile_check(_unwrap(text), "eval")
            except ScriptError as exc:
                self.add(
                    expression,
                    f"condition of sequence flow '{flow.get('id')}' is not valid: {exc.reason}",
                )

    def _timer(self, node: etree._Element, timer: etree._Element) -> None:
        parts = [(k, _bpmn(timer, k)) for k in timers.KINDS]
        present = [(k, found[0]) for k, found in parts if found]
        if not present:
            self.add(timer, f"timer of {_label(node)} has no timeDate, timeDuration or timeCycle")
            return
        kind, element = present[0]
        text = (element.text or "").strip()
        if not text:
            self.add(element, f"{kind} of {_label(node)} is empty")
            return
        problem = timers.literal_problem(text, kind)
        if problem:
            self.add(element, f"{problem} ({_label(node)})")
            return
        if timers.is_literal(text):
            return
        parent = node.getparent()
        if (
            timers.is_quartz_cron(text)
            and _local(node) == "startEvent"
            and parent is not None
            and _local(parent) == "process"
        ):
            # The scheduler fires a process's start timer at each time of the cron, regular
            # or not; other timers need a fixed period (checked below by cron_cycle).
            try:
                timers.QuartzCron(text)
            except ValueError as exc:
                self.add(element, f"{kind} of {_label(node)}: {exc}")
            return
        expression = timers.to_python_expression(text) or ""
        try:
            compile_check(expression, "eval")
            value = self.sandbox.evaluate(expression, {})
        except ScriptError as exc:
            if "NameError" in exc.reason:
                return
            self.add(element, f"{kind} of {_label(node)} cannot be evaluated: {exc.reason}")
            return
        if not isinstance(value, str) or not timers.is_literal(value):
            self.add(
                element,
                f"{kind} of {_label(node)} evaluates to {value!r}, which is not ISO 8601 text",
            )
            return
        problem = timers.literal_problem(value, kind)
        if problem:
            self.add(element, f"{problem} ({_label(node)})")

    def _references(self, node: etree._Element) -> None:
        for kind, attribute in (
            ("message", "messageRef"),
            ("error", "errorRef"),
            ("signal", "signalRef"),
            ("escalation", "escalationRef"),
        ):
            for definition in _bpmn(node, f"{kind}EventDefinition"):
                ref = definition.get(attribute)
                if (
                    ref
                    and kind in ("message", "signal")  # an unknown error/escalation is its code
                    and ref.split(":")[-1] not in self.definitions[kind]
                    and ref not in self.definitions[kind]
                ):
                    self.add(
                        definition, f"{_label(node)} refers to {kind} {ref!r}, which is not defined"
                    )

    def _form_key(self, node: etree._Element, raw: str | None) -> None:
        if raw is None or self.form_keys is None or _is_expression(raw):
            return
        key = form_name(raw)
        if key not in self.form_keys:
            hint = difflib.get_close_matches(key, sorted(self.form_keys), n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            self.add(
                node,
                f"{_label(node)} uses form {raw!r} but there is no "
                f"forms/{key}.schema.json{suggestion}",
            )

    def _user_task(self, node: etree._Element, lanes: dict[str, str]) -> None:
        self._form_key(node, _camunda(node, "formKey"))
        groups = split_list(_camunda(node, "candidateGroups"))
        users = split_list(_camunda(node, "candidateUsers"))
        assignee = _camunda(node, "assignee")
        owners = node.findall(f"{{{BPMN_NS}}}potentialOwner")
        for group in groups:
            if _is_expression(group) or not self.departments:
                continue
            if group not in self.departments:
                hint = difflib.get_close_matches(group, sorted(self.departments), n=1)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
                self.add(
                    node,
                    f"candidate group {group!r} of {_label(node)} is not a department "
                    f"code{suggestion}",
                )
        if groups or users or assignee or owners:
            return
        lane = lanes.get(node.get("id") or "")
        if lane is None:
            self.add(
                node,
                f"{_label(node)} has no candidate group, candidate user or assignee and is in no "
                "lane, so nobody can claim it",
            )
        elif self.departments and resolve_department(lane, self.departments) is None:
            self.add(
                node,
                f"{_label(node)} is in lane {lane!r}, which names no department; name the lane "
                "after a department code (e.g. 'amr' or '市场监督管理局 (amr)') or set "
                "camunda:candidateGroups",
            )

    def _script_task(self, node: etree._Element) -> None:
        script_format = (node.get("scriptFormat") or "").strip().lower()
        if script_format and script_format not in PYTHON_FORMATS:
            self.add(node, f"{_label(node)} is written in {script_format!r}; scripts are Python")
            return
        scripts = _bpmn(node, "script")
        text = scripts[0].text if scripts else None
        if not text or not text.strip():
            self.add(node, f"{_label(node)} has no script")
            return
        try:
            compile_check(text, "exec")
        except ScriptError as exc:
            line = scripts[0].sourceline
            if line is not None and exc.line:
                line += exc.line - 1
            self.add(scripts[0], f"script of {_label(node)}: {exc.reason}", line=line)

    def _service_task(self, node: etree._Element) -> None:
        kind = _camunda(node, "type")
        topic = _camunda(node, "topic")
        if kind == "external" and not (topic or "").strip():
            self.add(node, f"{_label(node)} is external but has no camunda:topic")
        elif (
            kind is None
            and not any(
                _camunda(node, attr)
                for attr in ("topic", "class", "expression", "delegateExpression")
            )
            and node.get("implementation") in (None, "##WebService", "##unspecified")
        ):
            self.add(
                node,
                f'{_label(node)} has no implementation: set camunda:type="external" and '
                "camunda:topic so a worker picks it up",
            )


def _strongly_connected(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm without recursion (models can be long)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, child_index = work[-1]
            if child_index == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            children = graph.get(node, [])
            if child_index < len(children):
                work[-1] = (node, child_index + 1)
                child = children[child_index]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                result.append(component)
    return result


def lint_sources(
    sources: Iterable[SourceFile],
    form_keys: set[str] | None = None,
    departments: Mapping[str, str] | None = None,
    max_bytes: int | None = None,
    script_timeout_s: float = 1.0,
) -> list[Problem]:
    """Every problem in the given BPMN files; an empty list means they deploy cleanly."""
    sources = list(sources)
    roots, problems = read_roots(sources, max_bytes)
    helpers = {**default_helpers(), **DeadlineHelpers(WeekdayCalendars()).namespace()}  # type: ignore[arg-type]
    sandbox = Sandbox(script_timeout_s, helpers)
    troubled: set[str] = {p.file for p in problems}
    for name, root in roots.items():
        found = xsd_problems(root, name)
        found += _Linter(name, root, form_keys, departments, sandbox).run()
        if found:
            troubled.add(name)
        problems.extend(found)
    parseable = [s for s in sources if s.name not in troubled]
    if parseable:
        bundle = parse_sources(parseable, departments, max_bytes)
        problems.extend(bundle.problems)
    return sorted(set(problems), key=lambda p: (p.file, p.line or 0, p.message))


def lint_summary(problems: list[Problem]) -> dict[str, Any]:
    return {"problems": [p.to_dict() for p in problems], "count": len(problems)}
