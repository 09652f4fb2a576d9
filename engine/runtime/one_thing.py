"""Applications for "one thing, done once" bundles (一件事一次办): one combined form, checked
against the schema the catalogue generates, starts the bundle's process (a dedicated one, or the
generic `one_thing` process that runs the catalogue's stages)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.accounts.actor import Actor
from engine.errors import InvalidInput, NotFound
from engine.runtime import bundle_forms
from engine.runtime.catalog import BUNDLE_KIND
from engine.runtime.forms import validate_submission
from engine.store.models import Instance

if TYPE_CHECKING:
    from engine.app import Govflow

PARENT_PROCESS = "one_thing"
"""Every application starts this parent (一窗受理 ... 统一出件); the catalogue's `process` names
the back-office flow it calls: `one_thing_stages` (the catalogue's stages) or a dedicated one."""


def bundle(govflow: Govflow, code: str) -> dict[str, Any]:
    try:
        item = govflow.services.catalog.item(code)
    except KeyError:
        raise NotFound(f"no one-thing bundle {code!r}") from None
    if item["kind"] != BUNDLE_KIND:
        raise NotFound(f"{code!r} is a single item, not a one-thing bundle")
    return item


def form(govflow: Govflow, code: str) -> dict[str, Any]:
    return bundle_forms.schema_for(bundle(govflow, code))


def apply(govflow: Govflow, actor: Actor, code: str, data: dict[str, Any]) -> Instance:
    """Check the combined form, then start the bundle's case (一表申请、一窗受理)."""
    item = bundle(govflow, code)
    errors = validate_submission(bundle_forms.schema_for(item), data)
    if errors:
        raise InvalidInput(
            f"the application for {item['name']} is invalid ({len(errors)} problem(s))",
            [{**e.to_dict(), "path": e.path.replace("$", "$.data", 1)} for e in errors],
        )
    variables = {**data, "bundle_code": code}
    return govflow.runner.start(PARENT_PROCESS, actor, variables=variables)
