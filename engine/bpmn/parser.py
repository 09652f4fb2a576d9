"""SpiffWorkflow parser setup for govflow: Camunda Modeler files and plain BPMN alike.

`parse_sources` turns a set of BPMN files into process specs, and every way that can fail
into a `Problem` with file and line, never a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lxml import etree
from SpiffWorkflow.bpmn.parser.event_parsers import (
    CANCEL_EVENT_XPATH,
    ERROR_EVENT_XPATH,
    ESCALATION_EVENT_XPATH,
    MESSAGE_EVENT_XPATH,
    SIGNAL_EVENT_XPATH,
    TERMINATION_EVENT_XPATH,
    EventDefinitionParser,
)
from SpiffWorkflow.bpmn.parser.util import full_tag
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.defaults import (
    BoundaryEvent,
    CallActivity,
    EndEvent,
    IntermediateCatchEvent,
    IntermediateThrowEvent,
    StartEvent,
)
from SpiffWorkflow.camunda.parser.CamundaParser import CamundaParser
from SpiffWorkflow.camunda.parser.event_parsers import (
    CamundaBoundaryEventParser,
    CamundaEndEventParser,
    CamundaIntermediateCatchEventParser,
    CamundaIntermediateThrowEventParser,
    CamundaStartEventParser,
)
from SpiffWorkflow.camunda.parser.task_spec import CAMUNDA_MODEL_NS, CamundaTaskParser
from SpiffWorkflow.camunda.parser.task_spec import (
    BusinessRuleTaskParser as CamundaBusinessRuleTaskParser,
)
from SpiffWorkflow.camunda.parser.task_spec import CallActivityParser as CamundaCallActivityParser
from SpiffWorkflow.camunda.specs.business_rule_task import BusinessRuleTask

from engine.bpmn import timers
from engine.bpmn.compat import add_data_stores, normalize_references, with_standard_loops
from engine.bpmn.problems import Problem
from engine.bpmn.safe_xml import UnsafeXml, parse_xml_bytes
from engine.bpmn.specs import (
    SERVICE_EXPRESSION,
    SERVICE_RESULT,
    GovflowServiceTask,
    GovflowUserTask,
    PassThroughManualTask,
    PassThroughTask,
)

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA_NS = CAMUNDA_MODEL_NS

START_FORM = "govflow:startForm"
EVENT_SUBPROCESS_START = "govflow:eventSubprocessStart"
CALL_IN = "govflow:in"
CODE_VARIABLE = "govflow:codeVariable"
MESSAGE_EXPRESSION = "govflow:messageExpression"
TERMINATE_ALL = "govflow:terminateAll"
PAYLOAD_EXPRESSION = "govflow:payloadExpression"
PAYLOAD_VARIABLE = "govflow:payloadVariable"
MESSAGE_RESULT = "govflow:messageResultVariable"
CALL_OUT = "govflow:out"
_TRAILING_CODE = re.compile(r"[\(（\[【]\s*([A-Za-z][\w-]*)\s*[\)）\]】]\s*$")
_OWNER_TERM = re.compile(r"^(user|group)\((.+)\)$")


def resolve_department(lane_name: str | None, departments: Mapping[str, str]) -> str | None:
    """The department code a lane stands for: its code, its name, or `名称 (code)`."""
    if not lane_name:
        return None
    name = lane_name.strip()
    by_lower = {code.lower(): code for code in departments}
    if name.lower() in by_lower:
        return by_lower[name.lower()]
    for code, dept_name in departments.items():
        if dept_name and dept_name.strip() == name:
            return code
    match = _TRAILING_CODE.search(name)
    if match and match.group(1).lower() in by_lower:
        return by_lower[match.group(1).lower()]
    return None


def split_list(raw: str | None) -> list[str]:
    """Split a comma-separated attribute, keeping `${...}` expressions whole."""
    if raw is None:
        return []
    items: list[str] = []
    depth = 0
    current = ""
    for char in raw:
        if char == "{":
            depth += 1
        elif char == "}":
            depth = max(0, depth - 1)
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    items.append(current)
    return [item.strip() for item in items if item.strip()]


class EventDefinitionsMixin:
    """Event definitions the way govflow runs them.

    Timer texts written modeler-style become Python expressions (see engine.bpmn.timers).
    Messages use the standard BPMN definition, whose payload (a dict) is merged into the case
    data of the catching task, as Camunda does when a message is correlated with variables;
    SpiffWorkflow's Camunda variant would file it under `<task>_Response` instead.
    """

    def parse_timer_event(self, event: Any) -> Any:
        definition = super().parse_timer_event(event)  # type: ignore[misc]
        definition.expression = timers.to_python_expression(definition.expression)
        return definition

    def parse_message_event(self, message_event: Any) -> Any:
        return EventDefinitionParser.parse_message_event(self, message_event)  # type: ignore[arg-type]

    def parse_extensions(self, node: Any = None) -> dict[str, Any]:
        """Camunda's `camunda:escalationCodeVariable` / `camunda:errorCodeVariable`: the
        variable that receives the code of the escalation or error caught; and the payload of a
        thrown message, `camunda:expression` (with `camunda:resultVariable`)."""
        extensions: dict[str, Any] = super().parse_extensions(node)  # type: ignore[misc]
        if node is not None:
            return extensions
        for definition in self.xpath("./bpmn:messageEventDefinition"):  # type: ignore[attr-defined]
            expression = definition.get(f"{{{CAMUNDA_NS}}}expression")
            if expression and expression.strip():
                extensions[MESSAGE_EXPRESSION] = expression.strip()
                result = definition.get(f"{{{CAMUNDA_NS}}}resultVariable")
                if result and result.strip():
                    extensions[MESSAGE_RESULT] = result.strip()
        for kind, attribute in (
            ("escalationEventDefinition", "escalationCodeVariable"),
            ("errorEventDefinition", "errorCodeVariable"),
        ):
            for definition in self.xpath(f"./bpmn:{kind}"):  # type: ignore[attr-defined]
                variable = definition.get(f"{{{CAMUNDA_NS}}}{attribute}")
                if variable and variable.strip():
                    extensions[CODE_VARIABLE] = variable.strip()
        spiff_payload_extensions(self.node, extensions)  # type: ignore[attr-defined]
        return extensions


SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
_ITEM_REFERENCES = (
    ("errorEventDefinition", "errorRef", "error"),
    ("signalEventDefinition", "signalRef", "signal"),
    ("escalationEventDefinition", "escalationRef", "escalation"),
)


def spiff_payload_extensions(node: Any, extensions: dict[str, Any]) -> None:
    """SpiffWorkflow's `spiffworkflow:payloadExpression` / `variableName` on a bpmn:error,
    signal or escalation: what a throw sends, and the variable a catch puts it in. Copied
    into the event's extensions (engine.runtime.spiff_patches acts on them)."""
    root = node.getroottree().getroot()
    for kind, attribute, element in _ITEM_REFERENCES:
        for definition in node.findall(f"{{{BPMN_NS}}}{kind}"):
            reference = definition.get(attribute)
            if not reference:
                continue
            for target in root.iter(f"{{{BPMN_NS}}}{element}"):
                if target.get("id") != reference:
                    continue
                for tag, key in (
                    ("payloadExpression", PAYLOAD_EXPRESSION),
                    ("variableName", PAYLOAD_VARIABLE),
                ):
                    found = target.find(f"{{{BPMN_NS}}}extensionElements/{{{SPIFF_NS}}}{tag}")
                    if found is not None and (found.text or "").strip():
                        extensions[key] = found.text.strip()


