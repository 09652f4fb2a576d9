"""Settings read from the environment, with the embedded defaults `make run` uses."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DATABASE_URL = "sqlite:///var/govflow.db"


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    """Everything configurable about one govflow process."""

    database_url: str = DEFAULT_DATABASE_URL
    forms_dir: Path | None = None
    script_timeout_s: float = 2.0
    max_steps_per_command: int = 10_000
    max_steps_per_instance: int = 1_000_000
    command_retries: int = 20
    bpmn_max_bytes: int = 5_000_000
    timezone: str = "Asia/Shanghai"
    office_opens: str = "08:30"
    office_closes: str = "17:30"
    token_ttl_minutes: int = 480
    token_cache_seconds: float = 5.0
    max_upload_bytes: int = 10_000_000
    max_json_bytes: int = 1_000_000
    demo_password: str = "govflow-demo"
    broker_url: str | None = None
    job_threads: int = 4
    lease_grace_s: float = 30.0
    handler_modules: tuple[str, ...] = ("workers",)
    stuck_job_pending_minutes: float = 15.0
    stuck_timer_lag_minutes: float = 5.0
    stuck_no_progress_workhours: float = 8.0
    retention_days: int = 90
    metrics_token: str | None = None
    login_max_failures: int = 5
    login_lock_minutes: float = 5.0
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> Settings:
        forms_dir_raw = os.environ.get("GOVFLOW_FORMS_DIR")
        if forms_dir_raw:
            forms_dir: Path | None = Path(forms_dir_raw)
        else:
            default_forms = Path.cwd() / "forms"
            forms_dir = default_forms if default_forms.is_dir() else None
        return cls(
            database_url=os.environ.get("GOVFLOW_DATABASE_URL") or DEFAULT_DATABASE_URL,
            forms_dir=forms_dir,
            script_timeout_s=_float("GOVFLOW_SCRIPT_TIMEOUT", 2.0),
            max_steps_per_command=_int("GOVFLOW_MAX_STEPS_PER_COMMAND", 10_000),
            max_steps_per_instance=_int("GOVFLOW_MAX_STEPS_PER_INSTANCE", 1_000_000),
            command_retries=_int("GOVFLOW_COMMAND_RETRIES", 20),
            bpmn_max_bytes=_int("GOVFLOW_BPMN_MAX_BYTES", 5_000_000),
            timezone=os.environ.get("GOVFLOW_TIMEZONE") or "Asia/Shanghai",
            office_opens=os.environ.get("GOVFLOW_OFFICE_OPENS") or "08:30",
            office_closes=os.environ.get("GOVFLOW_OFFICE_CLOSES") or "17:30",
            token_ttl_minutes=_int("GOVFLOW_TOKEN_TTL_MINUTES", 480),
            token_cache_seconds=_float("GOVFLOW_TOKEN_CACHE_SECONDS", 5.0),
            max_upload_bytes=_int("GOVFLOW_MAX_UPLOAD_BYTES", 10_000_000),
            max_json_bytes=_int("GOVFLOW_MAX_JSON_BYTES", 1_000_000),
            demo_password=os.environ.get("GOVFLOW_DEMO_PASSWORD") or "govflow-demo",
            broker_url=os.environ.get("GOVFLOW_BROKER_URL") or None,
            job_threads=_int("GOVFLOW_JOB_THREADS", 4),
            lease_grace_s=_float("GOVFLOW_LEASE_GRACE_S", 30.0),
            stuck_job_pending_minutes=_float("GOVFLOW_STUCK_JOB_PENDING_MINUTES", 15.0),
            stuck_timer_lag_minutes=_float("GOVFLOW_STUCK_TIMER_LAG_MINUTES", 5.0),
            stuck_no_progress_workhours=_float("GOVFLOW_STUCK_NO_PROGRESS_WORKHOURS", 8.0),
            retention_days=_int("GOVFLOW_RETENTION_DAYS", 90),
            metrics_token=os.environ.get("GOVFLOW_METRICS_TOKEN") or None,
            login_max_failures=_int("GOVFLOW_LOGIN_MAX_FAILURES", 5),
            login_lock_minutes=_float("GOVFLOW_LOGIN_LOCK_MINUTES", 5.0),
            handler_modules=tuple(
                m.strip()
                for m in (os.environ.get("GOVFLOW_HANDLER_MODULES") or "workers").split(",")
                if m.strip()
            ),
        )
