"""`govflow`: the command line for designers, clerks and ops.

Every command works on the database GOVFLOW_DATABASE_URL names (default: var/govflow.db).
Errors go to stderr with exit status 1; `lint` exits 1 when it finds problems.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from datetime import date
from functools import wraps
from pathlib import Path
from typing import Any

import click

from engine.accounts import directory
from engine.app import Govflow
from engine.errors import GovflowError, InvalidInput
from engine.gc_tuning import tune_for_service
from engine.jobs import store as job_store
from engine.jobs.dispatcher import Dispatcher
from engine.jobs.executors import make_executor
from engine.jobs.handlers import queue_for
from engine.jobs.handlers import topics as handler_topics
from engine.runtime import (
    calendar_ops,
    case_records,
    catalog,
    catalog_ops,
    clock,
    commands,
    ledger,
    one_thing,
    problem_list,
    queries,
    workcalendar,
)
from engine.runtime.scheduler import Scheduler
from engine.store import schema, statistics
from engine.store.models import Instance


def _app(ctx: click.Context) -> Govflow:
    app = ctx.find_object(Govflow)
    if app is None:
        raise click.UsageError("no application context")
    return app


def _emit_error(exc: GovflowError) -> None:
    click.echo(f"error: {exc.message}", err=True)
    details = exc.details
    if isinstance(details, list):
        for item in details:
            if isinstance(item, dict) and "file" in item:
                line = item.get("line") or 0
                click.echo(f"{item['file']}:{line}: {item['message']}", err=True)
            elif isinstance(item, dict) and "path" in item:
                click.echo(f"  {item['path']}: {item['message']}", err=True)
            else:
                click.echo(f"  {item}", err=True)
    elif isinstance(details, dict) and details:
        for key, value in details.items():
            click.echo(f"  {key}: {value}", err=True)


def handled(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn govflow errors into a message on stderr and exit status 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except GovflowError as exc:
            _emit_error(exc)
            sys.exit(1)

    return wrapper


def _ready(ctx: click.Context) -> Govflow:
    app = _app(ctx)
    app.ensure_ready()
    return app


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def _parse_var(raw: str) -> tuple[str, Any]:
    if "=" not in raw:
        raise InvalidInput(f"--var {raw!r} must look like name=value")
    name, text = raw.split("=", 1)
    name = name.strip()
    if not name:
        raise InvalidInput(f"--var {raw!r} has no name")
    try:
        return name, json.loads(text)
    except json.JSONDecodeError:
        return name, text


@click.group()
@click.option("--db", "database_url", envvar="GOVFLOW_DATABASE_URL", help="Database URL.")
@click.pass_context
def main(ctx: click.Context, database_url: str | None) -> None:
    """govflow: BPMN workflow engine for a county government service center."""
    from dataclasses import replace

    from engine.config import Settings

    settings = Settings.from_env()
    if database_url:
        settings = replace(settings, database_url=database_url)
    app = Govflow(settings)
    ctx.obj = app
    ctx.call_on_close(app.dispose)


# --- database --------------------------------------------------------------------------------


@main.command("init")
@click.option("--roster", type=click.Path(path_type=Path), help="departments.tsv to seed from.")
@click.pass_context
@handled
def init_command(ctx: click.Context, roster: Path | None) -> None:
    """Create or upgrade the database; add the roster's missing departments and seed the
    calendar, the item catalogue and the policies into empty tables."""
    added = _app(ctx).init(roster)
    click.echo(f"database ready at revision {schema.head_revision()}; {added} departments added")


@main.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@click.pass_context
@handled
def db_upgrade(ctx: click.Context) -> None:
    """Apply all migrations (a database made by an older govflow upgrades)."""
    app = _app(ctx)
    schema.upgrade(app.database)
    app.seed_calendar()
    click.echo(f"database at revision {schema.current_revision(app.database)}")


@db_group.command("current")
@click.pass_context
@handled
def db_current(ctx: click.Context) -> None:
    """Print the schema revision of the database."""
    click.echo(schema.current_revision(_app(ctx).database) or "empty")


@db_group.command("check")
@click.pass_context
@handled
def db_check(ctx: click.Context) -> None:
    """Check that the database keeps the statistics its query plans need (exit status 1 and
    what to do when it does not)."""
    database = _app(ctx).database
    if database.dialect != "postgresql":
        click.echo(f"ok: nothing to check on {database.dialect}")
        return
    problems = statistics.autovacuum_problems(database)
    for problem in problems:
        click.echo(f"warning: {problem}", err=True)
    if problems:
        sys.exit(1)
    click.echo("ok: autovacuum keeps the planner's statistics fresh")


@main.command("demo-seed")
@click.pass_context
@handled
def demo_seed(ctx: click.Context) -> None:
    """Create demo users (admin, designer, ops, a clerk per department) in an empty user table."""
    app = _ready(ctx)
    with app.database.session() as session:
        people = directory.seed_demo_users(session, app.settings.demo_password)
    if people is None:
        click.echo("users exist already; no demo users were added")
        return
    click.echo(f"demo users, all with password {app.settings.demo_password!r}:")
    for username, roles, departments in people:
        click.echo(f"  {username:<22} {','.join(roles):<9} {','.join(departments)}")


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="HTTP worker processes (one per core uses them all).",
)
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="A log line per request (the audit log records every change either way).",
)
@click.pass_context
@handled
def serve(ctx: click.Context, host: str, port: int, workers: int, access_log: bool) -> None:
    """Serve the HTTP API (and its OpenAPI document at /openapi.json)."""
    import uvicorn

    from engine.api.app import create_app
    from engine.api.http_protocol import GatheredWritesProtocol

    app = _ready(ctx)
    for problem in statistics.autovacuum_problems(app.database):
        click.echo(f"warning: {problem}", err=True)
    dispatcher = Dispatcher(app, make_executor(app))
    dispatcher.start()
    scheduler = Scheduler(app)
    scheduler.start()
    executor = f"Celery on {app.settings.broker_url}" if app.settings.broker_url else "in-process"
    click.echo(
        f"govflow on http://{host}:{port} (database {app.settings.database_url}; jobs {executor})"
    )
    try:
        if workers == 1:
            api = create_app(app)
            tune_for_service()
            uvicorn.run(
                api,
                host=host,
                port=port,
                log_level="info",
                access_log=access_log,
                http=GatheredWritesProtocol,
            )
        else:
            os.environ["GOVFLOW_DATABASE_URL"] = app.settings.database_url
            uvicorn.run(
                "engine.api.asgi:app_from_environment",
                factory=True,
                workers=workers,
                host=host,
                port=port,
                log_level="info",
                access_log=access_log,
                http=GatheredWritesProtocol,
            )
    finally:
        scheduler.stop()
        dispatcher.stop()
        dispatcher.executor.shutdown()


@main.command("scheduler")
@click.option("--poll", default=1.0, show_default=True, help="Seconds between rounds when idle.")
@click.pass_context
@handled
def scheduler_command(ctx: click.Context, poll: float) -> None:
    """Fire due timers until stopped (several schedulers may run at once)."""
    app = _ready(ctx)
    scheduler = Scheduler(app)
    click.echo(f"{scheduler.name} running; Ctrl-C to stop")
    with contextlib.suppress(KeyboardInterrupt):
        scheduler.run(poll)


@main.group("calendar")
def calendar_group() -> None:
    """The working-day calendar (holidays and make-up working days)."""


@calendar_group.command("add-workdays")
@click.argument("day")
@click.argument("count", type=int)
@click.pass_context
@handled
def calendar_add_workdays(ctx: click.Context, day: str, count: int) -> None:
    """Print the COUNT-th working day after DAY (ISO), with "provisional" when the count went
    through a year the calendar does not know."""
    app = _ready(ctx)
    try:
        start = date.fromisoformat(day)
    except ValueError:
        raise InvalidInput(f"{day!r} is not a date (YYYY-MM-DD)") from None
    if count < 0:
        raise InvalidInput("COUNT cannot be negative")
    deadline = app.services.calendars.get().add_workdays(start, count)
    click.echo(deadline.day.isoformat() + (" provisional" if deadline.provisional else ""))


@calendar_group.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--as", "username", help="An ops or admin user (default: system).")
@click.pass_context
@handled
def calendar_import(ctx: click.Context, path: Path, username: str | None) -> None:
    """Import a year (JSON: {"year", "holidays": [{"date", "name"}], "workdays": [...]}) and
    recompute the deadlines that were provisional."""
    app = _ready(ctx)
    year_file = workcalendar.read_year_file(path)
    moved = calendar_ops.import_year(app, app.actor(username), year_file)
    click.echo(
        f"{year_file.year}: {len(year_file.holidays)} holidays, {len(year_file.workdays)} make-up "
        f"working days; recomputed {moved['tasks']} task due dates, {moved['clocks']} clocks, "
        f"{moved['timers']} timers"
    )


@calendar_group.command("set")
@click.argument("day")
@click.option("--workday/--holiday", "is_workday", required=True)
@click.option("--name", default="", help="What the day is (春节, 调休上班, ...).")
@click.option("--as", "username", help="An ops or admin user (default: system).")
@click.pass_context
@handled
def calendar_set(
    ctx: click.Context, day: str, is_workday: bool, name: str, username: str | None
) -> None:
    """Make one day a working day or a day off."""
    app = _ready(ctx)
    try:
        value = date.fromisoformat(day)
    except ValueError:
        raise InvalidInput(f"{day!r} is not a date (YYYY-MM-DD)") from None
    calendar_ops.edit_day(app, app.actor(username), value, is_workday, name)
    click.echo(f"{value.isoformat()} is now a {'working day' if is_workday else 'day off'}")


@calendar_group.command("show")
@click.argument("year", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handled
def calendar_show(ctx: click.Context, year: int, as_json: bool) -> None:
    """The holidays and make-up working days of a year."""
    app = _ready(ctx)
    with app.database.read_session() as session:
        days = workcalendar.year_days(session, year)
    if as_json:
        _print_json(days)
        return
    state = (
        f"known ({days['source']})"
        if days["known"]
        else "not known: deadlines through it are provisional"
    )
    click.echo(f"{year}: {state}")
    for entry in days["holidays"]:
        click.echo(f"  {entry['date']}  off      {entry['name']}")
    for entry in days["workdays"]:
        click.echo(f"  {entry['date']}  working  {entry['name']}")


@calendar_group.command("provisional")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handled
def calendar_provisional(ctx: click.Context, as_json: bool) -> None:
    """How many deadlines are provisional, per year the calendar does not know."""
    summary = calendar_ops.provisional_summary(_ready(ctx))
    if as_json:
        _print_json(summary)
        return
    for row in summary:
        click.echo(
            f"{row['year']}: {row['tasks']} task due dates, {row['timers']} timers, "
            f"{row['clocks']} clocks in {row['instances']} cases"
        )


@main.command("clock")
@click.argument("instance_id")
@click.argument("action", type=click.Choice(["start", "pause", "resume", "stop"]))
@click.option("--name", "clock_name", default="case", show_default=True)
@click.option("--workdays", type=int, help="With start: the limit in working days.")
@click.option("--reason", default="")
@click.option("--as", "username", required=True)
@click.pass_context
@handled
def clock_command(
    ctx: click.Context,
    instance_id: str,
    action: str,
    clock_name: str,
    workdays: int | None,
    reason: str,
    username: str,
) -> None:
    """Start, pause (补正, 特别程序), resume or stop a case's SLA clock."""
    app = _ready(ctx)
    row = app.runner.execute(
        commands.ChangeClock(instance_id, action, clock_name, workdays, reason), app.actor(username)
    )
    click.echo(f"clock {row.name} {row.state}; due {row.due_date.isoformat()}")


