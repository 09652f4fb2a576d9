"""The diagram of a deployed version, with what a case or a whole process did on it."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.api.routes.definitions import _main_file
from engine.bpmn.diagram import DiagramError, read_diagram, render_svg
from engine.store.models import DefinitionVersion, ElementState, Incident, Instance


def version_svg(
    session: Session,
    version_id: int,
    states: dict[str, str] | None = None,
    counts: dict[str, int] | None = None,
) -> tuple[str | None, str | None]:
    """(svg, None), or (None, why there is no drawing)."""
    row = session.get(DefinitionVersion, version_id)
    if row is None:
        return None, "no such version"
    sources = dict(row.sources)
    if not sources:
        return None, "the version has no BPMN source"
    main = _main_file(row.spec, sources)
    try:
        diagram = read_diagram(sources[main].encode("utf-8"), main)
    except DiagramError as exc:
        return None, str(exc)
    except Exception as exc:  # an unreadable diagram must not break the page
        return None, f"the diagram cannot be drawn: {exc}"
    return render_svg(diagram, states, counts, title=main), None


def instance_states(session: Session, instance_id: str) -> dict[str, str]:
    """Element id -> failed, active or completed, in that order of precedence."""
    states: dict[str, str] = {}
    failing = set(
        session.scalars(
            select(Incident.element_id).where(
                Incident.instance_id == instance_id, Incident.resolved_at.is_(None)
            )
        )
    )
    for row in session.scalars(select(ElementState).where(ElementState.instance_id == instance_id)):
        if row.element_id in failing:
            states[row.element_id] = "failed"
            continue
        if row.failed and row.active:
            states[row.element_id] = "failed"
        elif row.active:
            states[row.element_id] = "active"
        elif row.completed:
            states[row.element_id] = "completed"
    return states


def process_counts(session: Session, definition_key: str, version: int) -> dict[str, int]:
    """How many tokens passed each element over all cases of a version (the heatmap)."""
    query = (
        select(ElementState.element_id, func.sum(ElementState.completed + ElementState.active))
        .join(Instance, Instance.id == ElementState.instance_id)
        .where(Instance.definition_key == definition_key, Instance.definition_version == version)
        .group_by(ElementState.element_id)
    )
    return {element: int(total or 0) for element, total in session.execute(query)}
