"""The FastAPI application."""

from __future__ import annotations

import anyio
from fastapi import FastAPI

from engine import web
from engine.api import errors
from engine.api.body_limit import BodyLimit
from engine.api.routes import (
    admin,
    auth,
    calendar,
    catalog,
    definitions,
    instances,
    jobs,
    one_thing,
    ops,
    tasks,
    work_orders,
)
from engine.app import Govflow

API_THREADS = 32
DOCUMENTED_TAGS = (
    "auth",
    "definitions",
    "instances",
    "tasks",
    "jobs",
    "calendar",
    "catalog",
    "one thing",
    "rectification",
    "ops",
    "admin",
)


def create_app(govflow: Govflow | None = None) -> FastAPI:
    govflow = govflow or Govflow()
    app = FastAPI(
        title="govflow",
        version="0.1.0",
        description=(
            "BPMN workflow engine for a county government service center. Log in at "
            "/api/auth/token (OAuth2 password form) and send the token as `Authorization: Bearer`. "
            "Errors are JSON {error, message, details}."
        ),
        # the documentation's order, whatever order the routers are matched in
        openapi_tags=[{"name": name} for name in DOCUMENTED_TAGS],
    )
    app.state.govflow = govflow
    errors.install(app)
    # Routes are matched in order, each router's list walked twice per request: the routers a
    # clerk's every request goes to come first (see docs/performance.md, "Sunday, an Intel
    # Xeon"); no two routers' paths overlap, so the order changes nothing else.
    for module in (
        tasks,
        instances,
        auth,
        definitions,
        jobs,
        calendar,
        catalog,
        one_thing,
        work_orders,
        ops,
        admin,
    ):
        app.include_router(module.router)
    web.install(app)

    @app.on_event("startup")
    async def limit_request_threads() -> None:
        """At most API_THREADS requests run at once; with two pooled connections each they
        can never all wait for a connection (the pool holds 80)."""
        anyio.to_thread.current_default_thread_limiter().total_tokens = API_THREADS

    app.add_middleware(
        BodyLimit,
        json_limit=govflow.settings.max_json_bytes,
        upload_limit=govflow.settings.max_upload_bytes,
    )
    return app
