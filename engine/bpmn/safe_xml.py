"""XML parsing that refuses what a BPMN file never needs: DTDs, entities and the network.

lxml is told not to resolve entities, load DTDs or touch the network; a file that still carries
a DOCTYPE (the vehicle of XXE and billion-laughs attacks) is refused outright with a message,
so nothing downstream ever sees an unexpanded entity reference.
"""

from __future__ import annotations

import re

from lxml import etree

from engine.bpmn.problems import Problem

_PARSER_OPTIONS = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "huge_tree": False,
    "remove_comments": False,
    "remove_pis": True,
}


_DOCTYPE_REFUSED = (
    "DOCTYPE declarations are not allowed in BPMN files "
    "(they can define entities that expand or read local files)"
)


class UnsafeXml(Exception):
    """The file is not acceptable XML; problem says where and why."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.format())
        self.problem = problem


def parse_xml_bytes(data: bytes, filename: str, max_bytes: int | None = None) -> etree._Element:
    """Parse XML from bytes (so the declared encoding is honoured) and return the root."""
    if max_bytes is not None and len(data) > max_bytes:
        raise UnsafeXml(
            Problem(
                filename, None, f"file is {len(data)} bytes, larger than the limit of {max_bytes}"
            )
        )
    if not data.strip():
        raise UnsafeXml(Problem(filename, 1, "file is empty"))
    doctype_line = _doctype_line(data)
    if doctype_line is not None:
        raise UnsafeXml(Problem(filename, doctype_line, _DOCTYPE_REFUSED))
    parser = etree.XMLParser(**_PARSER_OPTIONS)
    try:
        root = _parse_repairing(data, parser)
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if getattr(exc, "lineno", None) else None
        message = str(exc.msg) if getattr(exc, "msg", None) else str(exc)
        raise UnsafeXml(Problem(filename, line, f"not well-formed XML: {message}")) from None
    except ValueError as exc:
        raise UnsafeXml(Problem(filename, None, f"cannot read XML: {exc}")) from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise UnsafeXml(Problem(filename, None, _DOCTYPE_REFUSED))
    for node in root.iter(etree.Entity):
        raise UnsafeXml(
            Problem(filename, node.sourceline, f"entity reference {node.text} is not allowed")
        )
    return root


_XMLNS = re.compile(rb'(xmlns(?::[\w.-]+)?=")([^"]*)(")')
_DECLARED_ENCODING = re.compile(rb'^(<\?xml[^>]*encoding=["\'])([^"\']+)(["\'])')


def _parse_repairing(data: bytes, parser: etree.XMLParser) -> etree._Element:
    """Parse; on the two damages real exports carry, repair and parse again: text that is not
    in its declared encoding (read as Windows-1252, which never fails) and namespace URIs
    with spaces (percent-encoded; they are names, never fetched)."""
    try:
        return etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        message = str(exc)
        if "Invalid bytes in character encoding" in message or "not proper UTF-8" in message:
            text = data.decode("cp1252", errors="replace")
            fixed = _DECLARED_ENCODING.sub(rb"\1UTF-8\3", text.encode("utf-8"), count=1)
            return etree.fromstring(fixed, parser=parser)
        if "is not a valid URI" in message:
            fixed = _XMLNS.sub(
                lambda m: m.group(1) + m.group(2).replace(b" ", b"%20") + m.group(3), data
            )
            return etree.fromstring(fixed, parser=parser)
        raise


def _doctype_line(data: bytes) -> int | None:
    """Line of a DOCTYPE declaration in UTF-8/ASCII-compatible or UTF-16 text, if any."""
    for encoding in ("latin-1", "utf-16-le", "utf-16-be"):
        marker = "<!DOCTYPE".encode(encoding)
        index = data.find(marker)
        if index >= 0:
            newline = "\n".encode(encoding)
            return data.count(newline, 0, index) + 1
    return None