class StartEventParser(EventDefinitionsMixin, CamundaStartEventParser):
    """Keeps the start form (`camunda:formKey`) so a case's start data can be validated, and
    marks the start event of an event subprocess as interrupting or not (SpiffWorkflow 3.2.0
    ignores `isInterrupting`; engine.runtime.spiff_patches acts on the mark)."""

    def parse_extensions(self, node: Any = None) -> dict[str, Any]:
        extensions = super().parse_extensions(node)
        form_key = self.attribute("formKey", "camunda")
        if form_key:
            extensions[START_FORM] = form_key
        parent = self.node.getparent()
        if (
            parent is not None
            and parent.tag == f"{{{BPMN_NS}}}subProcess"
            and parent.get("triggeredByEvent") == "true"
        ):
            interrupting = self.node.get("isInterrupting", "true").strip().lower() != "false"
            extensions[EVENT_SUBPROCESS_START] = (
                "interrupting" if interrupting else "non-interrupting"
            )
        return extensions


class IntermediateCatchEventParser(EventDefinitionsMixin, CamundaIntermediateCatchEventParser):
    pass


class IntermediateThrowEventParser(EventDefinitionsMixin, CamundaIntermediateThrowEventParser):
    pass


class BoundaryEventParser(EventDefinitionsMixin, CamundaBoundaryEventParser):
    pass


