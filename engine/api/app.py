"""The FastAPI application."""

from __future__ import annotations

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
    )
    app.state.govflow = govflow
    errors.install(app)
    for module in (
        auth,
        definitions,
        instances,
        tasks,
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
    app.add_middleware(
        BodyLimit,
        json_limit=govflow.settings.max_json_bytes,
        upload_limit=govflow.settings.max_upload_bytes,
    )
    return app