@main.command("dispatcher")
@click.option("--poll", default=0.5, show_default=True, help="Seconds between rounds when idle.")
@click.pass_context
@handled
def dispatcher_command(ctx: click.Context, poll: float) -> None:
    """Hand due jobs to the executor (Celery when GOVFLOW_BROKER_URL is set) until stopped."""
    app = _ready(ctx)
    dispatcher = Dispatcher(app, make_executor(app))
    click.echo(f"{dispatcher.name} running; Ctrl-C to stop")
    try:
        with contextlib.suppress(KeyboardInterrupt):
            dispatcher.run(poll)
    finally:
        dispatcher.executor.shutdown()


@main.command("worker")
@click.option(
    "--queues", default="", help="Topic families to serve, e.g. verify,notify (default all)."
)
@click.option("--concurrency", default=2, show_default=True, type=int)
@click.option(
    "--pool",
    default="threads",
    show_default=True,
    type=click.Choice(["threads", "solo", "prefork"]),
)
@click.option("--hostname", default=None, help="Node name (default: govflow-<pid>@<host>).")
@click.pass_context
@handled
def worker_command(
    ctx: click.Context, queues: str, concurrency: int, pool: str, hostname: str | None
) -> None:
    """Run a Celery worker for service-task jobs (broker: GOVFLOW_BROKER_URL)."""
    _ready(ctx)
    from workers.celery_app import app as celery_app

    families = queues or ",".join(sorted({queue_for(t) for t in handler_topics()}))
    node = hostname or f"govflow-{os.getpid()}@%h"
    argv = [
        "worker",
        "--loglevel=INFO",
        f"--queues={families}",
        f"--concurrency={concurrency}",
        f"--pool={pool}",
        f"--hostname={node}",
    ]
    tune_for_service()
    celery_app.worker_main(argv)


