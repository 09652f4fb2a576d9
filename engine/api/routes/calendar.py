"""The working-day calendar: read a year, import or edit one, count working days, and see
which deadlines are provisional."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query

from engine.api.deps import ActorDep, GovflowDep, OpsDep
from engine.api.routes import errors
from engine.api.schemas import (
    CalendarEditIn,
    CalendarYearIn,
    CalendarYearOut,
    ProvisionalOut,
    RecomputedOut,
    WorkdaysOut,
)
from engine.errors import InvalidInput
from engine.runtime import calendar_ops, workcalendar

router = APIRouter(prefix="/api", tags=["calendar"])

YearPath = Annotated[int, Path(ge=1901, le=2199)]


@router.get("/calendar/add-workdays", response_model=WorkdaysOut, responses=errors(401, 422))
def add_workdays(
    actor: ActorDep,
    govflow: GovflowDep,
    start: Annotated[date, Query(alias="date", description="the day counting starts after")],
    count: Annotated[int, Query(ge=0, le=3650)],
) -> WorkdaysOut:
    """The `count`-th working day after `date`; provisional when the count went through a
    year the calendar does not know."""
    deadline = govflow.services.calendars.get().add_workdays(start, count)
    return WorkdaysOut(
        date=deadline.day.isoformat(),
        provisional=deadline.provisional,
        unknown_years=sorted(deadline.unknown_years),
    )


@router.get("/calendar/{year}", response_model=CalendarYearOut, responses=errors(401, 422))
def get_year(actor: ActorDep, govflow: GovflowDep, year: YearPath) -> CalendarYearOut:
    with govflow.database.read_session() as session:
        return CalendarYearOut.model_validate(workcalendar.year_days(session, year))


@router.put("/calendar/{year}", response_model=RecomputedOut, responses=errors(401, 403, 422))
def import_year(
    actor: OpsDep, govflow: GovflowDep, year: YearPath, body: CalendarYearIn
) -> RecomputedOut:
    """Replace a year's holidays and make-up working days (the State Council's notice), then
    recompute every provisional deadline; the answer says how many moved."""
    raw = {
        "year": year,
        "holidays": [d.model_dump() for d in body.holidays],
        "workdays": [d.model_dump() for d in body.workdays],
    }
    year_file = workcalendar.parse_year(raw, "$")
    return RecomputedOut.model_validate(calendar_ops.import_year(govflow, actor, year_file, "api"))


@router.put("/calendar/days/{day}", response_model=RecomputedOut, responses=errors(401, 403, 422))
def edit_day(
    actor: OpsDep,
    govflow: GovflowDep,
    day: Annotated[str, Path(pattern=r"^\d{4}-\d{2}-\d{2}$")],
    body: CalendarEditIn,
) -> RecomputedOut:
    """Make one day a working day or a day off."""
    try:
        value = date.fromisoformat(day)
    except ValueError:
        raise InvalidInput(
            f"{day} is not a date", [{"path": "day", "message": "not a date"}]
        ) from None
    moved = calendar_ops.edit_day(govflow, actor, value, body.is_workday, body.name)
    return RecomputedOut.model_validate(moved)


@router.get(
    "/deadlines/provisional", response_model=list[ProvisionalOut], responses=errors(401, 403)
)
def provisional(actor: OpsDep, govflow: GovflowDep) -> list[ProvisionalOut]:
    """Per year the calendar does not know: provisional task due dates, timers and clocks."""
    return [ProvisionalOut.model_validate(row) for row in calendar_ops.provisional_summary(govflow)]
