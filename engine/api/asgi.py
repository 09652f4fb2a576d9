"""The API as an application factory, for `govflow serve --workers N`.

uvicorn starts each worker process fresh and imports this factory there; the settings come
from the environment (`govflow serve` puts its `--db` there first), so every worker serves
the same database. Dispatcher and scheduler stay in the parent process, once.
"""

from __future__ import annotations

from fastapi import FastAPI

from engine.api.app import create_app
from engine.app import Govflow
from engine.config import Settings
from engine.gc_tuning import tune_for_service


def app_from_environment() -> FastAPI:
    govflow = Govflow(Settings.from_env())
    govflow.ensure_ready()
    app = create_app(govflow)
    tune_for_service()
    return app