@main.group("jobs")
def jobs_group() -> None:
    """Service-task jobs."""


@jobs_group.command("stats")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handled
def jobs_stats(ctx: click.Context, as_json: bool) -> None:
    """Jobs per topic: pending, running, completed, failed, and latency."""
    app = _ready(ctx)
    with app.database.read_session() as session:
        figures = job_store.metrics(session)
    if as_json:
        _print_json(figures)
        return
    for topic, entry in sorted(figures.items()):
        p50 = entry["latency_p50_s"]
        latency = f"{p50:.2f}s" if p50 is not None else "-"
        click.echo(
            f"{topic:<22} pending {entry['pending']:<5} running {entry['running']:<5} "
            f"completed {entry['completed']:<6} failed {entry['failed']:<5} p50 {latency}"
        )


# --- definitions -----------------------------------------------------------------------------


@main.command("lint")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.pass_context
@handled
def lint_command(ctx: click.Context, paths: tuple[Path, ...]) -> None:
    """Check BPMN files and form schemas; prints file:line: message, exits 1 on problems."""
    problems = _ready(ctx).lint_paths(list(paths))
    for problem in problems:
        click.echo(problem.format())
    if problems:
        sys.exit(1)


@main.command("deploy")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--as", "username", help="Deploy as this user (default: system).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handled
def deploy_command(
    ctx: click.Context, paths: tuple[Path, ...], username: str | None, as_json: bool
) -> None:
    """Deploy BPMN files, form schemas (*.schema.json) and folders of them."""
    app = _ready(ctx)
    result = app.deploy_paths(list(paths), app.actor(username))
    if as_json:
        _print_json(result.to_dict())
        return
    for process in result.processes:
        state = "deployed" if process.created else "unchanged"
        click.echo(f"{process.key} version {process.version} {state}")
    for form in result.forms:
        click.echo(f"form {form}")