class EndEventParser(CamundaEndEventParser):
    """End events, signal end events included (SpiffWorkflow 3.2.0 reads a signal end event as
    a plain one and never sends the signal); marks Flowable's / Activiti's
    `terminateAll="true"` on a terminate end event: the whole case ends, not only the
    (sub)process the event is in."""

    def create_task(self) -> Any:
        event_definition = self.get_event_definition(
            [
                MESSAGE_EVENT_XPATH,
                CANCEL_EVENT_XPATH,
                ERROR_EVENT_XPATH,
                ESCALATION_EVENT_XPATH,
                TERMINATION_EVENT_XPATH,
                SIGNAL_EVENT_XPATH,
            ]
        )
        task = self._create_task(event_definition)
        task.connect(self.spec.end)
        return task

    def parse_extensions(self, node: Any = None) -> dict[str, Any]:
        extensions: dict[str, Any] = super().parse_extensions(node)
        if node is not None:
            return extensions
        for definition in self.xpath("./bpmn:terminateEventDefinition"):
            for namespace in ("http://flowable.org/bpmn", "http://activiti.org/bpmn"):
                if (definition.get(f"{{{namespace}}}terminateAll") or "").strip() == "true":
                    extensions[TERMINATE_ALL] = True
        spiff_payload_extensions(self.node, extensions)
        return extensions


class UserTaskParser(CamundaTaskParser):
    """User tasks with Camunda assignment attributes, BPMN potential owners, or a lane."""

    def create_task(self) -> GovflowUserTask:
        return self.spec_class(
            self.spec, self.bpmn_id, assignment=self.parse_assignment(), **self.bpmn_attributes
        )

    def parse_assignment(self) -> dict[str, Any]:
        groups = split_list(self.attribute("candidateGroups", "camunda"))
        users = split_list(self.attribute("candidateUsers", "camunda"))
        for owner in self.xpath(
            "./bpmn:potentialOwner/bpmn:resourceAssignmentExpression/bpmn:formalExpression"
        ):
            for term in split_list(owner.text):
                match = _OWNER_TERM.match(term)
                if match and match.group(1) == "user":
                    users.append(match.group(2).strip())
                elif match:
                    groups.append(match.group(2).strip())
                else:
                    groups.append(term)
        lane_department = resolve_department(self.lane, self.process_parser.parser.departments)
        if not groups and lane_department:
            groups = [lane_department]
        return {
            "candidate_groups": groups,
            "candidate_users": users,
            "assignee": self.attribute("assignee", "camunda"),
            "form_key": self.attribute("formKey", "camunda"),
            "due_date": self.attribute("dueDate", "camunda"),
            "follow_up_date": self.attribute("followUpDate", "camunda"),
            "priority": self.attribute("priority", "camunda"),
            "lane": self.lane,
        }


class ServiceTaskParser(CamundaTaskParser):
    """Service tasks with an external topic become jobs for workers; one with
    `camunda:expression` (and optionally `camunda:resultVariable`) evaluates the expression
    in the sandbox and moves on, as Camunda does."""

    def create_task(self) -> GovflowServiceTask:
        topic = self.attribute("topic", "camunda")
        return self.spec_class(
            self.spec, self.bpmn_id, topic=topic.strip() if topic else None, **self.bpmn_attributes
        )

    def parse_extensions(self, node: Any = None) -> dict[str, Any]:
        extensions = super().parse_extensions(node)
        expression = self.attribute("expression", "camunda")
        if (
            node is None
            and expression
            and expression.strip()
            and not self.attribute("topic", "camunda")
        ):
            extensions[SERVICE_EXPRESSION] = expression.strip()
            result = self.attribute("resultVariable", "camunda")
            if result and result.strip():
                extensions[SERVICE_RESULT] = result.strip()
        return extensions


