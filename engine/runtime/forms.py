"""Form submissions checked against the task's JSON Schema (draft 2020-12)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError

_FORM_PREFIXES = (
    "embedded:app:",
    "embedded:deployment:",
    "camunda-forms:deployment:",
    "deployment:",
    "app:",
)
_FORM_SUFFIXES = (".schema.json", ".json", ".form", ".html")
_REQUIRED = re.compile(r"^'(.+)' is a required property$")


@dataclass(frozen=True)
class FieldError:
    path: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


def form_name(form_key: str) -> str:
    """The schema a formKey refers to: `accept`, `forms/accept.schema.json` and
    `embedded:app:forms/accept.html` all name `accept`."""
    key = form_key.strip()
    for prefix in _FORM_PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix) :]
    key = key.rsplit("/", 1)[-1]
    for suffix in _FORM_SUFFIXES:
        if key.endswith(suffix):
            key = key[: -len(suffix)]
            break
    return key


def schema_problem(schema: Any) -> str | None:
    """Why a document is not a usable JSON Schema, or None."""
    if not isinstance(schema, dict):
        return "a form schema must be a JSON object"
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        return f"not a valid JSON Schema at {where}: {exc.message}"
    return None


def validate_submission(schema: dict[str, Any] | None, data: Any) -> list[FieldError]:
    """Every problem with the submitted data, each with the JSON path of the field."""
    if not isinstance(data, dict):
        return [FieldError("$", "form data must be a JSON object")]
    if schema is None:
        return []
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    errors: list[FieldError] = []
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.path))):
        path = error.json_path
        missing = _REQUIRED.match(error.message) if error.validator == "required" else None
        if missing:
            name = missing.group(1)
            path = (
                f"{path}.{name}"
                if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name)
                else f"{path}['{name}']"
            )
            message = "is required"
        else:
            message = error.message
        errors.append(FieldError(path, message))
    return errors