@main.group("definitions")
def definitions_group() -> None:
    """Deployed process definitions."""


@definitions_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handled
def definitions_list(ctx: click.Context, as_json: bool) -> None:
    from sqlalchemy import select

    from engine.store.models import ProcessDefinition

    app = _ready(ctx)
    with app.database.read_session() as session:
        rows = [
            {"key": d.key, "name": d.name, "latest_version": d.latest_version}
            for d in session.scalars(select(ProcessDefinition).order_by(ProcessDefinition.key))
        ]
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        click.echo(f"{row['key']}\tv{row['latest_version']}\t{row['name']}")


# --- instances -------------------------------------------------------------------------------


@main.command("start")
@click.argument("key")
@click.option("--business-key", help="The case's own number.")
@click.option(
    "--var", "variables", multiple=True, help="name=value (value read as JSON if it can be)."
)
@click.option("--version", type=int, help="Start this version instead of the latest.")
@click.option("--as", "username", help="Start as this user (default: system).")
@click.pass_context
@handled
def start_command(
    ctx: click.Context,
    key: str,
    business_key: str | None,
    variables: tuple[str, ...],
    version: int | None,
    username: str | None,
) -> None:
    """Start an instance of a deployed process and print its id."""
    app = _ready(ctx)
    values = dict(_parse_var(raw) for raw in variables)
    instance = app.start(key, app.actor(username), business_key, values, version)
    click.echo(instance.id)


