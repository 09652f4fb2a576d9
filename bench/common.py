"""What the benchmarks share: the reference flow, throw-away databases, an engine, figures.

Every benchmark builds its own database (a fresh SQLite file under /tmp or a PostgreSQL
database whose name starts with `bench`), so a run never touches the test database and two
runs never see each other's rows.
"""

from __future__ import annotations

import itertools
import os
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
REFERENCE_KEY = "bench_reference"
LOOP_KEY = "bench_loop"
DEPARTMENT = "amr"
CLERK_PASSWORD = "bench-password-1"

HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'id="Definitions_bench" targetNamespace="http://govflow.bench">\n'
)

# --- models ---------------------------------------------------------------------------------

USER_TASKS = [f"t{i:02d}" for i in range(1, 11)]
"""The reference flow's ten user tasks: accept, check, handle, review, approve, ..., hand out."""


def _user(task_id: str) -> str:
    return (
        f'<bpmn:userTask id="{task_id}" name="step {task_id}" '
        f'camunda:candidateGroups="{DEPARTMENT}" />'
    )


def _flow(flow_id: str, source: str, target: str, condition: str | None = None) -> str:
    if condition is None:
        return f'<bpmn:sequenceFlow id="{flow_id}" sourceRef="{source}" targetRef="{target}" />'
    return (
        f'<bpmn:sequenceFlow id="{flow_id}" sourceRef="{source}" targetRef="{target}">'
        f'<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{escape(condition)}'
        "</bpmn:conditionExpression></bpmn:sequenceFlow>"
    )


def _document(process_id: str, elements: list[str]) -> str:
    body = "\n".join(elements)
    return (
        f'{HEAD}<bpmn:process id="{process_id}" isExecutable="true">\n{body}\n'
        "</bpmn:process>\n</bpmn:definitions>\n"
    )


def reference_bpmn(with_job: bool = False) -> str:
    """The 10-task reference flow, shaped like the window service: ten department user tasks
    in a row with two exclusive gateways (refuse after acceptance, send back after review);
    with `with_job` a `notify.sms` service task (run by a worker) before the end."""
    order = ["start", "t01", "g1", "t02", "t03", "t04", "t05", "g2", *USER_TASKS[5:]]
    elements = [
        '<bpmn:startEvent id="start" />',
        *(_user(t) for t in USER_TASKS),
        '<bpmn:exclusiveGateway id="g1" default="f_g1_t02" />',
        '<bpmn:exclusiveGateway id="g2" default="f_g2_t06" />',
        '<bpmn:endEvent id="end" />',
        '<bpmn:endEvent id="end_refused" />',
        _flow("f_g1_refused", "g1", "end_refused", "decision == 'refuse'"),
        _flow("f_g2_back", "g2", "t02", "decision == 'send_back'"),
    ]
    for source, target in itertools.pairwise(order):
        elements.append(_flow(f"f_{source}_{target}", source, target))
    if with_job:
        elements.append(
            '<bpmn:serviceTask id="notify" name="notify" camunda:type="external" '
            'camunda:topic="notify.sms" />'
        )
        elements.append(_flow("f_t10_notify", "t10", "notify"))
        elements.append(_flow("f_notify_end", "notify", "end"))
    else:
        elements.append(_flow("f_t10_end", "t10", "end"))
    return _document(REFERENCE_KEY, elements)


def loop_bpmn() -> str:
    """One user task in a loop: after each completion an exclusive gateway sends the token
    back unless `done` is set, so one instance accumulates as many iterations as wanted."""
    elements = [
        '<bpmn:startEvent id="start" />',
        _user("work"),
        '<bpmn:exclusiveGateway id="again" default="f_again_work" />',
        '<bpmn:endEvent id="end" />',
        _flow("f_start_work", "start", "work"),
        _flow("f_work_again", "work", "again"),
        _flow("f_again_work", "again", "work"),
        _flow("f_again_end", "again", "end", "done == True"),
    ]
    return _document(LOOP_KEY, elements)