class CallActivityParser(CamundaCallActivityParser):
    """Call activities with Camunda's variable mappings (`camunda:in` / `camunda:out`: `source`,
    `sourceExpression`, `target`, `variables="all"`), kept in the spec's extensions for
    engine.runtime.spiff_patches."""

    def parse_extensions(self, node: Any = None) -> dict[str, Any]:
        extensions = super().parse_extensions(node)
        if node is not None:
            return extensions
        for direction, key in (("in", CALL_IN), ("out", CALL_OUT)):
            mappings = [
                {
                    name: mapping.get(name)
                    for name in ("source", "sourceExpression", "target", "variables")
                    if mapping.get(name) is not None
                }
                for mapping in self.xpath(f"./bpmn:extensionElements/camunda:{direction}")
            ]
            if mappings:
                extensions[key] = mappings
        return extensions


class BusinessRuleTaskParser(CamundaBusinessRuleTaskParser):
    """A business rule task without `camunda:decisionRef` has no decision to evaluate: it
    passes like `bpmn:task` (modelers draw them before the DMN exists)."""

    @staticmethod
    def get_decision_ref(node: Any) -> str | None:
        return node.get(f"{{{CAMUNDA_NS}}}decisionRef")

    def create_task(self) -> Any:
        if self.node.get(f"{{{CAMUNDA_NS}}}decisionRef") is None:
            return PassThroughTask(self.spec, self.bpmn_id, **self.bpmn_attributes)
        return super().create_task()