@main.command("show")
@click.argument("instance_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handled
def show_command(ctx: click.Context, instance_id: str, as_json: bool) -> None:
    """Show an instance: status, data, tasks, incidents and history."""
    app = _ready(ctx)
    with app.database.read_session() as session:
        detail = queries.instance_detail(session, instance_id, app.services.calendars.get())
    if as_json:
        _print_json(detail)
        return
    click.echo(f"instance   {detail['id']}")
    click.echo(f"process    {detail['definition_key']} v{detail['version']}")
    click.echo(f"business   {detail['business_key'] or '-'}")
    click.echo(f"status     {detail['status']}")
    click.echo(f"started    {detail['started_at']} by {detail['started_by']}")
    if detail["ended_at"]:
        click.echo(f"ended      {detail['ended_at']}")
    click.echo("variables")
    for name, value in sorted(detail["variables"].items()):
        click.echo(f"  {name} = {json.dumps(value, ensure_ascii=False)}")
    if detail["clocks"]:
        click.echo("clocks")
        for row in detail["clocks"]:
            flags = " OVERDUE" if row["overdue"] else (" due soon" if row["due_soon"] else "")
            guess = (
                f" (provisional: {row['provisional_year']} not in the calendar)"
                if row["provisional_year"]
                else ""
            )
            click.echo(f"  {row['name']:<10} {row['state']:<8} due {row['due_date']}{flags}{guess}")
    click.echo("tasks")
    for task in detail["tasks"]:
        groups = ",".join(task["candidate_groups"]) or "-"
        who = task["assignee"] or "unclaimed"
        click.echo(f"  {task['id']}  {task['state']:<9} {task['name']}  [{groups}] {who}")
    open_incidents = [i for i in detail["incidents"] if i["resolved_at"] is None]
    if open_incidents:
        click.echo("incidents")
        for incident in open_incidents:
            click.echo(f"  #{incident['id']} {incident['kind']}: {incident['message']}")
    click.echo("history")
    for event in detail["history"]:
        where = f" {event['element_id']}" if event["element_id"] else ""
        click.echo(f"  {event['at']}  {event['actor']:<12} {event['command']}{where}")


def _instance_command(name: str, command_class: type, help_text: str) -> None:
    @main.command(name, help=help_text)
    @click.argument("instance_id")
    @click.option("--as", "username", required=True, help="An ops or admin user.")
    @click.option("--reason", default="", help="Why; kept in the audit log.")
    @click.pass_context
    @handled
    def command(ctx: click.Context, instance_id: str, username: str, reason: str) -> None:
        app = _ready(ctx)
        app.runner.execute(command_class(instance_id, reason), app.actor(username))
        with app.database.read_session() as session:
            click.echo(queries.instance_detail(session, instance_id)["status"])


_instance_command("cancel", commands.CancelInstance, "Cancel an instance.")
_instance_command("suspend", commands.SuspendInstance, "Suspend an instance.")
_instance_command("resume", commands.ResumeInstance, "Resume a suspended instance.")


@main.command("retry")
@click.argument("incident_id", type=int)
@click.option("--as", "username", required=True)
@click.option("--reason", default="")
@click.pass_context
@handled
def retry_command(ctx: click.Context, incident_id: int, username: str, reason: str) -> None:
    """Retry the element an incident is about."""
    app = _ready(ctx)
    app.runner.execute(commands.RetryIncident(incident_id, reason), app.actor(username))
    click.echo(f"incident {incident_id} retried")


# --- tasks -----------------------------------------------------------------------------------


@main.command("tasks")
@click.option("--group", help="Only tasks of this department.")
@click.option("--as", "username", help="Show this user's worklist (default: every open task).")
@click.option("--mine", is_flag=True, help="Only tasks claimed by --as.")
@click.option("--state", default="open", type=click.Choice(queries.TASK_STATES))
@click.option("--json", "as_json", is_flag=True)
@click.option("--ids", "ids_only", is_flag=True, help="Print only task ids, one per line.")
@click.pass_context
@handled
def tasks_command(
    ctx: click.Context,
    group: str | None,
    username: str | None,
    mine: bool,
    state: str,
    as_json: bool,
    ids_only: bool,
) -> None:
    """List tasks, soonest due first."""
    app = _ready(ctx)
    actor = app.actor(username)
    scope = "mine" if mine else ("group" if username else "all")
    with app.database.read_session() as session:
        rows = [
            queries.task_to_dict(r) for r in queries.list_tasks(session, actor, scope, group, state)
        ]
    if as_json:
        _print_json(rows)
        return
    if ids_only:
        for row in rows:
            click.echo(row["id"])
        return
    for row in rows:
        groups = ",".join(row["candidate_groups"]) or "-"
        due = row["due_at"] or "-"
        click.echo(
            f"{row['id']}  {row['name']}  [{groups}]  {row['assignee'] or 'unclaimed'}  due {due}"
            f"  {row['definition_key']}/{row['business_key'] or row['instance_id']}"
        )


def _task_action(app: Govflow, command: Any, username: str) -> dict[str, Any]:
    row = app.runner.execute(command, app.actor(username))
    return queries.task_to_dict(row)


@main.command("claim")
@click.argument("task_id")
@click.option("--as", "username", required=True)
@click.pass_context
@handled
def claim_command(ctx: click.Context, task_id: str, username: str) -> None:
    """Claim a task of your department."""
    row = _task_action(_ready(ctx), commands.ClaimTask(task_id), username)
    click.echo(f"{row['id']} claimed by {row['assignee']}")


@main.command("unclaim")
@click.argument("task_id")
@click.option("--as", "username", required=True)
@click.pass_context
@handled
def unclaim_command(ctx: click.Context, task_id: str, username: str) -> None:
    """Give a claimed task back to its department's queue."""
    row = _task_action(_ready(ctx), commands.UnclaimTask(task_id), username)
    click.echo(f"{row['id']} unclaimed")


@main.command("assign")
@click.argument("task_id")
@click.argument("user")
@click.option("--as", "username", required=True)
@click.pass_context
@handled
def assign_command(ctx: click.Context, task_id: str, user: str, username: str) -> None:
    """Assign a task to a user."""
    row = _task_action(_ready(ctx), commands.AssignTask(task_id, user), username)
    click.echo(f"{row['id']} assigned to {row['assignee']}")


@main.command("complete")
@click.argument("task_id")
@click.option("--as", "username", required=True)
@click.option("--data", default="{}", help="Form data as a JSON object.")
@click.pass_context
@handled
def complete_command(ctx: click.Context, task_id: str, username: str, data: str) -> None:
    """Complete a task with form data."""
    try:
        values = json.loads(data)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"--data is not valid JSON: {exc.msg} at column {exc.colno}") from None
    app = _ready(ctx)
    row = _task_action(app, commands.CompleteTask(task_id, values), username)
    with app.database.read_session() as session:
        status = queries.instance_detail(session, row["instance_id"])["status"]
    click.echo(f"{row['id']} completed; instance {row['instance_id']} is {status}")


