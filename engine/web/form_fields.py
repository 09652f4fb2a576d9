"""A task's JSON Schema as HTML form fields, and a submitted HTML form back as typed data.

HTML forms only send strings, so the schema decides each value's type on the way back;
a value that does not convert is kept as typed so the schema check reports it beside its
field instead of the page guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData, UploadFile

TEXTAREA_AT = 200  # a string allowed to be longer than this gets a textarea


@dataclass
class Field:
    name: str
    path: str
    label: str
    widget: str
    required: bool = False
    value: Any = None
    options: list[tuple[str, str]] = field(default_factory=list)
    description: str = ""
    error: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    columns: list[Field] = field(default_factory=list)
    rows: list[list[Field]] = field(default_factory=list)

    @property
    def html_id(self) -> str:
        return "f-" + re.sub(r"[^A-Za-z0-9_-]", "-", self.name)


def _options(schema: dict[str, Any], variables: dict[str, Any]) -> list[tuple[str, str]]:
    if "oneOf" in schema and all("const" in o for o in schema["oneOf"]):
        return [(str(o["const"]), str(o.get("title", o["const"]))) for o in schema["oneOf"]]
    if "enum" in schema:
        names = schema.get("enumNames") or schema.get("x-enum-labels") or []
        return [
            (str(v), str(names[i]) if i < len(names) else str(v))
            for i, v in enumerate(schema["enum"])
        ]
    choices: list[str] = []
    for source in schema.get("x-choices-from", []) or []:
        values = variables.get(source)
        if isinstance(values, list):
            choices += [str(v) for v in values if str(v) not in choices]
    return [(c, c) for c in choices]


def _widget(schema: dict[str, Any], variables: dict[str, Any]) -> str:
    kind = schema.get("type")
    if schema.get("x-widget") == "file":
        return "file"
    if kind == "array":
        items = schema.get("items") or {}
        if items.get("type") == "object":
            return "rows"
        if _options(items, variables) or _options(schema, variables):
            return "checkboxes"
        return "list"
    if kind == "boolean":
        return "checkbox"
    if kind in ("number", "integer"):
        return kind
    if _options(schema, variables):
        return "select"
    if schema.get("format") == "date":
        return "date"
    if schema.get("x-widget") == "textarea" or schema.get("maxLength", 0) > TEXTAREA_AT:
        return "textarea"
    return "text"


def _attrs(schema: dict[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for key, attr in (("minimum", "min"), ("maximum", "max"), ("maxLength", "maxlength")):
        if key in schema:
            attrs[attr] = schema[key]
    if schema.get("type") == "number":
        attrs["step"] = "any"
    return attrs


def build_fields(
    schema: dict[str, Any] | None,
    values: dict[str, Any],
    variables: dict[str, Any],
    errors: dict[str, str] | None = None,
) -> list[Field]:
    """The fields of a form, filled with `values`, each with its error (by JSON path)."""
    if not schema:
        return []
    errors = errors or {}
    required = set(schema.get("required", []))
    fields = []
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict):
            continue
        fields.append(
            _field(name, f"$.{name}", prop, name in required, values.get(name), variables, errors)
        )
    return fields


def _field(
    name: str,
    path: str,
    prop: dict[str, Any],
    required: bool,
    value: Any,
    variables: dict[str, Any],
    errors: dict[str, str],
) -> Field:
    widget = _widget(prop, variables)
    item = Field(
        name=name,
        path=path,
        label=str(prop.get("title") or name),
        widget=widget,
        required=required,
        value=value,
        description=str(prop.get("description") or ""),
        error=errors.get(path),
        attrs=_attrs(prop),
    )
    if widget == "select":
        item.options = _options(prop, variables)
    elif widget == "checkboxes":
        items = prop.get("items") or {}
        item.options = _options(items, variables) or _options(prop, variables)
        item.value = [str(v) for v in value] if isinstance(value, list) else []
    elif widget == "rows":
        items = prop.get("items") or {}
        inner_required = set(items.get("required", []))
        rows = value if isinstance(value, list) and value else [{}]
        item.columns = [
            _field(
                f"{name}.__i__.{sub}",
                f"{path}[__i__].{sub}",
                p,
                sub in inner_required,
                None,
                variables,
                {},
            )
            for sub, p in (items.get("properties") or {}).items()
        ]
        for index, row in enumerate(rows):
            row = row if isinstance(row, dict) else {}
            item.rows.append(
                [
                    _field(
                        f"{name}.{index}.{sub}",
                        f"{path}[{index}].{sub}",
                        p,
                        sub in inner_required,
                        row.get(sub),
                        variables,
                        errors,
                    )
                    for sub, p in (items.get("properties") or {}).items()
                ]
            )
        for index in range(len(rows)):
            if f"{path}[{index}]" in errors and not item.error:
                item.error = f"第 {index + 1} 行: {errors[f'{path}[{index}]']}"
    elif widget == "list":
        values = value if isinstance(value, list) and value else [""]
        item.rows = [
            [
                Field(
                    f"{name}.{i}",
                    f"{path}[{i}]",
                    item.label,
                    "text",
                    value=v,
                    error=errors.get(f"{path}[{i}]"),
                )
            ]
            for i, v in enumerate(values)
        ]
        item.columns = [Field(f"{name}.__i__", f"{path}[__i__]", item.label, "text")]
    return item


def _convert(prop: dict[str, Any], raw: str) -> Any:
    kind = prop.get("type")
    text = raw.strip()
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            return raw
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            return raw
        return int(number) if number.is_integer() and "." not in text else number
    if "enum" in prop and prop["enum"] and not isinstance(prop["enum"][0], str):
        for option in prop["enum"]:
            if str(option) == raw:
                return option
    return raw


async def read_submission(
    schema: dict[str, Any] | None,
    form: FormData,
    store_file: Any,
) -> dict[str, Any]:
    """Typed data from a submitted form. `store_file(name, upload)` keeps an uploaded file
    and returns the value to put in the data (an attachment reference)."""
    data: dict[str, Any] = {}
    if not schema:
        return data
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict):
            continue
        widget = _widget(prop, {})
        if widget == "checkbox" or (widget == "select" and prop.get("type") == "boolean"):
            data[name] = form.get(name) in ("on", "true", "1")
        elif widget == "file":
            upload = form.get(name)
            if isinstance(upload, UploadFile) and upload.filename:
                data[name] = await store_file(name, upload)
        elif widget == "checkboxes" or (prop.get("type") == "array" and "x-choices-from" in prop):
            picked = [str(v) for v in form.getlist(name) if isinstance(v, str)]
            if picked or name in form:
                data[name] = picked
        elif widget in ("rows", "list"):
            rows = _collect_rows(name, prop, form)
            if rows or any(key.startswith(f"{name}.") for key in form):
                data[name] = rows
        else:
            raw = form.get(name)
            if isinstance(raw, str) and raw.strip() != "":
                data[name] = _convert(prop, raw)
    return data


def _collect_rows(name: str, prop: dict[str, Any], form: FormData) -> list[Any]:
    items = prop.get("items") or {}
    indexes: set[int] = set()
    pattern = re.compile(rf"^{re.escape(name)}\.(\d+)(?:\.|$)")
    for key in form:
        match = pattern.match(key)
        if match:
            indexes.add(int(match.group(1)))
    rows: list[Any] = []
    for index in sorted(indexes)[:500]:
        if items.get("type") == "object":
            row: dict[str, Any] = {}
            for sub, p in (items.get("properties") or {}).items():
                key = f"{name}.{index}.{sub}"
                if p.get("type") == "boolean":
                    row[sub] = form.get(key) in ("on", "true", "1")
                    continue
                raw = form.get(key)
                if isinstance(raw, str) and raw.strip() != "":
                    row[sub] = _convert(p, raw)
            if any(v not in (None, False) for v in row.values()):
                rows.append(row)
        else:
            raw = form.get(f"{name}.{index}")
            if isinstance(raw, str) and raw.strip() != "":
                rows.append(_convert(items, raw))
    return rows


_TYPES = {
    "number": "数字",
    "integer": "整数",
    "string": "文字",
    "boolean": "是或否",
    "array": "列表",
    "object": "一组数据",
}
_MESSAGES: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(r"^is required$"), lambda m: "必填"),
    (re.compile(r"^True was expected$"), lambda m: "必须勾选"),
    (re.compile(r"is not of type '(\w+)'"), lambda m: f"应为{_TYPES.get(m.group(1), m.group(1))}"),
    (re.compile(r"is not one of"), lambda m: "不是可选的值"),
    (re.compile(r"is less than the minimum of (\S+)"), lambda m: f"不能小于 {m.group(1)}"),
    (re.compile(r"is greater than the maximum of (\S+)"), lambda m: f"不能大于 {m.group(1)}"),
    (re.compile(r"is too long$"), lambda m: "太长"),
    (re.compile(r"is too short$|should be non-empty$"), lambda m: "不能为空"),
    (re.compile(r"is not a 'date'$"), lambda m: "日期格式应为 年-月-日（如 2026-11-27）"),
    (re.compile(r"does not match"), lambda m: "格式不正确"),
    (re.compile(r"has non-unique elements$"), lambda m: "有重复项"),
    (re.compile(r"^(.+) was expected$"), lambda m: f"应为 {m.group(1)}"),
]


def chinese(message: str) -> str:
    """The schema checker's message as a clerk reads it (the original when unknown)."""
    for pattern, text in _MESSAGES:
        match = pattern.search(message)
        if match:
            return str(text(match))
    return message


def errors_by_path(details: Any) -> tuple[dict[str, str], list[str]]:
    """Field errors keyed by JSON path, and the ones that belong to no field."""
    by_path: dict[str, str] = {}
    general: list[str] = []
    for item in details if isinstance(details, list) else []:
        if isinstance(item, dict) and "path" in item:
            path = str(item["path"])
            if path in ("$", ""):
                general.append(chinese(str(item.get("message", ""))))
            else:
                by_path.setdefault(path, chinese(str(item.get("message", ""))))
    return by_path, general