def write_model(folder: Path, name: str, xml: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.bpmn"
    path.write_text(xml, encoding="utf-8")
    return path


# --- databases ------------------------------------------------------------------------------


def sqlite_url(name: str) -> str:
    """A fresh SQLite file under /tmp (the old one and its WAL files are removed)."""
    path = Path("/tmp") / f"govflow-{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def fresh_postgres(name: str, server: str = PG_SERVER) -> str:
    """Drop and create the PostgreSQL database `name` (it must start with `bench`, so a
    mistyped name can never drop the test or production database)."""
    if not name.startswith("bench"):
        raise SystemExit(f"refusing to recreate database {name!r}: its name must start with bench")
    admin = create_engine(f"{_psycopg(server)}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{server}/{name}"


def _psycopg(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1]


def database_url(kind: str, name: str) -> str:
    """`sqlite` or `postgresql`: a fresh database for benchmark `name`."""
    if kind == "sqlite":
        return sqlite_url(name)
    if kind == "postgresql":
        return fresh_postgres(f"bench_{name}")
    raise SystemExit(f"unknown database kind {kind!r}")


def describe_url(url: str) -> str:
    parsed = make_url(url)
    return f"{parsed.get_backend_name()}:{parsed.database}"


# --- the engine -----------------------------------------------------------------------------


def make_app(url: str, **engine_options: Any) -> Any:
    """A Govflow on `url` with the schema, calendar, departments and catalogue in place;
    `engine_options` go to SQLAlchemy's create_engine (to try e.g. pool_pre_ping=True)."""
    from engine.app import Govflow
    from engine.config import Settings
    from engine.gc_tuning import tune_for_service
    from engine.store.db import Database

    settings = replace(Settings(), database_url=url, forms_dir=None)
    app = Govflow(settings, Database(url, **engine_options))
    app.init()
    tune_for_service()  # as `govflow serve` and `govflow worker` do once started
    return app


def deploy(app: Any, folder: Path, name: str, xml: str) -> int:
    from engine.accounts.actor import SYSTEM

    result = app.deploy_paths([write_model(folder, name, xml)], SYSTEM)
    return int(result.processes[0].version)


def add_clerks(app: Any, names: Iterable[str]) -> None:
    """Clerks of the `amr` department, each with the benchmark password."""
    from engine.accounts import directory

    with app.database.session() as session:
        for name in names:
            directory.add_user(session, name, ["clerk"], [DEPARTMENT], CLERK_PASSWORD)


def open_tasks(app: Any, instance_id: str) -> list[str]:
    from sqlalchemy import select

    from engine.store.models import HumanTask

    with app.database.read_session() as session:
        return list(
            session.scalars(
                select(HumanTask.id).where(
                    HumanTask.instance_id == instance_id, HumanTask.state == "open"
                )
            )
        )


# --- figures --------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of `values`."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, round(p / 100 * len(ordered) + 0.5))
    return ordered[min(rank, len(ordered)) - 1]


def summary_ms(values: list[float]) -> str:
    """Median, p95 and p99 of durations in seconds, shown in milliseconds."""
    return (
        f"median {statistics.median(values) * 1000:.2f} ms, "
        f"p95 {percentile(values, 95) * 1000:.2f} ms, "
        f"p99 {percentile(values, 99) * 1000:.2f} ms (n={len(values)})"
    )


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = action()
    return time.perf_counter() - began, result


def verdict(value: float, goal: float, lower_is_better: bool = True) -> str:
    met = value <= goal if lower_is_better else value >= goal
    return "goal met" if met else "goal NOT met"


def machine() -> str:
    """One line about the machine, for the record next to the figures."""
    model = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cpus, {model}, load average {load}"


CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def proc_stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (the state first), or None
    when the process has gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_seconds_of(fields: list[str]) -> float:
    """User plus system CPU time in a `proc_stat` line."""
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def backend_pids(url: str) -> list[int]:
    """The server processes serving the PostgreSQL database of `url` now (the app's pooled
    connections), for `backends_cpu_s`."""
    import psycopg

    database = url.rsplit("/", 1)[1]
    with psycopg.connect(f"{PG_SERVER}/postgres") as admin:
        rows = admin.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,))
        return [row[0] for row in rows]


def backends_cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of server processes, from /proc (in clock ticks: sum it over
    many requests, not one)."""
    return sum(cpu_seconds_of(fields) for pid in pids if (fields := proc_stat(pid)))


def load_note() -> str:
    """The load average when a figure was taken: other work on a 2-core box skews it."""
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())
