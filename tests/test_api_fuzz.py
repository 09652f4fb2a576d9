"""schemathesis over /openapi.json (bounded): whatever the schema allows, no 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from engine.api.app import create_app
from tests.api_support import ApiHarness
from tests.test_api import _upload_bundle


@pytest.fixture(scope="module")
def fuzzed(module_app):
    api = ApiHarness(module_app)
    api.user("admin", ["admin", "ops", "designer"])
    api.user("front", ["clerk"], ["center"])
    api.post("/api/definitions", "admin", files=_upload_bundle())
    api.post(
        "/api/instances", "front", json={"definition_key": "joint_review", "business_key": "FUZZ-1"}
    )
    return api


def _operations() -> list[tuple[str, GenerationMode]]:
    """Each operation in /openapi.json with valid data, and with invalid data where it takes
    any input (the schema does not depend on the database)."""
    from dataclasses import replace

    from engine.app import Govflow
    from engine.config import Settings

    govflow = Govflow(replace(Settings(), database_url="sqlite://"))
    document = create_app(govflow).openapi()
    cases = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            cases.append((label, GenerationMode.POSITIVE))
            if operation.get("parameters") or operation.get("requestBody"):
                cases.append((label, GenerationMode.NEGATIVE))
    return sorted(cases, key=lambda c: (c[0], c[1].value))


@pytest.mark.parametrize(
    ("label", "mode"), _operations(), ids=lambda v: v.value if isinstance(v, GenerationMode) else v
)
def test_no_request_gives_a_server_error(fuzzed, label, mode):
    loaded = schemathesis.openapi.from_asgi("/openapi.json", fuzzed.client.app)
    operation = loaded.find_operation_by_label(label)
    token = fuzzed.login("admin")

    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=10,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        headers = dict(case.headers or {})
        headers["Authorization"] = f"Bearer {token}"
        response = case.call(headers=headers)
        case.validate_response(response, checks=(not_a_server_error,))

    try:
        check()
    except Unsatisfiable:
        # Only free-form strings are accepted here, so no input violates the schema.
        assert mode is GenerationMode.NEGATIVE


def test_every_endpoint_is_documented_with_request_and_response_schemas(app):
    document = create_app(app).openapi()
    assert set(document["paths"]) >= {
        "/api/auth/token",
        "/api/me",
        "/api/definitions",
        "/api/definitions/{key}",
        "/api/definitions/{key}/versions/{version}/bpmn",
        "/api/instances",
        "/api/instances/{instance_id}",
        "/api/instances/{instance_id}/cancel",
        "/api/instances/{instance_id}/suspend",
        "/api/instances/{instance_id}/resume",
        "/api/messages",
        "/api/tasks",
        "/api/tasks/{task_id}",
        "/api/tasks/{task_id}/claim",
        "/api/tasks/{task_id}/unclaim",
        "/api/tasks/{task_id}/assign",
        "/api/tasks/{task_id}/complete",
        "/api/tasks/{task_id}/comments",
    }
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            success = next(code for code in responses if code.startswith("2"))
            assert responses[success].get("content") or success == "204", (
                f"{method} {path} has no response schema"
            )
            if (
                method in ("post", "put")
                and path not in ("/api/auth/logout",)
                and "{task_id}/claim" not in path
                and "unclaim" not in path
            ):
                assert "requestBody" in operation or "parameters" in operation, (
                    f"{method} {path} documents no request"
                )
            if path != "/api/auth/token":
                assert "401" in responses, f"{method} {path} does not document 401"
