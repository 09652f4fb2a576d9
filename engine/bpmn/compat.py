"""Work-arounds for what real modelers write and SpiffWorkflow 3.2.0 trips over.

Each is small and named after the file shape that needs it:
- `messageRef="tns:Message_1"` (a QName, as several tools write it) is read as `Message_1`;
  a reference to an error, escalation, message or signal the file does not define becomes a
  located problem instead of Spiff's TypeError;
- a data store with no registered implementation keeps its value in the case data;
- a business rule task without `camunda:decisionRef` is a task with nothing to run, like
  `bpmn:task`;
- standard `bpmn:loopDataInputRef` multi-instance is parsed the BPMN way even by the Camunda
  parser, which only knows `camunda:collection`;
- a file that declares UTF-8 but is written in another encoding, or whose namespace URIs hold
  spaces, is repaired before parsing (see engine.bpmn.safe_xml).
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.exceptions import WorkflowDataException
from SpiffWorkflow.bpmn.parser.TaskParser import TaskParser
from SpiffWorkflow.bpmn.serializer.helpers.spec import BpmnDataSpecificationConverter
from SpiffWorkflow.bpmn.specs import defaults
from SpiffWorkflow.bpmn.specs.data_spec import BpmnDataStoreSpecification
from SpiffWorkflow.camunda.parser.task_spec import CAMUNDA_MODEL_NS

from engine.bpmn.problems import Problem

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CODE_REFERENCES = {"error": "errorCode", "escalation": "escalationCode"}
REFERENCES = {
    "messageRef": "message",
    "errorRef": "error",
    "signalRef": "signal",
    "escalationRef": "escalation",
}


def normalize_references(root: etree._Element, filename: str) -> list[Problem]:
    """Rewrite QName references to plain ids; report references to undefined elements."""
    defined: dict[str, set[str]] = {kind: set() for kind in REFERENCES.values()}
    for kind in defined:
        for node in root.iter(f"{{{BPMN_NS}}}{kind}"):
            if node.get("id"):
                defined[kind].add(node.get("id"))
                if not node.get("name"):  # Spiff keys events by name; an unnamed one is lost
                    node.set("name", node.get("id") or "")
    _give_ids(root)
    _give_data_stores(root)
    _give_implicit_starts(root)
    problems: list[Problem] = []
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue
        for attribute, kind in REFERENCES.items():
            value = node.get(attribute)
            if value is None or value in defined[kind]:
                continue
            local = value.split(":", 1)[-1].strip()
            if local in defined[kind]:
                node.set(attribute, local)
                continue
            if not value.strip():
                del node.attrib[attribute]
                continue
            if kind in CODE_REFERENCES:
                # Camunda reads an errorRef/escalationRef that names no element as the code
                element = etree.Element(f"{{{BPMN_NS}}}{kind}")
                element.set("id", value)
                element.set("name", value)
                element.set(CODE_REFERENCES[kind], value)
                root.insert(0, element)
                defined[kind].add(value)
                continue
            where = etree.QName(node).localname
            problems.append(
                Problem(
                    filename,
                    node.sourceline,
                    f"{where} {node.get('id') or ''!s} refers to {kind} {value!r}, which this "
                    f"file does not define (add <bpmn:{kind} id={local!r} .../>)".replace(
                        "  ", " "
                    ),
                )
            )
    return problems


def _give_ids(root: etree._Element) -> None:
    """Sequence flows (and other elements) may omit their id in BPMN; SpiffWorkflow would
    merge every id-less flow into one, so each gets an id of its own."""
    count = 0
    for node in root.iter():
        if not isinstance(node.tag, str) or etree.QName(node).namespace != BPMN_NS:
            continue
        name = etree.QName(node).localname
        if node.get("id") or not (
            name in ("sequenceFlow", "subProcess") or name in FLOW_NODES or name.endswith("Event")
        ):
            continue
        count += 1
        node.set("id", f"{name}_generated_{count}")


FLOW_NODES = {
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
    "intermediateThrowEvent",
    "intermediateCatchEvent",
    "exclusiveGateway",
    "parallelGateway",
    "inclusiveGateway",
    "eventBasedGateway",
    "endEvent",
}


def _give_implicit_starts(root: etree._Element) -> None:
    """A subprocess without a start event starts at every node with no incoming flow (BPMN
    10.3.4); SpiffWorkflow wants an explicit start event, so one is added, with a flow to each
    of those nodes."""
    for sub in root.iter(f"{{{BPMN_NS}}}subProcess"):
        if sub.get("triggeredByEvent") == "true":
            continue
        children = [c for c in sub if isinstance(c.tag, str)]
        if any(etree.QName(c).localname == "startEvent" for c in children):
            continue
        targets = {
            c.get("targetRef")
            for c in children
            if etree.QName(c).localname == "sequenceFlow" and c.get("targetRef")
        }
        firsts = [
            c
            for c in children
            if etree.QName(c).localname in FLOW_NODES
            and c.get("id")
            and c.get("id") not in targets
            and c.get("isForCompensation") != "true"
        ]
        if not any(etree.QName(c).localname in FLOW_NODES for c in children):
            end = etree.SubElement(sub, f"{{{BPMN_NS}}}endEvent")  # an empty subprocess
            end.set("id", f"{sub.get('id')}_implicit_end")
            firsts = [end]
        if not firsts:
            continue
        start_id = f"{sub.get('id')}_implicit_start"
        start = etree.SubElement(sub, f"{{{BPMN_NS}}}startEvent")
        start.set("id", start_id)
        for node in firsts:
            flow = etree.SubElement(sub, f"{{{BPMN_NS}}}sequenceFlow")
            flow_id = f"{start_id}_to_{node.get('id')}"
            flow.set("id", flow_id)
            flow.set("sourceRef", start_id)
            flow.set("targetRef", node.get("id") or "")
            etree.SubElement(start, f"{{{BPMN_NS}}}outgoing").text = flow_id
            incoming = etree.Element(f"{{{BPMN_NS}}}incoming")
            incoming.text = flow_id
            node.insert(0, incoming)


def _give_data_stores(root: etree._Element) -> None:
    """A data store reference with no data store behind it (several tools write them) gets
    one of its own, so the tasks that read or write it have somewhere to keep the value."""
    stores = {n.get("id") for n in root.iter(f"{{{BPMN_NS}}}dataStore")}
    for ref in root.iter(f"{{{BPMN_NS}}}dataStoreReference"):
        if ref.get("dataStoreRef") in stores or not ref.get("id"):
            continue
        store_id = f"{ref.get('id')}_store"
        store = etree.SubElement(root, f"{{{BPMN_NS}}}dataStore")
        store.set("id", store_id)
        store.set("name", ref.get("name") or ref.get("id") or store_id)
        ref.set("dataStoreRef", store_id)
        stores.add(store_id)


class CaseDataStore(BpmnDataStoreSpecification):
    """A data store with no implementation registered: its value lives in the case data,
    shared by every task of the case, as the model's reader would expect."""

    def get(self, my_task: Any) -> None:
        store = my_task.workflow.top_workflow.data.get("data_stores", {})
        if self.bpmn_id not in store:
            raise WorkflowDataException(
                f"data store {self.bpmn_name or self.bpmn_id!r} has no value yet",
                my_task,
                data_input=self,
            )
        my_task.data[self.bpmn_id] = deepcopy(store[self.bpmn_id])

    def set(self, my_task: Any) -> None:
        if self.bpmn_id not in my_task.data:
            raise WorkflowDataException(
                f"data store {self.bpmn_name or self.bpmn_id!r} cannot be written: the task "
                f"has no {self.bpmn_id!r}",
                my_task,
                data_output=self,
            )
        store = my_task.workflow.top_workflow.data.setdefault("data_stores", {})
        store[self.bpmn_id] = deepcopy(my_task.data.pop(self.bpmn_id))