# --- people ----------------------------------------------------------------------------------


@main.group("departments")
def departments_group() -> None:
    """Departments (their codes are the candidate groups of user tasks)."""


@departments_group.command("add")
@click.argument("code")
@click.option("--name", required=True)
@click.pass_context
@handled
def departments_add(ctx: click.Context, code: str, name: str) -> None:
    app = _ready(ctx)
    with app.database.session() as session:
        department = directory.add_department(session, code, name)
        click.echo(f"{department.code}\t{department.name}")


@departments_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handled
def departments_list(ctx: click.Context, as_json: bool) -> None:
    app = _ready(ctx)
    with app.database.read_session() as session:
        rows = [{"code": d.code, "name": d.name} for d in directory.list_departments(session)]
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        click.echo(f"{row['code']}\t{row['name']}")


@main.group("catalog")
def catalog_group() -> None:
    """The item catalogue (事项目录): promised working days, materials, approval levels."""


@catalog_group.command("list")
@click.option("--dept", "department", help="Only this department's items (lead department).")
@click.option(
    "--kind", type=click.Choice(["item", "one-thing"]), help="Single items or one-thing bundles."
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handled
def catalog_list(
    ctx: click.Context, department: str | None, kind: str | None, as_json: bool
) -> None:
    rows = catalog_ops.list_items(_ready(ctx), department, kind)
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        if row["kind"] == "one-thing":
            stages = " > ".join(",".join(group) for group in row["stages"])
            click.echo(
                f"{row['code']}\t{row['promised_workdays']} working days\t{stages}\t{row['name']}"
            )
            continue
        levels = "two-level" if row.get("approval_levels") == 2 else "one-level"
        click.echo(
            f"{row['code']}\t{row['department']}\t{row.get('promised_workdays')} working days"
            f"\t{levels}\t{row['name']}"
        )


@catalog_group.command("show")
@click.argument("code")
@click.pass_context
@handled
def catalog_show(ctx: click.Context, code: str) -> None:
    _print_json(catalog_ops.get_item(_ready(ctx), code))


@catalog_group.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--as", "username", help="An ops or admin user (default: system).")
@click.pass_context
@handled
def catalog_import(ctx: click.Context, path: Path, username: str | None) -> None:
    """Add or replace items from a TSV file with the columns of processes/catalog/items.tsv;
    one bad row and nothing is imported."""
    app = _ready(ctx)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}") from None
    items = catalog.parse_items_tsv(text, str(path))
    count = catalog_ops.import_items(app, app.actor(username), items, str(path))
    click.echo(f"imported {count} items from {path}")


