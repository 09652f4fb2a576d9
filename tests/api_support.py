"""Driving the HTTP API in tests: an in-process client with a login per user."""

from __future__ import annotations

import functools
from typing import Any

from fastapi.testclient import TestClient

from engine.accounts import directory
from engine.accounts.passwords import hash_password
from engine.api.app import create_app
from engine.app import Govflow

PASSWORD = "correct horse battery"


@functools.cache
def _password_hash() -> str:
    """Argon2 is slow on purpose; hash the shared test password once per run."""
    return hash_password(PASSWORD)


class ApiHarness:
    def __init__(self, app: Govflow) -> None:
        self.app = app
        self.client = TestClient(create_app(app), raise_server_exceptions=False)
        self.tokens: dict[str, str] = {}

    def user(self, username: str, roles: list[str], departments: list[str] = ()) -> str:
        with self.app.database.session() as session:
            user = directory.add_user(session, username, roles, list(departments))
            user.password_hash = _password_hash()
        return username

    def login(self, username: str) -> str:
        if username not in self.tokens:
            response = self.client.post(
                "/api/auth/token", data={"username": username, "password": PASSWORD}
            )
            assert response.status_code == 200, response.text
            self.tokens[username] = response.json()["access_token"]
        return self.tokens[username]

    def headers(self, username: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.login(username)}"} if username else {}

    def get(self, path: str, as_user: str | None, **kwargs: Any):
        return self.client.get(path, headers=self.headers(as_user), **kwargs)

    def post(self, path: str, as_user: str | None, **kwargs: Any):
        return self.client.post(path, headers=self.headers(as_user), **kwargs)