class CaseDataStoreConverter(BpmnDataSpecificationConverter):
    def to_dict(self, data_spec: Any) -> dict[str, Any]:
        return {"bpmn_id": data_spec.bpmn_id, "bpmn_name": data_spec.bpmn_name}

    def from_dict(self, dct: dict[str, Any]) -> Any:
        return CaseDataStore(dct["bpmn_id"], dct.get("bpmn_name"))


def add_data_stores(parser: Any, bpmn: Any) -> None:
    """SpiffWorkflow's data store registration, with CaseDataStore for unknown names."""
    for node in bpmn.xpath(".//bpmn:dataStore", namespaces=parser.namespaces):
        store_id = node.attrib.get("id")
        if store_id is None:
            continue
        name = node.attrib.get("name") or store_id
        implementation = parser.DATA_STORE_CLASSES.get(name, CaseDataStore)
        parser.data_stores[store_id] = implementation(
            store_id, name, node.attrib.get("capacity"), node.attrib.get("isUnlimited")
        )


class StandardSequentialMI(defaults.SequentialMultiInstanceTask):
    """BPMN-standard sequential multi-instance (named apart from Camunda's class of the same
    name, so both can be stored)."""


class StandardParallelMI(defaults.ParallelMultiInstanceTask):
    """BPMN-standard parallel multi-instance."""


class StandardLoopMixin:
    """Multi-instance the BPMN way (loopDataInputRef) when no camunda:collection is given."""

    PARALLEL_MI_CLASS = StandardParallelMI
    SEQUENTIAL_MI_CLASS = StandardSequentialMI

    def _add_multiinstance_task(self, loop_characteristics: Any) -> Any:
        has_collection = loop_characteristics.get(f"{{{CAMUNDA_MODEL_NS}}}collection") is not None
        standard = loop_characteristics.find(f"{{{BPMN_NS}}}loopDataInputRef") is not None
        if standard and not has_collection:
            return TaskParser._add_multiinstance_task(self, loop_characteristics)  # type: ignore[arg-type]
        return super()._add_multiinstance_task(loop_characteristics)  # type: ignore[misc]


def with_standard_loops(parser_class: type) -> type:
    """The parser class, taught standard multi-instance (and govflow's storable MI classes)."""
    if not issubclass(parser_class, TaskParser) or issubclass(parser_class, StandardLoopMixin):
        return parser_class
    return type(f"Govflow{parser_class.__name__}", (StandardLoopMixin, parser_class), {})