@main.group("policy")
def policy_group() -> None:
    """Configurable rules: supplement and rating periods, rectification time limits, ..."""


@policy_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handled
def policy_list(ctx: click.Context, as_json: bool) -> None:
    policies = catalog_ops.list_policies(_ready(ctx))
    if as_json:
        _print_json(policies)
        return
    for key, value in policies.items():
        click.echo(f"{key}\t{json.dumps(value, ensure_ascii=False)}")


@policy_group.command("set")
@click.argument("key")
@click.argument("value")
@click.option("--as", "username", help="An ops or admin user (default: system).")
@click.pass_context
@handled
def policy_set(ctx: click.Context, key: str, value: str, username: str | None) -> None:
    """Set KEY to VALUE (read as JSON when it parses, else as text)."""
    app = _ready(ctx)
    _, parsed = _parse_var(f"{key}={value}")
    catalog_ops.set_policy(app, app.actor(username), key, parsed)
    click.echo(f"{key} = {json.dumps(parsed, ensure_ascii=False)}")


@main.group("one-thing")
def one_thing_group() -> None:
    """One-thing bundles (一件事一次办): combined forms and applications."""


@one_thing_group.command("form")
@click.argument("code")
@click.pass_context
@handled
def one_thing_form(ctx: click.Context, code: str) -> None:
    """Print the bundle's combined form (JSON Schema)."""
    _print_json(one_thing.form(_ready(ctx), code))


@one_thing_group.command("apply")
@click.argument("code")
@click.option("--data", required=True, help="The combined form as JSON.")
@click.option("--as", "username", required=True, help="The clerk at the window.")
@click.pass_context
@handled
def one_thing_apply(ctx: click.Context, code: str, data: str, username: str) -> None:
    """Submit an application; prints the new case's id and number."""
    app = _ready(ctx)
    try:
        form_data = json.loads(data)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"--data is not JSON: {exc}") from None
    instance = one_thing.apply(app, app.actor(username), code, form_data)
    with app.database.read_session() as session:
        row = queries.instance_to_dict(session.get(Instance, instance.id))
    click.echo(f"{row['id']}\t{row['business_key']}")


@main.command("figures")
@click.option("--kind", type=click.Choice(["item", "one-thing"]))
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handled
def figures_command(ctx: click.Context, kind: str | None, as_json: bool) -> None:
    """Per catalogue item: volume, duration in working days (median, p90), on-time rate."""
    app = _ready(ctx)
    with app.database.read_session() as session:
        rows = case_records.figures(session, kind)
    if as_json:
        _print_json(rows)
        return
    click.echo("item\tvolume\tconcluded\tmedian wd\tp90 wd\ton time")
    for row in rows:
        rate = "-" if row["on_time_rate"] is None else f"{row['on_time_rate']:.0%}"
        click.echo(
            f"{row['item_code']}\t{row['volume']}\t{row['concluded']}\t"
            f"{row['median_workdays']}\t{row['p90_workdays']}\t{rate}"
        )


@main.group("ledger")
def ledger_group() -> None:
    """Problem ledgers (台账) that become rectification work orders."""


@ledger_group.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--as", "username", help="An ops user or a clerk of the center (default: system).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handled
def ledger_import(ctx: click.Context, path: Path, username: str | None, as_json: bool) -> None:
    """Import a CSV or XLSX ledger with the columns window, department, description, contact,
    reported_on (or 窗口, 部门, 问题描述, 联系方式, 日期). Any bad row and nothing is imported;
    each bad row is listed as FILE:LINE: reason."""
    app = _ready(ctx)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc}") from None
    result = ledger.import_file(app, app.actor(username), data, str(path))
    if as_json:
        _print_json(result)
        return
    for row in result["work_orders"]:
        click.echo(f"line {row['line']}\t{row['number']}")
    click.echo(f"imported {result['imported']} rows from {path}")


@main.group("work-orders")
def work_orders_group() -> None:
    """The problem list (问题清单) of rectification work orders and its figures."""


def _order_filters(department: str | None, status: str | None, overdue: bool | None) -> Any:
    return problem_list.Filters(department=department, status=status, overdue=overdue)


