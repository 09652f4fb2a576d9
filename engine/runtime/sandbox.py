"""The restricted evaluator for BPMN scripts and conditions.

Scripts are Python, compiled by RestrictedPython with a stricter policy on top: no imports, no
names or attributes starting with `_`, no `exec`/`eval`/`open`/`getattr` and friends, no class
definitions, no bare `except`, no `finally`/`with`/generators (the places where code could keep
running after the time limit fires). Size-explosive operations (`*`, `**`, `<<`, `range`, string
padding) are checked before they allocate. A trace function stops a script that runs past its
time limit. What a script leaves behind must be storable case data.
"""

from __future__ import annotations

import ast
import functools
import operator
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal
from types import CodeType, FrameType, ModuleType
from typing import Any

from RestrictedPython import RestrictingNodeTransformer, compile_restricted
from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence
from RestrictedPython.PrintCollector import PrintCollector

SCRIPT_FILENAME = "<govflow-script>"
MAX_SEQUENCE = 1_000_000
MAX_INT_BITS = 100_000

FORBIDDEN_NAMES = frozenset(
    {
        "open",
        "exec",
        "eval",
        "compile",
        "globals",
        "locals",
        "vars",
        "getattr",
        "setattr",
        "delattr",
        "hasattr",
        "type",
        "object",
        "super",
        "breakpoint",
        "help",
        "dir",
        "memoryview",
        "bytearray",
        "classmethod",
        "staticmethod",
        "property",
        "BaseException",
        "SystemExit",
        "KeyboardInterrupt",
        "GeneratorExit",
    }
)
_STR_FORBIDDEN_ATTRS = frozenset({"format", "format_map"})
_SIZED_STR_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs"})


