"""SQLAlchemy models: the tables govflow keeps.

The instance document is the source of truth for a running case; every other table about an
instance (human tasks, element states, timers, subscriptions, jobs, incidents) is a projection
written in the same transaction by the command runner. The audit log is append-only.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored as UTC and always returned timezone-aware, on SQLite and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    from engine.runtime import clock

    return clock.now()


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Department(Base):
    __tablename__ = "departments"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    token_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class UserRole(Base):
    __tablename__ = "user_roles"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(16), primary_key=True)


class UserDepartment(Base):
    __tablename__ = "user_departments"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    department_code: Mapped[str] = mapped_column(
        ForeignKey("departments.code", ondelete="CASCADE"), primary_key=True
    )


class ProcessDefinition(Base):
    __tablename__ = "process_definitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(400), default="")
    latest_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DefinitionVersion(Base):
    __tablename__ = "definition_versions"
    __table_args__ = (
        UniqueConstraint("definition_id", "version", name="uq_definition_versions_version"),
        UniqueConstraint("definition_id", "content_hash", name="uq_definition_versions_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    definition_id: Mapped[int] = mapped_column(ForeignKey("process_definitions.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    sources: Mapped[dict[str, Any]] = mapped_column(JSON)
    forms: Mapped[dict[str, Any]] = mapped_column(JSON)
    spec: Mapped[str] = mapped_column(Text)
    deployed_at: Mapped[datetime] = mapped_column(default=utcnow)
    deployed_by: Mapped[str] = mapped_column(String(64), default="")


class FormSchema(Base):
    """The latest deployed schema per form key; versions keep their own copies."""

    __tablename__ = "form_schemas"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Instance(Base):
    __tablename__ = "instances"
    __table_args__ = (
        Index("ix_instances_status_definition", "status", "definition_key"),
        # a business-key search's page, newest first, in one walk (migration 0015)
        Index(
            "ix_instances_business_key_started",
            "business_key",
            text("started_at DESC"),
            text("id DESC"),
        ),
        Index("ix_instances_ended_at", "ended_at"),
        Index("ix_instances_started", text("started_at DESC"), text("id DESC")),
        # the cases a clerk started, newest first, for their case list (migration 0016)
        Index(
            "ix_instances_started_by",
            "started_by",
            text("started_at DESC"),
            text("id DESC"),
        ),
        Index(
            "ix_instances_live_updated",
            "updated_at",
            postgresql_where=text("status IN ('running', 'waiting')"),
            sqlite_where=text("status IN ('running', 'waiting')"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    definition_version_id: Mapped[int] = mapped_column(ForeignKey("definition_versions.id"))
    definition_key: Mapped[str] = mapped_column(String(200))
    definition_version: Mapped[int] = mapped_column(Integer)
    business_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer, default=1)
    document: Mapped[str] = mapped_column(Text)
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    steps_executed: Mapped[int] = mapped_column(BigInteger, default=0)
    started_by: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(nullable=True)
    parent_instance_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    case_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    archived_at: Mapped[datetime | None] = mapped_column(nullable=True)


class ArchivedDocument(Base):
    """An ended case's instance document, compressed and out of the live table (retention)."""

    __tablename__ = "archived_documents"

    instance_id: Mapped[str] = mapped_column(
        ForeignKey("instances.id", ondelete="CASCADE"), primary_key=True
    )
    document: Mapped[bytes] = mapped_column(LargeBinary)
    original_bytes: Mapped[int] = mapped_column(BigInteger)
    archived_at: Mapped[datetime] = mapped_column(default=utcnow)


class Attachment(Base):
    """A file a clerk attached to a task's form; the form data holds a reference to it."""

    __tablename__ = "attachments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    instance_id: Mapped[str] = mapped_column(
        ForeignKey("instances.id", ondelete="CASCADE"), index=True
    )
    task_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    filename: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)


