"""Request and response bodies of the HTTP API (they make up /openapi.json)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["clerk", "designer", "ops", "admin"]
InstanceStatus = Literal["running", "waiting", "completed", "cancelled", "error", "suspended"]
TaskState = Literal["open", "completed", "cancelled"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    """One thing wrong: a field path (form and request errors) or a file and line (BPMN)."""

    path: str | None = None
    file: str | None = None
    line: int | None = None
    message: str


class ErrorBody(BaseModel):
    error: str = Field(description="machine-readable code, e.g. not_found, forbidden, invalid")
    message: str
    details: list[ErrorDetail] | dict[str, Any] | None = None


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime


class MeOut(BaseModel):
    username: str
    display_name: str
    roles: list[Role]
    departments: list[str]


class VersionOut(BaseModel):
    version: int
    deployed_at: datetime
    deployed_by: str
    content_hash: str
    files: list[str]
    forms: list[str]
    instances: int


class DefinitionOut(BaseModel):
    key: str
    name: str
    latest_version: int


class DefinitionDetailOut(DefinitionOut):
    versions: list[VersionOut]


class DeployedProcessOut(BaseModel):
    key: str
    name: str
    version: int
    created: bool


class DeployOut(BaseModel):
    processes: list[DeployedProcessOut]
    forms: list[str]


class LintProblemOut(BaseModel):
    file: str
    line: int | None
    message: str


class LintOut(BaseModel):
    problems: list[LintProblemOut]


class InstanceCreate(Strict):
    definition_key: str = Field(min_length=1, max_length=200)
    version: int | None = Field(default=None, ge=1)
    business_key: str | None = Field(default=None, min_length=1, max_length=200)
    variables: dict[str, Any] = Field(default_factory=dict)


class InstanceOut(BaseModel):
    id: str
    status: InstanceStatus
    business_key: str | None
    definition_key: str
    version: int
    started_at: datetime | None = None
    started_by: str | None = None
    updated_at: datetime | None = None
    ended_at: datetime | None = None
    case_status: int | None = Field(
        default=None, description="the latest national 1-15 办理状态 code the case reached"
    )
    case_status_name: str | None = None


class InstancePage(BaseModel):
    items: list[InstanceOut]
    next_cursor: str | None = Field(description="pass as `cursor` to get the next page")


class TaskOut(BaseModel):
    id: str
    instance_id: str
    definition_key: str
    business_key: str | None
    element_id: str
    name: str
    state: TaskState
    assignee: str | None
    candidate_groups: list[str]
    candidate_users: list[str]
    form_key: str | None
    priority: int
    due_at: datetime | None
    follow_up_at: datetime | None
    overdue: bool
    due_soon: bool = Field(description="due by the close of the next working day")
    due_provisional_year: int | None = Field(
        description="the due date went through this year the calendar does not know"
    )
    created_at: datetime | None
    claimed_at: datetime | None
    completed_at: datetime | None
    completed_by: str | None


class TaskDetailOut(TaskOut):
    form_schema: dict[str, Any] | None = Field(description="JSON Schema of the task's form")
    data: dict[str, Any] = Field(description="the case data as it is now")


class IncidentOut(BaseModel):
    id: int
    instance_id: str | None = None
    kind: str
    element_id: str | None
    task_id: str | None
    message: str
    created_at: datetime | None
    resolved_at: datetime | None
    resolved_by: str | None


class ElementOut(BaseModel):
    element_id: str
    active: int
    completed: int
    failed: int
    cancelled: int


class HistoryOut(BaseModel):
    at: datetime | None
    actor: str
    command: str
    task_id: str | None
    element_id: str | None
    data: dict[str, Any] | None
    details: dict[str, Any] | None


class ClockOut(BaseModel):
    name: str
    state: Literal["running", "paused", "stopped"]
    workdays: int
    started_on: str
    paused_since: str | None
    paused_workdays: int
    due_date: str
    due_at: datetime
    remaining_workdays: int | None
    overdue: bool
    due_soon: bool
    provisional_year: int | None
    reason: str | None


class ClockIn(Strict):
    workdays: int | None = Field(default=None, ge=0, le=3650, description="with start")
    reason: str = Field(default="", max_length=400)


class CaseStatusOut(BaseModel):
    code: int
    name: str
    note: str
    actor: str
    at: datetime


class InstanceDetailOut(InstanceOut):
    variables: dict[str, Any]
    case_statuses: list[CaseStatusOut]
    clocks: list[ClockOut]
    tasks: list[TaskOut]
    incidents: list[IncidentOut]
    elements: list[ElementOut]
    history: list[HistoryOut]


class ReasonIn(Strict):
    reason: str = Field(default="", max_length=2000)


class MessageIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    correlation_key: str | None = Field(default=None, max_length=200)
    payload: dict[str, Any] = Field(default_factory=dict)


class MessageOut(BaseModel):
    instance_id: str
    started: bool = Field(description="true when the message started a new case")


class AssignIn(Strict):
    user: str = Field(min_length=1, max_length=64)


class CompleteIn(Strict):
    data: dict[str, Any] = Field(default_factory=dict)


class CommentIn(Strict):
    body: str = Field(min_length=1, max_length=4000)


class CommentOut(BaseModel):
    id: int
    task_id: str
    author: str
    body: str
    created_at: datetime


class DepartmentIn(Strict):
    code: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)


class DepartmentOut(BaseModel):
    code: str
    name: str


class UserIn(Strict):
    username: str = Field(min_length=1, max_length=64)
    roles: list[Role] = Field(min_length=1)
    departments: list[str] = Field(default_factory=list)
    password: str | None = Field(default=None, min_length=8, max_length=200)
    display_name: str = Field(default="", max_length=200)


class UserOut(BaseModel):
    username: str
    display_name: str
    roles: list[str]
    departments: list[str]
    active: bool


class CalendarDayIn(Strict):
    date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    name: str = Field(default="", max_length=100)


class CalendarYearIn(Strict):
    holidays: list[CalendarDayIn] = Field(default_factory=list, description="days off")
    workdays: list[CalendarDayIn] = Field(default_factory=list, description="make-up working days")


class CalendarYearOut(BaseModel):
    year: int
    known: bool
    source: str | None
    holidays: list[dict[str, str]]
    workdays: list[dict[str, str]]


class CalendarEditIn(Strict):
    is_workday: bool
    name: str = Field(default="", max_length=100)


class RecomputedOut(BaseModel):
    tasks: int
    clocks: int
    timers: int
    still_provisional: int


class WorkdaysOut(BaseModel):
    date: str
    provisional: bool
    unknown_years: list[int]


class ProvisionalOut(BaseModel):
    year: int
    tasks: int
    timers: int
    clocks: int
    instances: int


class CatalogItemIn(Strict):
    """A service item (事项) as the catalogue holds it."""

    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    name: str = Field(min_length=1, max_length=200)
    department: str = Field(min_length=1, max_length=64)
    promised_workdays: int = Field(ge=1, le=365, description="承诺办结时限, in working days")
    approval_levels: Literal[1, 2] = Field(description="1: 承办 only; 2: 承办 then 审核签发")
    certificate: str | None = Field(default=None, max_length=200)
    fee_amount: float = Field(default=0, ge=0, le=1_000_000, allow_inf_nan=False)
    required_materials: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=100
    )
    optional_materials: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=100
    )
    rongque_allowed: bool = Field(
        default=False, description="容缺受理 allowed when only optional materials are missing"
    )


class CatalogItemOut(BaseModel):
    code: str
    kind: str
    name: str
    department: str
    promised_workdays: int | float | None = None
    approval_levels: int | None = None
    certificate: str | None = None
    fee_amount: float | None = None
    required_materials: list[str] = Field(default_factory=list)
    optional_materials: list[str] = Field(default_factory=list)
    rongque_allowed: bool = False
    model_config = ConfigDict(extra="allow")


class PolicyIn(Strict):
    value: int | float | str | bool | list[Any] | dict[str, Any] = Field(
        description="a JSON value; keys ending in _workdays take a whole number from 1 to 60"
    )


class WorkOrderOut(BaseModel):
    instance_id: str
    number: str
    source: str
    window: str
    department: str | None
    category: str | None
    difficulty: str | None
    description: str
    contact: str
    reported_on: str
    origin_case: str | None
    status: str
    due_date: str | None
    overdue: bool
    contact_overdue: bool
    escalated: bool
    returns: int
    extension_workdays: int
    answered_on: str | None
    on_time: bool | None
    satisfied: bool | None
    reopened: int
    closed_on: str | None


class WorkOrderPage(BaseModel):
    items: list[WorkOrderOut]
    total: int


class FiguresOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    total: int
    closed: int
    open: int
    overdue: int
    escalated: int
    answered: int
    on_time: int
    satisfied: int
    followed_up: int
    rectification_rate: float | None
    on_time_rate: float | None
    satisfaction_rate: float | None


class LedgerRowOut(BaseModel):
    line: int
    instance_id: str
    number: str | None


class LedgerImportOut(BaseModel):
    imported: int
    work_orders: list[LedgerRowOut]


class ApplicationIn(Strict):
    data: dict[str, Any] = Field(description="the combined form, as GET /api/one-thing/{code}/form")


class ItemFiguresOut(BaseModel):
    item_code: str
    name: str
    kind: str
    volume: int
    concluded: int
    open: int
    median_workdays: float | None
    p90_workdays: float | None
    on_time_rate: float | None
