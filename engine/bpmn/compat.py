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
  spaces, is repaired before parsing (see engine.bpmn.safe_xml);
- an element whose id is `Start`, `End` or `Root` (names SpiffWorkflow gives its own task specs
  in every process) is renamed `Start_`, `End_`, `Root_`, with every reference to it, the
  diagram's included;
- an `inputDataItem`/`outputDataItem` with a `name` and no `id` (as Camunda and Flowable write
  them) uses its name as the variable, as those engines do;
- a link throw event and the link catch event of the same name in the same scope become one
  sequence flow between two pass-through events (a link is a "go to"; SpiffWorkflow 3.2.0
  does not follow it);
- a token ends where its flow stops (BPMN 10.5.3, and Camunda runs such models): an end event
  is added, with a flow from each node that has no outgoing flow, because SpiffWorkflow only
  finishes a process at an end event, and merges a branch's data only at one;
- SpiffWorkflow's `spiffworkflow:preScript` / `postScript` run as in SpiffWorkflow's own
  dialect (see SpiffScriptsMixin);
- Flowable's and Activiti's `collection`/`elementVariable` multi-instance attributes (and
  Camunda's `collection` without an `elementVariable`) become the standard
  `loopDataInputRef`/`inputDataItem`: one instance per item of the collection.
"""

from __future__ import annotations

import re
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
    _rename_reserved_ids(root)
    _give_ids(root)
    _give_item_ids(root)
    _standard_collections(root)
    _give_data_stores(root)
    _give_implicit_starts(root)
    _links_as_flows(root)
    _give_implicit_ends(root)
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


RESERVED_IDS = ("Start", "End", "Root")
ID_REFERENCE_ATTRIBUTES = (
    "sourceRef",
    "targetRef",
    "default",
    "attachedToRef",
    "bpmnElement",
    "activityRef",
    "processRef",
    "calledElement",
)
ID_REFERENCE_ELEMENTS = ("incoming", "outgoing", "flowNodeRef", "sourceRef", "targetRef")


def _rename_reserved_ids(root: etree._Element) -> None:
    """SpiffWorkflow names two task specs of every process `Start` and `End` (and the tree's
    root `Root`); a BPMN element with such an id replaces one of them and the process cannot
    start ("No output task connected"). Such elements get another id, and every reference
    follows."""
    ids = {n.get("id") for n in root.iter() if isinstance(n.tag, str) and n.get("id")}
    renamed: dict[str, str] = {}
    for reserved in RESERVED_IDS:
        if reserved not in ids:
            continue
        new = f"{reserved}_"
        while new in ids:
            new += "_"
        ids.add(new)
        renamed[reserved] = new
    if not renamed:
        return
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue
        if node.get("id") in renamed:
            node.set("id", renamed[node.get("id") or ""])
        for attribute in ID_REFERENCE_ATTRIBUTES:
            value = node.get(attribute)
            if value in renamed:
                node.set(attribute, renamed[value or ""])
        if etree.QName(node).localname in ID_REFERENCE_ELEMENTS and node.text:
            text = node.text.strip()
            if text in renamed:
                node.text = renamed[text]


def _give_item_ids(root: etree._Element) -> None:
    """Camunda and Flowable name a multi-instance element variable with `name` alone
    (`<inputDataItem name="assignee"/>`); SpiffWorkflow reads the variable from `id`."""
    for kind in ("inputDataItem", "outputDataItem"):
        for node in root.iter(f"{{{BPMN_NS}}}{kind}"):
            if not node.get("id") and node.get("name"):
                node.set("id", node.get("name") or "")


ENGINE_NAMESPACES = (
    CAMUNDA_MODEL_NS,
    "http://activiti.org/bpmn",
    "http://flowable.org/bpmn",
)
_PLAIN_NAME = re.compile(r"^\s*(?:\$\{\s*)?([A-Za-z_][\w]*)\s*\}?\s*$")


def _standard_collections(root: etree._Element) -> None:
    """`flowable:collection="items" flowable:elementVariable="item"` is standard multi-instance
    over the variable `items`; it is written as such so the BPMN parser reads it."""
    for loop in root.iter(f"{{{BPMN_NS}}}multiInstanceLoopCharacteristics"):
        if loop.find(f"{{{BPMN_NS}}}loopDataInputRef") is not None:
            continue
        if loop.find(f"{{{BPMN_NS}}}loopCardinality") is not None:
            continue
        for namespace in ENGINE_NAMESPACES:
            collection = loop.get(f"{{{namespace}}}collection")
            if collection is None:
                continue
            element = loop.get(f"{{{namespace}}}elementVariable")
            if namespace == CAMUNDA_MODEL_NS and element:
                break  # the Camunda parser's own reading
            match = _PLAIN_NAME.match(collection)
            if match is None:
                break  # an expression: left to the parser, which reports it
            del loop.attrib[f"{{{namespace}}}collection"]
            reference = etree.Element(f"{{{BPMN_NS}}}loopDataInputRef")
            reference.text = match.group(1)
            position = 0
            for index, child in enumerate(loop):
                if isinstance(child.tag, str) and etree.QName(child).localname in (
                    "documentation",
                    "extensionElements",
                    "loopCardinality",
                ):
                    position = index + 1
            loop.insert(position, reference)
            if element:
                del loop.attrib[f"{{{namespace}}}elementVariable"]
                item = etree.Element(f"{{{BPMN_NS}}}inputDataItem")
                item.set("id", element)
                item.set("name", element)
                reference.addnext(item)
            break


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


def _scopes(root: etree._Element) -> list[etree._Element]:
    """Every process, subprocess and transaction: the places flows live in."""
    scopes = list(root.iter(f"{{{BPMN_NS}}}process"))
    for kind in ("subProcess", "transaction"):
        scopes.extend(root.iter(f"{{{BPMN_NS}}}{kind}"))
    return scopes


def _add_flow(scope: etree._Element, flow_id: str, source: str, target: str) -> None:
    flow = etree.SubElement(scope, f"{{{BPMN_NS}}}sequenceFlow")
    flow.set("id", flow_id)
    flow.set("sourceRef", source)
    flow.set("targetRef", target)


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
            flow_id = f"{start_id}_to_{node.get('id')}"
            _add_flow(sub, flow_id, start_id, node.get("id") or "")
            etree.SubElement(start, f"{{{BPMN_NS}}}outgoing").text = flow_id
            incoming = etree.Element(f"{{{BPMN_NS}}}incoming")
            incoming.text = flow_id
            node.insert(0, incoming)


def _links_as_flows(root: etree._Element) -> None:
    """Each link throw event flows to the link catch event of its name in the same scope."""

    def link_name(event: etree._Element) -> str | None:
        link = event.find(f"{{{BPMN_NS}}}linkEventDefinition")
        if link is None:
            return None
        return (link.get("name") or event.get("name") or "").strip() or None

    for scope in _scopes(root):
        catches: dict[str, etree._Element] = {}
        for event in scope.findall(f"{{{BPMN_NS}}}intermediateCatchEvent"):
            name = link_name(event)
            if name and event.get("id"):
                catches.setdefault(name, event)
        targets: set[str] = set()
        for event in scope.findall(f"{{{BPMN_NS}}}intermediateThrowEvent"):
            name = link_name(event)
            catch = catches.get(name or "")
            if catch is None or not event.get("id"):
                continue
            for link in event.findall(f"{{{BPMN_NS}}}linkEventDefinition"):
                event.remove(link)
            flow_id = f"{event.get('id')}_link_{catch.get('id')}"
            _add_flow(scope, flow_id, event.get("id") or "", catch.get("id") or "")
            targets.add(catch.get("id") or "")
        for catch in catches.values():
            if catch.get("id") not in targets:
                continue
            for link in catch.findall(f"{{{BPMN_NS}}}linkEventDefinition"):
                catch.remove(link)
            catch.tag = f"{{{BPMN_NS}}}intermediateThrowEvent"  # a none event passes through


def dead_ends(scope: etree._Element) -> list[etree._Element]:
    """The flow nodes of a process or subprocess where a token's path ends without an end
    event: no outgoing sequence flow, and not a compensation handler, an event subprocess
    or a link throw (which continues at its catch)."""
    children = [c for c in scope if isinstance(c.tag, str)]
    sources = {c.get("sourceRef") for c in children if etree.QName(c).localname == "sequenceFlow"}
    ends: list[etree._Element] = []
    for node in children:
        kind = etree.QName(node).localname
        if kind not in FLOW_NODES and kind not in ("startEvent", "boundaryEvent"):
            continue
        if kind == "endEvent" or not node.get("id") or node.get("id") in sources:
            continue
        if node.get("isForCompensation") == "true" or node.get("triggeredByEvent") == "true":
            continue
        if node.find(f"{{{BPMN_NS}}}linkEventDefinition") is not None:
            continue
        if kind == "boundaryEvent" and (
            node.find(f"{{{BPMN_NS}}}compensateEventDefinition") is not None
        ):
            continue
        ends.append(node)
    return ends


def _give_implicit_ends(root: etree._Element) -> None:
    """Each dead end of a process or subprocess flows to an end event of its own, so the
    token ends there and its data joins the scope's at the end, as it would with an end event
    drawn (process variables are the process's, not the branch's)."""
    for scope in _scopes(root):
        ends = dead_ends(scope)
        if not ends:
            continue
        end_id = f"{scope.get('id')}_implicit_end"
        end = etree.SubElement(scope, f"{{{BPMN_NS}}}endEvent")
        end.set("id", end_id)
        for node in ends:
            flow_id = f"{node.get('id')}_to_{end_id}"
            _add_flow(scope, flow_id, node.get("id") or "", end_id)
            etree.SubElement(end, f"{{{BPMN_NS}}}incoming").text = flow_id
            outgoing = etree.Element(f"{{{BPMN_NS}}}outgoing")
            outgoing.text = flow_id
            incoming = node.findall(f"{{{BPMN_NS}}}incoming")
            if incoming:
                incoming[-1].addnext(outgoing)
            else:
                node.insert(0, outgoing)


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


SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
PRE_SCRIPT = "govflow:preScript"
POST_SCRIPT = "govflow:postScript"


class SpiffScriptsMixin:
    """SpiffWorkflow's own `spiffworkflow:preScript` / `postScript` extensions (a script run
    as the element becomes ready / as it completes), kept in the spec's extensions for
    engine.runtime.spiff_patches, so models drawn in SpiffArena run here too."""

    def parse_extensions(self, node: Any = None) -> dict[str, Any]:
        extensions: dict[str, Any] = super().parse_extensions(node)  # type: ignore[misc]
        if node is not None:
            return extensions
        for tag, key in (("preScript", PRE_SCRIPT), ("postScript", POST_SCRIPT)):
            found = self.node.find(  # type: ignore[attr-defined]
                f"{{{BPMN_NS}}}extensionElements/{{{SPIFF_NS}}}{tag}"
            )
            if found is not None and (found.text or "").strip():
                extensions[key] = found.text
        return extensions


def with_standard_loops(parser_class: type) -> type:
    """The parser class, taught standard multi-instance (and govflow's storable MI classes)
    and SpiffWorkflow's pre- and post-scripts."""
    if not issubclass(parser_class, TaskParser) or issubclass(parser_class, StandardLoopMixin):
        return parser_class
    return type(
        f"Govflow{parser_class.__name__}", (StandardLoopMixin, SpiffScriptsMixin, parser_class), {}
    )
