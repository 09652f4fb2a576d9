"""Service work: job figures per topic, and the certificates handlers issued."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from sqlalchemy import select

from engine.api.deps import ActorDep, GovflowDep, OpsDep
from engine.api.routes import errors
from engine.errors import NotFound
from engine.jobs import store as job_store
from engine.runtime import queries
from engine.store.models import Certificate

router = APIRouter(prefix="/api", tags=["jobs"])


@router.get("/jobs/metrics", response_model=dict[str, dict[str, Any]], responses=errors(401, 403))
def job_metrics(actor: OpsDep, govflow: GovflowDep) -> dict[str, dict[str, Any]]:
    """Per topic: pending, running, completed, failed and cancelled jobs, and the seconds from
    a job's creation to its completion (p50, p95)."""
    with govflow.database.read_session() as session:
        return job_store.metrics(session)


@router.get(
    "/certificates/{number}.pdf",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}}, "description": "the certificate"},
        **errors(401, 403, 404),
    },
)
def certificate_pdf(
    actor: ActorDep,
    govflow: GovflowDep,
    number: Annotated[str, Path(max_length=64, pattern=r"^[A-Z0-9]+$")],
) -> Response:
    """Download an issued certificate; anyone who may see its case may download it."""
    with govflow.database.read_session() as session:
        row = session.scalars(select(Certificate).where(Certificate.number == number)).first()
        if row is None:
            raise NotFound(f"no certificate {number}")
        queries.require_instance_visible(session, actor, row.instance_id)
        pdf = row.pdf
    return Response(
        content=pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{number}.pdf"'},
    )