class HumanTask(Base):
    __tablename__ = "human_tasks"
    __table_args__ = (
        Index("ix_human_tasks_state_due", "state", "due_at"),
        Index("ix_human_tasks_assignee_state", "assignee", "state"),
        Index(
            "ix_human_tasks_unclaimed_due",
            "due_at",
            postgresql_where=text("state = 'open' AND assignee IS NULL"),
            sqlite_where=text("state = 'open' AND assignee IS NULL"),
        ),
        # "does this case wait on a person?" (stuck detector, projections) without heap reads
        Index(
            "ix_human_tasks_open_instance",
            "instance_id",
            postgresql_where=text("state = 'open'"),
            sqlite_where=text("state = 'open'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    instance_id: Mapped[str] = mapped_column(
        ForeignKey("instances.id", ondelete="CASCADE"), index=True
    )
    element_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(400), default="")
    definition_key: Mapped[str] = mapped_column(String(200))
    business_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="open")
    assignee: Mapped[str | None] = mapped_column(String(64), nullable=True)
    candidate_groups: Mapped[list[Any]] = mapped_column(JSON, default=list)
    candidate_users: Mapped[list[Any]] = mapped_column(JSON, default=list)
    form_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    due_at: Mapped[datetime | None] = mapped_column(nullable=True)
    due_basis: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    due_provisional_year: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    follow_up_at: Mapped[datetime | None] = mapped_column(nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=50)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    completed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class TaskCandidate(Base):
    """One row per candidate group or user of an open task, so worklists are index lookups.

    The task's sort keys are copied here so that a department's worklist is a walk of
    `ix_task_candidates_queue` in worklist order that stops after `limit` rows, instead of
    sorting every open task of the department (see docs/performance.md); its name and
    business key, so that a search of the worklist reads no other task's row.
    """

    __tablename__ = "task_candidates"
    __table_args__ = (
        Index(
            "ix_task_candidates_queue",
            "kind",
            "value",
            "due_at",
            text("priority DESC"),
            "created_at",
        ),
        # the entries claim-next hands out from, in the same order (queries.next_unclaimed_task)
        Index(
            "ix_task_candidates_unclaimed",
            "kind",
            "value",
            "due_at",
            text("priority DESC"),
            "created_at",
            postgresql_where=text("claimed = false"),
            sqlite_where=text("claimed = 0"),
        ),
        # a search for text in a clerk's queues (queries.list_tasks with q=); made by
        # migration 0017 where PostgreSQL has pg_trgm, the search works without it
        Index(
            "ix_task_candidates_text",
            "name",
            "business_key",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops", "business_key": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
    )

    task_id: Mapped[str] = mapped_column(
        ForeignKey("human_tasks.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    value: Mapped[str] = mapped_column(String(200), primary_key=True)
    due_at: Mapped[datetime | None] = mapped_column(nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=50, server_default="50")
    created_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # whether the task has an assignee: kept by claim, unclaim and assign, so claim-next's
    # walk never meets the claimed tasks that stay in the worklist
    claimed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # the task's name and business key, so a search of a clerk's queues reads these rows only
    name: Mapped[str | None] = mapped_column(String(400), nullable=True)
    business_key: Mapped[str | None] = mapped_column(String(200), nullable=True)


class ElementState(Base):
    """Per instance and BPMN element: how many tokens are there now and how many went through."""

    __tablename__ = "element_states"

    instance_id: Mapped[str] = mapped_column(
        ForeignKey("instances.id", ondelete="CASCADE"), primary_key=True
    )
    element_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    active: Mapped[int] = mapped_column(Integer, default=0)
    completed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    cancelled: Mapped[int] = mapped_column(Integer, default=0)


class Timer(Base):
    """A timer waiting in an instance, or a timer start event of a deployed version
    (instance_id empty, definition_version_id set)."""

    __tablename__ = "timers"
    __table_args__ = (Index("ix_timers_state_due", "state", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_id: Mapped[str | None] = mapped_column(
        ForeignKey("instances.id", ondelete="CASCADE"), index=True, nullable=True
    )
    definition_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("definition_versions.id"), nullable=True, index=True
    )
    task_id: Mapped[str] = mapped_column(String(36))
    element_id: Mapped[str] = mapped_column(String(200))
    due_at: Mapped[datetime] = mapped_column()
    basis: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    provisional_year: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    state: Mapped[str] = mapped_column(String(16), default="waiting")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    fired_at: Mapped[datetime | None] = mapped_column(nullable=True)


class MessageSubscription(Base):
    __tablename__ = "message_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(
        ForeignKey("instances.id", ondelete="CASCADE"), index=True
    )
    task_id: Mapped[str] = mapped_column(String(36))
    element_id: Mapped[str] = mapped_column(String(200))
    message_name: Mapped[str] = mapped_column(String(200), index=True)
    correlation_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state_next_run", "state", "next_run_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    instance_id: Mapped[str] = mapped_column(
        ForeignKey("instances.id", ondelete="CASCADE"), index=True
    )
    task_id: Mapped[str] = mapped_column(String(36))
    element_id: Mapped[str] = mapped_column(String(200))
    topic: Mapped[str] = mapped_column(String(200), index=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    next_run_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Incident(Base):
    __tablename__ = "incidents"

    __table_args__ = (
        Index(
            "ix_incidents_open",
            "created_at",
            postgresql_where=text("resolved_at IS NULL"),
            sqlite_where=text("resolved_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(
        ForeignKey("instances.id", ondelete="CASCADE"), index=True
    )
    task_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    element_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AuditEvent(Base):
    """Append-only: who did what, when, to which instance and element, with what data."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_instance", "instance_id", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    command: Mapped[str] = mapped_column(String(64))
    instance_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    task_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    element_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored, so a leaked table leaks no usable token."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class TaskComment(Base):
    __tablename__ = "task_comments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(
        ForeignKey("human_tasks.id", ondelete="CASCADE"), index=True
    )
    instance_id: Mapped[str] = mapped_column(String(36), index=True)
    author: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SentMessage(Base):
    """An SMS the local adapter recorded instead of handing it to a gateway (one per job)."""

    __tablename__ = "sent_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(36), unique=True)
    instance_id: Mapped[str] = mapped_column(String(36), index=True)
    business_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    to: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Certificate(Base):
    """A numbered certificate or licence issued for a case, with its PDF."""

    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    job_id: Mapped[str] = mapped_column(String(36), unique=True)
    instance_id: Mapped[str] = mapped_column(String(36), index=True)
    business_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    kind: Mapped[str] = mapped_column(String(100))
    holder: Mapped[str] = mapped_column(String(200))
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)


class Delivery(Base):
    """A free EMS mail-out of a case's results."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(36), unique=True)
    instance_id: Mapped[str] = mapped_column(String(36), index=True)
    business_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    tracking_number: Mapped[str] = mapped_column(String(13), unique=True)
    recipient: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(String(400))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Payment(Base):
    """A fee paid for a case (recorded by the cashier or a payment platform)."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    business_key: Mapped[str] = mapped_column(String(200), index=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    reference: Mapped[str] = mapped_column(String(64), default="")
    paid_at: Mapped[datetime] = mapped_column(default=utcnow)


class Sequence(Base):
    """Named counters (certificate numbers, tracking serials, case numbers)."""

    __tablename__ = "sequences"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class CalendarYear(Base):
    """A year the working-day calendar knows (others count weekends only, provisionally)."""

    __tablename__ = "calendar_years"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    source: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CalendarDay(Base):
    """A day that breaks the weekday rule: a statutory holiday or a make-up working day."""

    __tablename__ = "calendar_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    is_workday: Mapped[bool] = mapped_column(Boolean)
    name: Mapped[str] = mapped_column(String(100), default="")
    source: Mapped[str] = mapped_column(String(32), default="edit")


class SlaClock(Base):
    """A time limit counted in working days that can pause (补正, 特别程序) and resume."""

    __tablename__ = "sla_clocks"
    __table_args__ = (
        UniqueConstraint("instance_id", "name", name="uq_sla_clocks_instance_name"),
        Index("ix_sla_clocks_state_due", "state", "due_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    workdays: Mapped[int] = mapped_column(Integer)
    started_on: Mapped[date] = mapped_column(Date)
    paused_since: Mapped[date | None] = mapped_column(Date, nullable=True)
    paused_workdays: Mapped[int] = mapped_column(Integer, default=0)
    due_date: Mapped[date] = mapped_column(Date)
    provisional_year: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    state: Mapped[str] = mapped_column(String(16), default="running")
    reason: Mapped[str] = mapped_column(String(400), default="")
    stopped_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CatalogItem(Base):
    """A service item (事项) or a "one thing" bundle the center offers, with its rules."""

    __tablename__ = "catalog_items"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="item")
    name: Mapped[str] = mapped_column(String(200))
    department: Mapped[str] = mapped_column(String(64), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Policy(Base):
    """A configurable rule value (time limits, defaults), editable by ops."""

    __tablename__ = "policies"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CaseStatus(Base):
    """The national 1-15 办理状态 codes a case went through, in order."""

    __tablename__ = "case_statuses"
    __table_args__ = (Index("ix_case_statuses_instance", "instance_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"))
    code: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(40))
    note: Mapped[str] = mapped_column(String(400), default="")
    actor: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)


class WorkOrder(Base):
    """A rectification work order (整改工单) as the problem list shows it; the case that
    carries it is the source of truth, this row is its projection for lists and figures."""

    __tablename__ = "work_orders"
    __table_args__ = (
        Index("ix_work_orders_department_status", "department", "status"),
        Index("ix_work_orders_reported_on", "reported_on"),
    )

    instance_id: Mapped[str] = mapped_column(
        ForeignKey("instances.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[str] = mapped_column(String(40), unique=True)
    source: Mapped[str] = mapped_column(String(20))
    window: Mapped[str] = mapped_column(String(100), default="")
    department: Mapped[str | None] = mapped_column(String(64), nullable=True)
    category: Mapped[str | None] = mapped_column(String(20), nullable=True)
    difficulty: Mapped[str | None] = mapped_column(String(20), nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    contact: Mapped[str] = mapped_column(String(200), default="")
    reported_on: Mapped[date] = mapped_column(Date)
    origin_case: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(30), default="registered")
    escalated: Mapped[bool] = mapped_column(Boolean, default=False)
    returns: Mapped[int] = mapped_column(Integer, default=0)
    reopened: Mapped[int] = mapped_column(Integer, default=0)
    extension_workdays: Mapped[int] = mapped_column(Integer, default=0)
    answered_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    on_time: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    satisfied: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    closed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CaseRecord(Base):
    """Which catalogue item a case serves, when it was promised and when it concluded: the
    basis of per-item figures (volume, duration in working days, on-time rate)."""

    __tablename__ = "case_records"
    __table_args__ = (Index("ix_case_records_item", "item_code", "started_at"),)

    instance_id: Mapped[str] = mapped_column(
        ForeignKey("instances.id", ondelete="CASCADE"), primary_key=True
    )
    item_code: Mapped[str] = mapped_column(String(64))
    item_kind: Mapped[str] = mapped_column(String(16), default="item")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime | None] = mapped_column(nullable=True)
    concluded_at: Mapped[datetime | None] = mapped_column(nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    on_time: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    duration_workdays: Mapped[float | None] = mapped_column(Float, nullable=True)