@work_orders_group.command("list")
@click.option("--dept", "department")
@click.option("--status")
@click.option("--overdue/--not-overdue", default=None)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handled
def work_orders_list(
    ctx: click.Context,
    department: str | None,
    status: str | None,
    overdue: bool | None,
    as_json: bool,
) -> None:
    app = _ready(ctx)
    with app.database.read_session() as session:
        rows, _ = problem_list.list_orders(
            session,
            app.actor(None),
            _order_filters(department, status, overdue),
            app.services.calendars.get(),
            clock.now(),
            limit=10**9,
        )
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        flag = " OVERDUE" if row["overdue"] else ""
        click.echo(
            f"{row['number']}\t{row['department'] or '-'}\t{row['status']}\t"
            f"due {row['due_date'] or '-'}{flag}\t{row['description'][:40]}"
        )


@work_orders_group.command("figures")
@click.option("--by", default="department", type=click.Choice(problem_list.GROUPS))
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handled
def work_orders_figures(ctx: click.Context, by: str, as_json: bool) -> None:
    """Rectification rate, on-time rate and satisfaction per group."""
    app = _ready(ctx)
    with app.database.read_session() as session:
        rows = problem_list.figures(
            session,
            app.actor(None),
            by,
            problem_list.Filters(),
            app.services.calendars.get(),
            clock.now(),
        )
    if as_json:
        _print_json(rows)
        return

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.0%}"

    click.echo(f"{by}\ttotal\tclosed\toverdue\trectified\ton time\tsatisfied")
    for row in rows:
        click.echo(
            f"{row[by] or '-'}\t{row['total']}\t{row['closed']}\t{row['overdue']}\t"
            f"{pct(row['rectification_rate'])}\t{pct(row['on_time_rate'])}\t"
            f"{pct(row['satisfaction_rate'])}"
        )


@work_orders_group.command("export")
@click.argument("path", type=click.Path(path_type=Path))
@click.pass_context
@handled
def work_orders_export(ctx: click.Context, path: Path) -> None:
    """Write the problem list to PATH (.csv or .xlsx)."""
    app = _ready(ctx)
    if path.suffix.lower() not in (".csv", ".xlsx"):
        raise InvalidInput(f"{path}: export to a .csv or .xlsx file")
    with app.database.read_session() as session:
        rows, _ = problem_list.list_orders(
            session,
            app.actor(None),
            problem_list.Filters(),
            app.services.calendars.get(),
            clock.now(),
            limit=10**9,
        )
    body = (
        problem_list.to_xlsx(rows) if path.suffix.lower() == ".xlsx" else problem_list.to_csv(rows)
    )
    path.write_bytes(body)
    click.echo(f"wrote {len(rows)} work orders to {path}")


@main.group("users")
def users_group() -> None:
    """Users, their roles and departments."""


@users_group.command("add")
@click.argument("username")
@click.option(
    "--role", "roles", multiple=True, required=True, help="clerk, designer, ops or admin."
)
@click.option("--dept", "departments", multiple=True, help="Department code (repeatable).")
@click.option("--password", help="Login password (hashed with Argon2id).")
@click.option("--name", "display_name", default="", help="Display name.")
@click.pass_context
@handled
def users_add(
    ctx: click.Context,
    username: str,
    roles: tuple[str, ...],
    departments: tuple[str, ...],
    password: str | None,
    display_name: str,
) -> None:
    app = _ready(ctx)
    split_roles = [r.strip() for raw in roles for r in raw.split(",") if r.strip()]
    split_depts = [d.strip() for raw in departments for d in raw.split(",") if d.strip()]
    with app.database.session() as session:
        user = directory.add_user(
            session, username, split_roles, split_depts, password, display_name
        )
        click.echo(
            f"{user.username}\t{','.join(sorted(split_roles))}\t{','.join(sorted(split_depts))}"
        )


@users_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handled
def users_list(ctx: click.Context, as_json: bool) -> None:
    app = _ready(ctx)
    with app.database.read_session() as session:
        rows = [
            {"username": u.username, "roles": roles, "departments": depts, "active": u.active}
            for u, roles, depts in directory.list_users(session)
        ]
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        click.echo(f"{row['username']}\t{','.join(row['roles'])}\t{','.join(row['departments'])}")


from engine.cli_ops import ops_group  # noqa: E402  (it uses the helpers above)

main.add_command(ops_group)

if __name__ == "__main__":
    main()
