"""BPMN diagram interchange (DI) drawn as SVG, server-side, with no JavaScript.

Shapes come from `bpmndi:BPMNShape` bounds and edges from `bpmndi:BPMNEdge` waypoints; what
each shape *is* (task, event, gateway, lane, ...) comes from the semantic element it points
at. Element states (active, completed, failed) and per-element counts (a heatmap) are drawn
as classes and fills, so the same renderer serves the instance page and the process page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

from engine.bpmn.safe_xml import parse_xml_bytes

BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
DI = "http://www.omg.org/spec/DD/20100524/DI"
MODEL = "http://www.omg.org/spec/BPMN/20100524/MODEL"

EVENTS = {
    "startEvent",
    "endEvent",
    "intermediateCatchEvent",
    "intermediateThrowEvent",
    "boundaryEvent",
    "implicitThrowEvent",
}
GATEWAYS = {
    "exclusiveGateway": "X",
    "parallelGateway": "+",
    "inclusiveGateway": "O",
    "eventBasedGateway": "◇",
    "complexGateway": "*",
}
CONTAINERS = {"participant", "lane", "subProcess", "transaction", "adHocSubProcess"}
DATA = {"dataObjectReference", "dataStoreReference", "dataObject", "dataInput", "dataOutput"}
MARKERS = {
    "userTask": "人",
    "serviceTask": "⚙",
    "scriptTask": "✎",
    "sendTask": "✉",
    "receiveTask": "✉",
    "businessRuleTask": "▦",
    "manualTask": "手",
    "callActivity": "⊞",
}


class DiagramError(Exception):
    """The file cannot be drawn; the message says why."""


@dataclass
class Shape:
    element_id: str
    kind: str
    name: str
    x: float
    y: float
    w: float
    h: float
    expanded: bool = True
    horizontal: bool = True


@dataclass
class Edge:
    element_id: str
    kind: str
    name: str
    points: list[tuple[float, float]]


@dataclass
class Diagram:
    shapes: list[Shape] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def bounds(self) -> tuple[float, float, float, float]:
        xs = [s.x for s in self.shapes] + [p[0] for e in self.edges for p in e.points]
        ys = [s.y for s in self.shapes] + [p[1] for e in self.edges for p in e.points]
        xe = [s.x + s.w for s in self.shapes] + xs
        ye = [s.y + s.h for s in self.shapes] + ys
        if not xs:
            return 0, 0, 100, 100
        return min(xs), min(ys), max(xe), max(ye)


def _local(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _float(value: str | None) -> float:
    try:
        return float(value) if value is not None else 0.0
    except ValueError:
        return 0.0


def read_diagram(data: bytes, filename: str = "diagram.bpmn") -> Diagram:
    """The first diagram of a BPMN file (every plane of it: collaboration and processes)."""
    root = parse_xml_bytes(data, filename)
    semantic: dict[str, etree._Element] = {}
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue
        element_id = node.get("id")
        if element_id and etree.QName(node).namespace != BPMNDI:
            semantic.setdefault(element_id, node)
    diagrams = root.findall(f"{{{BPMNDI}}}BPMNDiagram")
    if not diagrams:
        raise DiagramError(f"{filename} has no diagram information (bpmndi:BPMNDiagram)")
    diagram = Diagram()
    for plane in diagrams[0].iter(f"{{{BPMNDI}}}BPMNPlane"):
        for node in plane:
            ref = node.get("bpmnElement") or ""
            target = semantic.get(ref)
            kind = _local(target.tag) if target is not None else "unknown"
            name = (target.get("name") or "") if target is not None else ""
            tag = _local(node.tag)
            if tag == "BPMNShape":
                bounds = node.find(f"{{{DC}}}Bounds")
                if bounds is None:
                    continue
                expanded = node.get("isExpanded", "true" if kind in CONTAINERS else "false")
                diagram.shapes.append(
                    Shape(
                        ref,
                        kind,
                        name,
                        _float(bounds.get("x")),
                        _float(bounds.get("y")),
                        _float(bounds.get("width")),
                        _float(bounds.get("height")),
                        expanded == "true",
                        node.get("isHorizontal", "true") != "false",
                    )
                )
            elif tag == "BPMNEdge":
                points = [
                    (_float(p.get("x")), _float(p.get("y")))
                    for p in node.findall(f"{{{DI}}}waypoint")
                ]
                if len(points) >= 2:
                    diagram.edges.append(Edge(ref, kind, name, points))
    if not diagram.shapes and not diagram.edges:
        raise DiagramError(f"{filename}: its diagram has no shapes")
    return diagram


def _label(text: str, cx: float, cy: float, width: float, size: int = 11) -> str:
    """Centered text, wrapped to the width (CJK characters are about one em wide)."""
    if not text:
        return ""
    per_line = max(2, int(width / (size * 0.62)))

    def weight(piece: str) -> int:
        return sum(2 if ord(c) > 0x2E80 else 1 for c in piece)

    # Latin words stay whole; CJK text may break between any two characters
    tokens = re.findall(r"[\u2e80-\uffff]|[^\s\u2e80-\uffff]+|\s+", text.replace("\n", " "))
    lines: list[str] = []
    current = ""
    for token in tokens:
        if current and weight(current) + weight(token.rstrip()) > per_line:
            lines.append(current.strip())
            current = "" if token.isspace() else token
            continue
        current += token
    if current.strip():
        lines.append(current.strip())
    lines = lines[:4]
    top = cy - (len(lines) - 1) * size * 0.6
    spans = "".join(
        f'<tspan x="{cx:.1f}" y="{top + i * size * 1.2:.1f}">{escape(line)}</tspan>'
        for i, line in enumerate(lines)
    )
    return f'<text class="label" font-size="{size}" text-anchor="middle">{spans}</text>'


def _shape_svg(shape: Shape, css: str, title: str) -> str:
    x, y, w, h = shape.x, shape.y, shape.w, shape.h
    kind = shape.kind
    cx, cy = x + w / 2, y + h / 2
    attrs = f'class="{css}" data-element={quoteattr(shape.element_id)}'
    tooltip = f"<title>{escape(title)}</title>"
    if kind in ("participant", "lane"):
        head = (
            f'<rect x="{x:.1f}" y="{y:.1f}" width="30" height="{h:.1f}" class="pool-head" />'
            if shape.horizontal
            else ""
        )
        label_x, label_y = x + 15, cy
        text = _label(shape.name, 0, 0, h, 11)
        rotated = (
            f'<g transform="translate({label_x:.1f},{label_y:.1f}) rotate(-90)">{text}</g>'
            if shape.horizontal
            else _label(shape.name, cx, y + 14, w)
        )
        return (
            f'<g {attrs}>{tooltip}<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" '
            f'height="{h:.1f}" class="pool" />{head}{rotated}</g>'
        )
    if kind in EVENTS:
        r = min(w, h) / 2
        stroke = "event-end" if kind == "endEvent" else "event"
        inner = (
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{max(r - 3, 1):.1f}" class="event-inner" />'
            if kind.startswith("intermediate") or kind == "boundaryEvent"
            else ""
        )
        return (
            f'<g {attrs}>{tooltip}<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r:.1f}" '
            f'class="{stroke}" />{inner}{_label(shape.name, cx, y + h + 14, 120, 10)}</g>'
        )
    if kind in GATEWAYS:
        points = f"{cx:.1f},{y:.1f} {x + w:.1f},{cy:.1f} {cx:.1f},{y + h:.1f} {x:.1f},{cy:.1f}"
        mark = GATEWAYS[kind]
        return (
            f'<g {attrs}>{tooltip}<polygon points="{points}" class="gateway" />'
            f'<text x="{cx:.1f}" y="{cy + 5:.1f}" text-anchor="middle" class="mark">{mark}</text>'
            f"{_label(shape.name, cx, y + h + 14, 120, 10)}</g>"
        )
    if kind in DATA:
        return (
            f'<g {attrs}>{tooltip}<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" '
            f'height="{h:.1f}" class="data" />{_label(shape.name, cx, y + h + 14, 120, 10)}</g>'
        )
    if kind in ("textAnnotation",):
        return (
            f'<g {attrs}><path d="M{x + 10:.1f},{y:.1f} H{x:.1f} V{y + h:.1f} H{x + 10:.1f}" '
            f'class="annotation" />{_label(shape.name, cx, cy, w)}</g>'
        )
    rounded = 10 if kind not in ("group",) else 0
    css_kind = "group" if kind == "group" else "activity"
    container = kind in CONTAINERS and shape.expanded
    label = _label(shape.name, cx, y + 16 if container else cy, w - 8)
    marker = MARKERS.get(kind, "")
    marker_svg = (
        f'<text x="{x + 6:.1f}" y="{y + 14:.1f}" class="marker">{marker}</text>' if marker else ""
    )
    return (
        f'<g {attrs}>{tooltip}<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" '
        f'rx="{rounded}" class="{css_kind}" />{marker_svg}{label}</g>'
    )


STYLE = """
.pool{fill:none;stroke:#555;stroke-width:1}
.pool-head{fill:#f4f4f4;stroke:#555}
.activity{fill:#fff;stroke:#333;stroke-width:1.5}
.group{fill:none;stroke:#888;stroke-dasharray:6 3}
.event{fill:#fff;stroke:#333;stroke-width:1.5}
.event-end{fill:#fff;stroke:#333;stroke-width:4}
.event-inner{fill:none;stroke:#333}
.gateway{fill:#fff;stroke:#333;stroke-width:1.5}
.data{fill:#fff;stroke:#666}
.annotation{fill:none;stroke:#666}
.flow{fill:none;stroke:#333;stroke-width:1.2}
.message-flow{fill:none;stroke:#333;stroke-dasharray:6 4}
.association{fill:none;stroke:#777;stroke-dasharray:2 3}
.label{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;fill:#111}
.mark{font-size:18px;font-weight:bold}
.marker{font-size:11px}
.completed .activity,.completed .event,.completed .event-end,.completed .gateway{fill:#e8f0e8}
.active .activity,.active .event,.active .event-end,.active .gateway{stroke:#0a7d2c;stroke-width:4}
.failed .activity,.failed .event,.failed .event-end,.failed .gateway{
stroke:#c0142c;stroke-width:4;fill:#fde7ea}
.count{font-size:11px;fill:#fff}
.count-bg{fill:#1d5fbf}
"""


def render_svg(
    diagram: Diagram,
    states: dict[str, str] | None = None,
    counts: dict[str, int] | None = None,
    title: str = "",
) -> str:
    """The diagram as an SVG document. `states` maps element ids to active, completed or
    failed; `counts` maps element ids to how many tokens passed (drawn as a heatmap)."""
    states = states or {}
    counts = counts or {}
    x0, y0, x1, y1 = diagram.bounds()
    pad = 20
    width, height = x1 - x0 + 2 * pad, y1 - y0 + 2 * pad
    top = max(counts.values(), default=0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="bpmn" role="img" '
        f'viewBox="{x0 - pad:.1f} {y0 - pad:.1f} {width:.1f} {height:.1f}" '
        f'width="{width:.0f}" height="{height:.0f}" aria-label={quoteattr(title or "BPMN")}>',
        f"<style>{STYLE}</style>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
        'markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#333" /></marker></defs>',
    ]
    order = {"participant": 0, "lane": 1}
    for shape in sorted(
        diagram.shapes,
        key=lambda s: (order.get(s.kind, 2 if s.kind in CONTAINERS else 3), -s.w * s.h),
    ):
        state = states.get(shape.element_id, "")
        title_text = f"{shape.name or shape.element_id} ({shape.kind})"
        if shape.element_id in counts:
            title_text += f": {counts[shape.element_id]}"
        parts.append(_shape_svg(shape, f"shape {shape.kind} {state}".strip(), title_text))
        if top and counts.get(shape.element_id):
            value = counts[shape.element_id]
            share = value / top
            parts.append(
                f'<rect x="{shape.x:.1f}" y="{shape.y:.1f}" width="{shape.w:.1f}" '
                f'height="{shape.h:.1f}" rx="6" fill="#e0301e" '
                f'fill-opacity="{0.1 + 0.5 * share:.2f}" '
                'pointer-events="none" class="heat" />'
                f'<rect x="{shape.x + shape.w - 26:.1f}" y="{shape.y - 9:.1f}" width="30" '
                f'height="16" rx="8" class="count-bg" /><text x="{shape.x + shape.w - 11:.1f}" '
                f'y="{shape.y + 3:.1f}" text-anchor="middle" class="count">{value}</text>'
            )
    for edge in diagram.edges:
        css = {
            "messageFlow": "message-flow",
            "association": "association",
            "dataInputAssociation": "association",
            "dataOutputAssociation": "association",
        }.get(edge.kind, "flow")
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in edge.points)
        arrow = ' marker-end="url(#arrow)"' if css != "association" else ""
        mid = edge.points[len(edge.points) // 2]
        parts.append(
            f'<g data-element={quoteattr(edge.element_id)}><polyline points="{path}" '
            f'class="{css}"{arrow} />{_label(edge.name, mid[0], mid[1] - 6, 140, 10)}</g>'
        )
    parts.append("</svg>")
    return "".join(parts)
