"""Rectification work orders: the problem list, its figures and exports, and ledger import."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Response, UploadFile

from engine.api.deps import ActorDep, ClerkOrOpsDep, GovflowDep
from engine.api.routes import errors
from engine.api.schemas import FiguresOut, LedgerImportOut, WorkOrderPage
from engine.errors import InvalidInput
from engine.runtime import clock, ledger, problem_list
from engine.runtime.work_orders import CATEGORIES, SOURCES, STATUSES

router = APIRouter(prefix="/api", tags=["rectification"])

Text = Annotated[str | None, Query(max_length=100)]


@dataclass
class FilterParams:
    department: Text = None
    window: Text = None
    category: Annotated[str | None, Query(description=" / ".join(CATEGORIES))] = None
    status: Annotated[str | None, Query(description=" / ".join(STATUSES))] = None
    source: Annotated[str | None, Query(description=" / ".join(SOURCES))] = None
    reported_from: date | None = None
    reported_to: date | None = None
    overdue: Annotated[bool | None, Query(description="only overdue, or only not")] = None

    def filters(self) -> problem_list.Filters:
        return problem_list.Filters(**self.__dict__)


FiltersDep = Annotated[FilterParams, Depends()]


@router.get("/work-orders", response_model=WorkOrderPage, responses=errors(401, 403, 422))
def list_work_orders(
    actor: ClerkOrOpsDep,
    govflow: GovflowDep,
    params: FiltersDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=10**6)] = 0,
) -> dict[str, Any]:
    """The problem list (问题清单), newest first; a department's clerks see their own."""
    with govflow.database.read_session() as session:
        items, total = problem_list.list_orders(
            session,
            actor,
            params.filters(),
            govflow.services.calendars.get(),
            clock.now(),
            limit,
            offset,
        )
    return {"items": items, "total": total}


@router.get(
    "/work-orders/figures", response_model=list[FiguresOut], responses=errors(401, 403, 422)
)
def work_order_figures(
    actor: ClerkOrOpsDep,
    govflow: GovflowDep,
    params: FiltersDep,
    by: Annotated[str, Query(pattern="^(" + "|".join(problem_list.GROUPS) + ")$")] = "department",
) -> list[dict[str, Any]]:
    """Per group: totals, rectification rate, on-time rate and satisfaction."""
    with govflow.database.read_session() as session:
        return problem_list.figures(
            session, actor, by, params.filters(), govflow.services.calendars.get(), clock.now()
        )


@router.get(
    "/work-orders/export",
    response_class=Response,
    responses={
        200: {
            "content": {"text/csv": {}, problem_list.XLSX_TYPE: {}},
            "description": "the problem list as a file",
        },
        **errors(401, 403, 422),
    },
)
def export_work_orders(
    actor: ClerkOrOpsDep,
    govflow: GovflowDep,
    params: FiltersDep,
    format: Annotated[str, Query(pattern="^(csv|xlsx)$")] = "csv",
) -> Response:
    with govflow.database.read_session() as session:
        rows, _ = problem_list.list_orders(
            session,
            actor,
            params.filters(),
            govflow.services.calendars.get(),
            clock.now(),
            limit=10**9,
        )
    if format == "xlsx":
        body, media = problem_list.to_xlsx(rows), problem_list.XLSX_TYPE
    else:
        body, media = problem_list.to_csv(rows), "text/csv; charset=utf-8"
    return Response(
        content=body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="work-orders.{format}"'},
    )


@router.post(
    "/ledger", response_model=LedgerImportOut, status_code=201, responses=errors(401, 403, 422)
)
def import_ledger(
    actor: ActorDep,
    govflow: GovflowDep,
    file: Annotated[UploadFile, File(description="CSV or XLSX with window, department, ...")],
) -> dict[str, Any]:
    """Import a problem ledger: all rows become work orders, or none do and each bad row is
    listed with its line and reason."""
    name = PurePosixPath((file.filename or "ledger.csv").replace("\\", "/")).name
    if not name.lower().endswith((".csv", ".xlsx")):
        raise InvalidInput(
            f"{name}: a ledger is a .csv or .xlsx file",
            [{"path": "file", "message": "unsupported file type"}],
        )
    data = file.file.read(ledger.MAX_BYTES + 1)
    return ledger.import_file(govflow, actor, data, name)
