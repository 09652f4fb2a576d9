"""Handlers for service-task topics and the policy (attempts, backoff, timeout) of each topic.

Handler modules (the `workers` package by default) register with `@handler("topic")`. A handler
gets the job's input variables and returns output variables; `BusinessError(code)` takes the
service task's BPMN error boundary event with that errorCode.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.orm import Session

from engine.store.db import Database


class BusinessError(Exception):
    """An expected, modelled failure (invalid ID number, fee unpaid): goes to the BPMN error
    boundary event whose errorCode is `code`; never retried."""

    def __init__(
        self, code: str, message: str = "", variables: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message or code)
        self.code = code
        self.message = message or code
        self.variables = dict(variables or {})


@dataclass(frozen=True)
class TopicPolicy:
    max_attempts: int = 3
    backoff_s: float = 2.0
    timeout_s: float = 60.0

    def backoff_for(self, attempt: int) -> float:
        """Exponential backoff: backoff, 2x, 4x ... after the 1st, 2nd, 3rd failed attempt."""
        return self.backoff_s * (2 ** max(0, attempt - 1))


@dataclass
class JobContext:
    """What a handler may know about the job it runs, and where it may record its work."""

    job_id: str
    instance_id: str
    business_key: str | None
    topic: str
    attempt: int
    database: Database
    extra: dict[str, Any] = field(default_factory=dict)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.database.session() as session:
            yield session


Handler = Callable[[JobContext, dict[str, Any]], dict[str, Any] | None]


@dataclass(frozen=True)
class HandlerSpec:
    topic: str
    func: Handler
    policy: TopicPolicy


_REGISTRY: dict[str, HandlerSpec] = {}


def handler(
    topic: str, max_attempts: int = 3, backoff_s: float = 2.0, timeout_s: float = 60.0
) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        _REGISTRY[topic] = HandlerSpec(topic, func, TopicPolicy(max_attempts, backoff_s, timeout_s))
        return func

    return register


def lookup(topic: str) -> HandlerSpec | None:
    _load_pending()
    return _REGISTRY.get(topic)


def topics() -> list[str]:
    _load_pending()
    return sorted(_REGISTRY)


def _overrides() -> dict[str, dict[str, Any]]:
    raw = os.environ.get("GOVFLOW_TOPICS")
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"GOVFLOW_TOPICS is not valid JSON: {exc.msg}") from None
    if not isinstance(value, dict):
        raise ValueError(
            'GOVFLOW_TOPICS must map topics to {"max_attempts", "backoff_s", "timeout_s"}'
        )
    return value


def policy_for(topic: str) -> TopicPolicy:
    """The registered policy, overridden by GOVFLOW_TOPICS (JSON keyed by topic)."""
    spec = lookup(topic)
    policy = spec.policy if spec else TopicPolicy()
    override = _overrides().get(topic)
    if override:
        allowed = {
            k: override[k] for k in ("max_attempts", "backoff_s", "timeout_s") if k in override
        }
        policy = replace(policy, **allowed)
    return policy


def queue_for(topic: str) -> str:
    """One queue per topic family (`verify.id_card` -> `verify`), scaled by its own workers."""
    return topic.split(".", 1)[0] or "default"


_loaded: set[str] = set()
_pending: list[str] = []


def load_modules(names: list[str]) -> None:
    for name in names:
        if name and name not in _loaded:
            importlib.import_module(name)
            _loaded.add(name)


def configure(names: list[str]) -> None:
    """Name the handler modules to import on first use (so a CLI call that runs no job does not
    pay for importing every handler's libraries)."""
    _pending.extend(n for n in names if n not in _loaded and n not in _pending)


def _load_pending() -> None:
    while _pending:
        load_modules([_pending.pop(0)])