class GovflowParser(CamundaParser):
    """CamundaParser with govflow's user tasks, pass-through tasks, timer texts, and the
    work-arounds of engine.bpmn.compat."""

    OVERRIDE_PARSER_CLASSES: ClassVar[dict[str, tuple[Any, Any]]] = {
        tag: (with_standard_loops(parser_class), spec_class)
        for tag, (parser_class, spec_class) in {
            **CamundaParser.OVERRIDE_PARSER_CLASSES,
            full_tag("userTask"): (UserTaskParser, GovflowUserTask),
            full_tag("serviceTask"): (ServiceTaskParser, GovflowServiceTask),
            full_tag("task"): (CamundaTaskParser, PassThroughTask),
            full_tag("manualTask"): (CamundaTaskParser, PassThroughManualTask),
            full_tag("businessRuleTask"): (BusinessRuleTaskParser, BusinessRuleTask),
            full_tag("callActivity"): (CallActivityParser, CallActivity),
            full_tag("startEvent"): (StartEventParser, StartEvent),
            full_tag("endEvent"): (EndEventParser, EndEvent),
            full_tag("intermediateCatchEvent"): (
                IntermediateCatchEventParser,
                IntermediateCatchEvent,
            ),
            full_tag("intermediateThrowEvent"): (
                IntermediateThrowEventParser,
                IntermediateThrowEvent,
            ),
            full_tag("boundaryEvent"): (BoundaryEventParser, BoundaryEvent),
        }.items()
    }

    def __init__(self, departments: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.departments: Mapping[str, str] = departments or {}

    def _add_data_stores(self, bpmn: Any) -> None:
        add_data_stores(self, bpmn)

    def _find_dependencies(self, process: Any) -> None:
        super()._find_dependencies(process)
        self.dmn_dependencies.discard(None)


@dataclass
class SourceFile:
    """One uploaded or read file: its name (as the user knows it) and its bytes."""

    name: str
    data: bytes


@dataclass
class ParsedProcess:
    process_id: str
    name: str
    filename: str
    spec: BpmnProcessSpec
    subprocess_specs: dict[str, BpmnProcessSpec]
    files: list[str]


@dataclass
class ParsedBundle:
    processes: dict[str, ParsedProcess] = field(default_factory=dict)
    roots: dict[str, etree._Element] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def element_lines(root: etree._Element) -> dict[str, int]:
    """Map every element id in a document to the line it starts on."""
    lines: dict[str, int] = {}
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue
        node_id = node.get("id")
        if node_id and node_id not in lines and node.sourceline is not None:
            lines[node_id] = node.sourceline
    return lines


def read_roots(
    sources: list[SourceFile], max_bytes: int | None = None
) -> tuple[dict[str, etree._Element], list[Problem]]:
    """Safely parse each file; a file that is not BPMN becomes a problem, not an exception."""
    roots: dict[str, etree._Element] = {}
    problems: list[Problem] = []
    for source in sources:
        try:
            root = parse_xml_bytes(source.data, source.name, max_bytes=max_bytes)
        except UnsafeXml as exc:
            problems.append(exc.problem)
            continue
        if root.tag != f"{{{BPMN_NS}}}definitions":
            problems.append(
                Problem(
                    source.name,
                    root.sourceline,
                    f"not a BPMN 2.0 file: the root element is {etree.QName(root).localname!r} "
                    f"in namespace {etree.QName(root).namespace!r}, expected bpmn:definitions",
                )
            )
            continue
        roots[source.name] = root
    return roots, problems


def validation_problem(
    exc: ValidationException, lines: Mapping[str, Mapping[str, int]], default_file: str
) -> Problem:
    """A Spiff ValidationException as a located, readable problem."""
    file_name = exc.file_name or default_file
    line = lines.get(file_name, {}).get(exc.id) if exc.id else None
    if line is None and isinstance(exc.line_number, int):
        line = exc.line_number
    message = str(exc.args[0]) if exc.args else str(exc)
    if "RecursionError" in message:
        message = (
            "the flow is too long for the parser to follow in one chain; "
            "split it with a subprocess or call activity"
        )
    where = f"{exc.tag} {exc.id!r}: " if exc.id else ""
    return Problem(file_name, line, f"{where}{message}")


def parse_sources(
    sources: list[SourceFile],
    departments: Mapping[str, str] | None = None,
    max_bytes: int | None = None,
) -> ParsedBundle:
    """Parse BPMN files together (so call activities may cross files) into process specs."""
    bundle = ParsedBundle()
    roots, problems = read_roots(sources, max_bytes)
    bundle.roots = roots
    bundle.problems.extend(problems)
    lines = {name: element_lines(root) for name, root in roots.items()}
    parser = GovflowParser(departments)
    for name, root in list(roots.items()):
        reference_problems = normalize_references(root, name)
        if reference_problems:
            bundle.problems.extend(reference_problems)
            continue
        processes = root.findall(f"{{{BPMN_NS}}}process")
        if processes and all(p.get("isExecutable") == "false" for p in processes):
            continue  # nothing to run: reported below, never handed to the engine's parser
        try:
            parser.add_bpmn_xml(root.getroottree(), filename=name)
        except ValidationException as exc:
            bundle.problems.append(validation_problem(exc, lines, name))
        except Exception as exc:  # Spiff raises bare errors for some malformed references
            bundle.problems.append(Problem(name, None, f"cannot read the model: {exc}"))
    executable = [pid for pid, pp in parser.process_parsers.items() if _is_top_level(pp, roots)]
    for name, root in roots.items():
        processes = root.findall(f"{{{BPMN_NS}}}process")
        if processes and not any(p.get("isExecutable", "true") == "true" for p in processes):
            bundle.problems.append(
                Problem(
                    name,
                    processes[0].sourceline,
                    'no executable process in this file: set isExecutable="true" on the process '
                    "(in Camunda Modeler: the 'Executable' checkbox)",
                )
            )
    for process_id in executable:
        process_parser = parser.process_parsers[process_id]
        filename = process_parser.filename or ""
        try:
            spec = parser.get_spec(process_id)
            subprocess_specs = parser.get_subprocess_specs(process_id)
        except ValidationException as exc:
            bundle.problems.append(validation_problem(exc, lines, filename))
            continue
        except RecursionError:
            bundle.problems.append(
                Problem(
                    filename,
                    lines.get(filename, {}).get(process_id),
                    f"process {process_id!r}: the flow is too long for the parser to follow in "
                    "one chain; split it with a subprocess or call activity",
                )
            )
            continue
        except Exception as exc:
            bundle.problems.append(
                Problem(
                    filename,
                    lines.get(filename, {}).get(process_id),
                    f"process {process_id!r} cannot be read: {exc}",
                )
            )
            continue
        files = sorted(
            {filename}
            | {
                parser.process_parsers[sp].filename or filename
                for sp in subprocess_specs
                if sp in parser.process_parsers
            }
        )
        bundle.processes[process_id] = ParsedProcess(
            process_id=process_id,
            name=process_parser.get_name(),
            filename=filename,
            spec=spec,
            subprocess_specs=subprocess_specs,
            files=files,
        )
    return bundle


def _is_top_level(process_parser: Any, roots: Mapping[str, etree._Element]) -> bool:
    """An executable bpmn:process element (not an embedded subprocess parser)."""
    node = process_parser.node
    return (
        node.tag == f"{{{BPMN_NS}}}process"
        and node.get("isExecutable", "true") == "true"
        and process_parser.filename in roots
    )
