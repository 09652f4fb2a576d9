"""A tiny BPMN writer for tests: real BPMN 2.0 XML with the Camunda namespace, no layout."""

from __future__ import annotations

import itertools
from xml.sax.saxutils import escape, quoteattr

HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'id="Definitions_test" targetNamespace="http://govflow.test">\n'
)


def definitions(*parts: str) -> str:
    return HEAD + "\n".join(parts) + "\n</bpmn:definitions>\n"


def process(pid: str, *elements: str, name: str | None = None, lanes: str = "") -> str:
    label = f" name={quoteattr(name)}" if name else ""
    body = "\n".join(elements)
    return f'<bpmn:process id="{pid}"{label} isExecutable="true">\n{lanes}{body}\n</bpmn:process>'


def doc(pid: str, *elements: str, **kwargs: str) -> str:
    return definitions(process(pid, *elements, **kwargs))


def _attrs(attrs: dict[str, str | None]) -> str:
    out = []
    for key, value in attrs.items():
        if value is None:
            continue
        name = key.replace("__", ":")
        out.append(f" {name}={quoteattr(str(value))}")
    return "".join(out)


def start(id: str = "start", inner: str = "") -> str:
    return f'<bpmn:startEvent id="{id}">{inner}</bpmn:startEvent>'


def end(id: str = "end") -> str:
    return f'<bpmn:endEvent id="{id}" />'


def user(id: str, name: str | None = None, **camunda: str | None) -> str:
    attrs = {"name": name, **{f"camunda__{k}": v for k, v in camunda.items()}}
    return f'<bpmn:userTask id="{id}"{_attrs(attrs)} />'


def script(id: str, code: str, name: str | None = None) -> str:
    return (
        f'<bpmn:scriptTask id="{id}"{_attrs({"name": name})} scriptFormat="python">'
        f"<bpmn:script>{escape(code)}</bpmn:script></bpmn:scriptTask>"
    )


def xor(id: str, default: str | None = None) -> str:
    return f'<bpmn:exclusiveGateway id="{id}"{_attrs({"default": default})} />'


def par(id: str) -> str:
    return f'<bpmn:parallelGateway id="{id}" />'


def flow(id: str, source: str, target: str, condition: str | None = None) -> str:
    if condition is None:
        return f'<bpmn:sequenceFlow id="{id}" sourceRef="{source}" targetRef="{target}" />'
    return (
        f'<bpmn:sequenceFlow id="{id}" sourceRef="{source}" targetRef="{target}">'
        f'<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{escape(condition)}'
        "</bpmn:conditionExpression></bpmn:sequenceFlow>"
    )


def chain(*ids: str, prefix: str = "f") -> list[str]:
    return [flow(f"{prefix}_{a}_{b}", a, b) for a, b in itertools.pairwise(ids)]


def timer_boundary(id: str, attached: str, duration: str, cancel: bool = True) -> str:
    return (
        f'<bpmn:boundaryEvent id="{id}" attachedToRef="{attached}" '
        f'cancelActivity="{"true" if cancel else "false"}"><bpmn:timerEventDefinition>'
        f"<bpmn:timeDuration>{escape(duration)}</bpmn:timeDuration>"
        "</bpmn:timerEventDefinition></bpmn:boundaryEvent>"
    )


def diagram(pid: str, nodes: list[str], flows: list[tuple[str, str, str]]) -> str:
    """Diagram information laying the nodes out left to right (for pages that draw it)."""
    place = {node: (100 + 160 * i, 100) for i, node in enumerate(nodes)}
    shapes = "".join(
        f'<bpmndi:BPMNShape id="{node}_di" bpmnElement="{node}">'
        f'<dc:Bounds x="{x}" y="{y}" width="100" height="80" /></bpmndi:BPMNShape>'
        for node, (x, y) in place.items()
    )
    edges = "".join(
        f'<bpmndi:BPMNEdge id="{fid}_di" bpmnElement="{fid}">'
        f'<di:waypoint x="{place[s][0] + 100}" y="140" /><di:waypoint x="{place[t][0]}" y="140" />'
        "</bpmndi:BPMNEdge>"
        for fid, s, t in flows
    )
    return (
        '<bpmndi:BPMNDiagram id="diagram" '
        'xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" '
        'xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" '
        'xmlns:di="http://www.omg.org/spec/DD/20100524/DI">'
        f'<bpmndi:BPMNPlane id="plane" bpmnElement="{pid}">{shapes}{edges}</bpmndi:BPMNPlane>'
        "</bpmndi:BPMNDiagram>"
    )