class ScriptError(Exception):
    """A script or expression failed; `line` is the line within the script, when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.reason = message
        self.line = line


class _Timeout(BaseException):
    """Raised by the trace function; a BaseException so `except Exception` cannot swallow it."""


class GovflowPolicy(RestrictingNodeTransformer):
    """RestrictedPython's policy plus govflow's own refusals and size guards."""

    def visit_Import(self, node: ast.Import) -> Any:
        self.error(node, "import is not allowed in scripts")
        return node

    def visit_ImportFrom(self, node: ast.ImportFrom) -> Any:
        self.error(node, "import is not allowed in scripts")
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> Any:
        self.error(node, "class definitions are not allowed in scripts")
        return node

    def visit_With(self, node: ast.With) -> Any:
        self.error(node, "'with' statements are not allowed in scripts")
        return node

    def visit_Yield(self, node: ast.Yield) -> Any:
        self.error(node, "generators (yield) are not allowed in scripts")
        return node

    def visit_YieldFrom(self, node: ast.YieldFrom) -> Any:
        self.error(node, "generators (yield) are not allowed in scripts")
        return node

    def visit_Global(self, node: ast.Global) -> Any:
        self.error(node, "'global' is not allowed in scripts")
        return node

    def visit_Try(self, node: ast.Try) -> Any:
        if node.finalbody:
            self.error(node, "'finally' is not allowed in scripts")
        return super().visit_Try(node)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> Any:
        if node.type is None:
            self.error(node, "a bare 'except:' is not allowed; name the exception to catch")
        return super().visit_ExceptHandler(node)

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id in FORBIDDEN_NAMES:
            self.error(node, f"{node.id!r} is not available in scripts")
            return node
        return super().visit_Name(node)

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        node = self.node_contents_visit(node)
        if isinstance(node.op, ast.Mult | ast.Pow | ast.LShift):
            symbol = {ast.Mult: "*", ast.Pow: "**", ast.LShift: "<<"}[type(node.op)]
            call = ast.Call(
                func=ast.Name("_binop_", ast.Load()),
                args=[ast.Constant(symbol), node.left, node.right],
                keywords=[],
            )
            ast.copy_location(call, node)
            return ast.fix_missing_locations(call)
        return node


def _check_size(result_len: int) -> None:
    if result_len > MAX_SEQUENCE:
        raise ScriptError(f"result would hold {result_len} items, over the limit of {MAX_SEQUENCE}")


def _int_bits(value: Any) -> int:
    return value.bit_length() if isinstance(value, int) and not isinstance(value, bool) else 0


def _guarded_binop(symbol: str, left: Any, right: Any) -> Any:
    if symbol == "*":
        for seq, count in ((left, right), (right, left)):
            if isinstance(seq, str | bytes | list | tuple) and isinstance(count, int):
                _check_size(len(seq) * max(count, 0))
        if _int_bits(left) + _int_bits(right) > MAX_INT_BITS:
            raise ScriptError(f"integer product is larger than {MAX_INT_BITS} bits")
        return left * right
    if symbol == "**":
        if (
            isinstance(left, int)
            and isinstance(right, int)
            and right > 0
            and abs(left) > 1
            and max(_int_bits(left), 1) * right > MAX_INT_BITS
        ):
            raise ScriptError(f"power would be larger than {MAX_INT_BITS} bits")
        return left**right
    if symbol == "<<":
        if isinstance(right, int) and right + _int_bits(left) > MAX_INT_BITS:
            raise ScriptError(f"shift would be larger than {MAX_INT_BITS} bits")
        return left << right
    raise ScriptError(f"unknown operator {symbol}")


_INPLACE: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.add,
    "-=": operator.sub,
    "*=": lambda a, b: _guarded_binop("*", a, b),
    "/=": operator.truediv,
    "//=": operator.floordiv,
    "%=": operator.mod,
    "**=": lambda a, b: _guarded_binop("**", a, b),
    "<<=": lambda a, b: _guarded_binop("<<", a, b),
    ">>=": operator.rshift,
    "|=": operator.or_,
    "&=": operator.and_,
    "^=": operator.xor,
    "@=": operator.matmul,
}


def _inplacevar(op: str, target: Any, value: Any) -> Any:
    func = _INPLACE.get(op)
    if func is None:
        raise ScriptError(f"operator {op} is not allowed")
    return func(target, value)


def _sized_method(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        sizes = [a for a in args if isinstance(a, int)] + [
            v for v in kwargs.values() if isinstance(v, int)
        ]
        if sizes and max(sizes) > MAX_SEQUENCE:
            raise ScriptError(f"width {max(sizes)} is over the limit of {MAX_SEQUENCE}")
        return method(*args, **kwargs)

    return wrapper


def _guarded_getattr(obj: Any, name: str, default: Any = None) -> Any:
    if name.startswith("_"):
        raise ScriptError(f"attribute {name!r} is not accessible in scripts")
    if isinstance(obj, ModuleType):
        raise ScriptError("modules are not accessible in scripts")
    if isinstance(obj, str | bytes) and name in _STR_FORBIDDEN_ATTRS:
        raise ScriptError(f"str.{name} is not allowed in scripts; use f-strings or +")
    value = getattr(obj, name, default)
    if isinstance(obj, str | bytes) and name in _SIZED_STR_METHODS:
        return _sized_method(value)
    return value


def _guarded_write(obj: Any) -> Any:
    if isinstance(obj, dict | list | set):
        return obj
    raise ScriptError(f"objects of type {type(obj).__name__} cannot be modified in scripts")


def _limited_range(*args: int) -> range:
    result = range(*args)
    _check_size(len(result))
    return result


def _safe_pow(base: Any, exp: Any, mod: Any = None) -> Any:
    if mod is not None:
        return pow(base, exp, mod)
    return _guarded_binop("**", base, exp)


def _getitem(obj: Any, key: Any) -> Any:
    return obj[key]


_SAFE_BUILTINS: dict[str, Any] = {
    name: __builtins__[name] if isinstance(__builtins__, dict) else getattr(__builtins__, name)
    for name in (
        "abs",
        "all",
        "any",
        "bool",
        "chr",
        "dict",
        "divmod",
        "enumerate",
        "filter",
        "float",
        "frozenset",
        "int",
        "isinstance",
        "len",
        "list",
        "map",
        "max",
        "min",
        "ord",
        "repr",
        "reversed",
        "round",
        "set",
        "sorted",
        "str",
        "sum",
        "tuple",
        "zip",
        "ArithmeticError",
        "AssertionError",
        "Exception",
        "IndexError",
        "KeyError",
        "LookupError",
        "NameError",
        "RuntimeError",
        "TypeError",
        "ValueError",
        "ZeroDivisionError",
    )
}
_SAFE_BUILTINS.update(
    {"True": True, "False": False, "None": None, "range": _limited_range, "pow": _safe_pow}
)

_GUARDS: dict[str, Any] = {
    "_getattr_": _guarded_getattr,
    "_getitem_": _getitem,
    "_getiter_": iter,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_write_": _guarded_write,
    "_inplacevar_": _inplacevar,
    "_print_": PrintCollector,
    "_apply_": lambda func, *args, **kwargs: func(*args, **kwargs),
    "_binop_": _guarded_binop,
}

_STORABLE_SCALARS = (str, int, float, bool, type(None), datetime, date, timedelta, Decimal)


def storable_problem(value: Any, path: str, depth: int = 0) -> str | None:
    """Why a value cannot be kept as case data (JSON plus dates), or None if it can."""
    if depth > 64:
        return f"{path} is nested more than 64 levels deep"
    if isinstance(value, _STORABLE_SCALARS):
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            problem = storable_problem(item, f"{path}[{index}]", depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path} has a key of type {type(key).__name__}; keys must be text"
            problem = storable_problem(item, f"{path}.{key}", depth + 1)
            if problem:
                return problem
        return None
    return f"{path} holds a {type(value).__name__}, which cannot be stored in the case data"


_LINE_PREFIX = re.compile(r"^Line (\d+|None): ")


@functools.lru_cache(maxsize=4096)
def _compile(source: str, mode: str) -> CodeType:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            return compile_restricted(source, SCRIPT_FILENAME, mode, policy=GovflowPolicy)
    except SyntaxError as exc:
        raw = exc.args[0] if exc.args else str(exc)
        parts = [str(m) for m in raw] if isinstance(raw, tuple | list) else [str(exc.msg or raw)]
        line = exc.lineno
        messages: list[str] = []
        for part in parts:
            match = _LINE_PREFIX.match(part)
            if match:
                if line is None and match.group(1).isdigit():
                    line = int(match.group(1))
                part = part[match.end() :]
            part = part.rstrip(".")
            if part not in messages:
                messages.append(part)
        raise ScriptError("; ".join(messages), line) from None


def compile_check(source: str, mode: str = "exec") -> None:
    """Raise ScriptError if the source would be refused; used by lint."""
    _compile(source, mode)


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    deadline = time.monotonic() + seconds

    def local_trace(frame: FrameType, event: str, arg: Any) -> Any:
        if time.monotonic() > deadline:
            raise _Timeout
        return local_trace

    def global_trace(frame: FrameType, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename == SCRIPT_FILENAME:
            if time.monotonic() > deadline:
                raise _Timeout
            return local_trace
        return None

    previous = sys.gettrace()
    sys.settrace(global_trace)
    try:
        yield
    finally:
        sys.settrace(previous)


def _script_line(exc: BaseException) -> int | None:
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == SCRIPT_FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


class Sandbox:
    """Evaluates expressions and runs scripts against case data, within limits."""

    def __init__(self, timeout_s: float, helpers: Mapping[str, Any] | None = None) -> None:
        self.timeout_s = timeout_s
        self.helpers: dict[str, Any] = dict(helpers or {})

    def _globals(self, data: Mapping[str, Any]) -> dict[str, Any]:
        scope: dict[str, Any] = dict(self.helpers)
        scope.update(data)
        scope.update(_GUARDS)
        scope["__builtins__"] = _SAFE_BUILTINS
        # case data that may be absent (optional form fields): get_var('department', '')
        scope["get_var"] = lambda name, default=None: data.get(name, default)
        return scope

    def evaluate(self, expression: str, data: Mapping[str, Any]) -> Any:
        code = _compile(expression.strip(), "eval")
        scope = self._globals(data)
        return self._run(lambda: eval(code, scope))

    def execute(self, script: str, data: dict[str, Any]) -> None:
        """Run a script; names it assigns become case data. On failure `data` is unchanged."""
        code = _compile(script, "exec")
        scope = self._globals(data)
        self._run(lambda: exec(code, scope))
        reserved = set(_GUARDS) | {"__builtins__", "_print", "printed"}
        result: dict[str, Any] = {}
        for key, value in scope.items():
            if key in reserved or key.startswith("_"):
                continue
            if key in self.helpers and key not in data and value is self.helpers[key]:
                continue
            if callable(value) or isinstance(value, ModuleType):
                continue
            problem = storable_problem(value, key)
            if problem:
                raise ScriptError(problem)
            result[key] = value
        data.clear()
        data.update(result)

    def _run(self, action: Callable[[], Any]) -> Any:
        try:
            with _time_limit(self.timeout_s):
                return action()
        except _Timeout:
            raise ScriptError(f"script ran longer than the limit of {self.timeout_s:g} s") from None
        except ScriptError as exc:
            if exc.line is None:
                raise ScriptError(exc.reason, _script_line(exc)) from None
            raise
        except RecursionError as exc:
            raise ScriptError("recursion too deep", _script_line(exc)) from None
        except MemoryError as exc:
            raise ScriptError("script ran out of memory", _script_line(exc)) from None
        except Exception as exc:
            raise ScriptError(f"{type(exc).__name__}: {exc}", _script_line(exc)) from None
