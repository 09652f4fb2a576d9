"""Camunda-style `${...}` expressions (the common JUEL subset) as Python.

Models drawn for Camunda write conditions like `${amount > 1000 && !approved}` or
`#{empty comment}`. govflow evaluates Python in its sandbox, so such text is translated first:
names, literals, comparisons, `&&`, `||`, `!`, `and`, `or`, `not`, `eq`/`ne`/`lt`/`gt`/`le`/
`ge`, `empty`, `true`/`false`/`null`. Text already written in Python passes unchanged, and so
does anything inside string literals.
"""

from __future__ import annotations

import re

_WRAPPED = re.compile(r"^\s*[$#]\{(.*)\}\s*$", re.DOTALL)
_TOKEN = re.compile(
    r"""(?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      |(?P<op>&&|\|\||!=|!)
      |(?P<word>[A-Za-z_][A-Za-z0-9_]*)
      |(?P<other>\s+|.)""",
    re.VERBOSE | re.DOTALL,
)
_WORDS = {
    "true": "True",
    "false": "False",
    "null": "None",
    "eq": "==",
    "ne": "!=",
    "lt": "<",
    "gt": ">",
    "le": "<=",
    "ge": ">=",
    "div": "/",
    "mod": "%",
    "empty": "juel_empty",
}
_OPS = {"&&": " and ", "||": " or ", "!": " not ", "!=": "!="}


def is_wrapped(text: str) -> bool:
    return bool(_WRAPPED.match(text or ""))


def to_python(text: str) -> str:
    """The Python for an expression; `${...}`/`#{...}` text is unwrapped and translated."""
    match = _WRAPPED.match(text or "")
    if not match:
        return text
    out: list[str] = []
    for token in _TOKEN.finditer(match.group(1)):
        kind = token.lastgroup
        value = token.group(0)
        if kind == "op":
            out.append(_OPS[value])
        elif kind == "word":
            out.append(_WORDS.get(value, value))
        else:
            out.append(value)
    python = "".join(out).strip()
    # `empty x` is a prefix operator in JUEL: make it a call
    return re.sub(r"juel_empty\s+([A-Za-z_][\w.\[\]'\"]*)", r"juel_empty(\1)", python)


def empty(value: object) -> bool:
    """JUEL's `empty`: null, or an empty string, list or map."""
    return value is None or (hasattr(value, "__len__") and len(value) == 0)  # type: ignore[arg-type]


def split_composite(text: str) -> list[tuple[bool, str]]:
    """Split text such as `kermit_${loopCounter}` into literal parts and `${...}` parts
    (each flagged True), the way JUEL reads a composite expression. Braces inside an
    expression's string literals or nested `{...}` do not end it. Text with an unclosed
    `${` is one literal."""
    parts: list[tuple[bool, str]] = []
    index = 0
    literal_start = 0
    while index < len(text):
        if text[index] in "$#" and text.startswith("{", index + 1):
            end = _closing_brace(text, index + 2)
            if end is None:
                break
            if index > literal_start:
                parts.append((False, text[literal_start:index]))
            parts.append((True, text[index : end + 1]))
            index = literal_start = end + 1
            continue
        index += 1
    if literal_start < len(text) or not parts:
        parts.append((False, text[literal_start:]))
    return parts


def _closing_brace(text: str, index: int) -> int | None:
    depth = 0
    quote: str | None = None
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return index
            depth -= 1
        index += 1
    return None
