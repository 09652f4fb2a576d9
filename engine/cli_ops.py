"""`govflow ops ...`: what ops staff run from a shell to find stuck cases and repair them.

Every action takes `--as USER` (an ops or admin account) and `--reason`, both audited.
"""

from __future__ import annotations

from typing import Any

import click

from engine.cli import _parse_var, _print_json, _ready, handled
from engine.ops import bulk, retention, stuck
from engine.ops.commands import MigrateInstance, MoveToken, SetVariables
from engine.runtime import clock, commands


@click.group("ops")
def ops_group() -> None:
    """Stuck cases, incidents, token moves, variables, migration and retention."""


def _report(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _print_json(result)
        return
    for item in result["done"]:
        click.echo(f"done\t{item}")
    for item in result["refused"]:
        click.echo(f"refused\t{item['id']}\t{item['error']}")


@ops_group.command("stuck")
@click.option("--reason", "reason", type=click.Choice(stuck.REASONS), help="Only this reason.")
@click.option("--process", "definition_key", help="Only cases of this process.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handled
def ops_stuck(
    ctx: click.Context, reason: str | None, definition_key: str | None, as_json: bool
) -> None:
    """List stuck cases: reason, since when, what is wrong and what to do."""
    app = _ready(ctx)
    with app.database.read_session() as session:
        found = stuck.detect(
            session,
            clock.now(),
            app.services.calendars.get(),
            stuck.Thresholds.from_settings(app.settings),
            definition_key,
            reason,
        )
    if as_json:
        _print_json([c.to_dict() for c in found])
        return
    for case in found:
        click.echo(
            f"{case.instance_id}\t{case.reason}\t{case.since.isoformat()}\t{case.detail}\n"
            f"\t-> {case.action}"
        )
    click.echo(f"{len(found)} stuck", err=True)


@ops_group.command("retry")
@click.argument("incident_ids", nargs=-1, type=int)
@click.option("--kind", help="All open incidents of this kind (job, failed, ...).")
@click.option("--process", "definition_key")
@click.option("--element", "element_id")
@click.option("--reason", required=True)
@click.option("--as", "username", required=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handled
def ops_retry(
    ctx: click.Context,
    incident_ids: tuple[int, ...],
    kind: str | None,
    definition_key: str | None,
    element_id: str | None,
    reason: str,
    username: str,
    as_json: bool,
) -> None:
    """Retry incidents: the ones named, or every open one the filter selects."""
    app = _ready(ctx)
    if incident_ids:
        ids = list(incident_ids)
    else:
        if not (kind or definition_key or element_id):
            raise click.UsageError("name incidents or give --kind, --process or --element")
        with app.database.read_session() as session:
            ids = bulk.select_incidents(session, kind, definition_key, element_id)
    result = bulk.run_each(
        app.runner, app.actor(username), ids, lambda i: commands.RetryIncident(i, reason)
    )
    _report(result, as_json)


@ops_group.command("cancel")
@click.argument("instance_ids", nargs=-1)
@click.option("--process", "definition_key")
@click.option("--version", type=int)
@click.option("--status", type=click.Choice(["running", "waiting", "error", "suspended"]))
@click.option("--element", "element_id", help="Cases with a token at this element.")
@click.option("--reason", required=True)
@click.option("--as", "username", required=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handled
def ops_cancel(
    ctx: click.Context,
    instance_ids: tuple[str, ...],
    definition_key: str | None,
    version: int | None,
    status: str | None,
    element_id: str | None,
    reason: str,
    username: str,
    as_json: bool,
) -> None:
    """Cancel the cases named, or every live case the filter selects."""
    app = _ready(ctx)
    flt = bulk.InstanceFilter(definition_key, version, status, element_id, list(instance_ids))
    if flt.is_empty():
        raise click.UsageError("name cases or give --process, --status or --element")
    with app.database.read_session() as session:
        ids = bulk.select_instances(session, flt)
    result = bulk.run_each(
        app.runner, app.actor(username), ids, lambda i: commands.CancelInstance(i, reason)
    )
    _report(result, as_json)


@ops_group.command("move")
@click.argument("instance_id")
@click.argument("source")
@click.argument("target")
@click.option("--reason", required=True)
@click.option("--as", "username", required=True)
@click.pass_context
@handled
def ops_move(
    ctx: click.Context, instance_id: str, source: str, target: str, reason: str, username: str
) -> None:
    """Move the case's token from element SOURCE to element TARGET."""
    app = _ready(ctx)
    entered = app.runner.execute(
        MoveToken(instance_id, reason, source, target), app.actor(username)
    )
    click.echo(f"moved {len(entered)} token(s) from {source} to {target}")


@ops_group.command("set-var")
@click.argument("instance_id")
@click.argument("assignments", nargs=-1)
@click.option("--remove", multiple=True, help="A variable to remove (repeatable).")
@click.option("--reason", required=True)
@click.option("--as", "username", required=True)
@click.pass_context
@handled
def ops_set_var(
    ctx: click.Context,
    instance_id: str,
    assignments: tuple[str, ...],
    remove: tuple[str, ...],
    reason: str,
    username: str,
) -> None:
    """Set case variables (name=value, value read as JSON when it parses) and remove others."""
    app = _ready(ctx)
    values = dict(_parse_var(a) for a in assignments)
    current = app.runner.execute(
        SetVariables(instance_id, reason, values, list(remove)), app.actor(username)
    )
    _print_json({k: current.get(k) for k in values})


@ops_group.command("migrate")
@click.argument("definition_key")
@click.option("--to", "to_version", type=int, required=True)
@click.option("--from", "from_version", type=int, help="Only cases on this version.")
@click.option("--apply", "apply_", is_flag=True, help="Move them (default: dry run).")
@click.option("--reason", default="")
@click.option("--as", "username", help="Needed with --apply.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handled
def ops_migrate(
    ctx: click.Context,
    definition_key: str,
    to_version: int,
    from_version: int | None,
    apply_: bool,
    reason: str,
    username: str | None,
    as_json: bool,
) -> None:
    """Say which live cases can move to version --to and why others cannot; --apply moves."""
    app = _ready(ctx)
    if apply_ and (not username or not reason.strip()):
        raise click.UsageError("--apply needs --as and --reason")
    with app.database.read_session() as session:
        plan = bulk.migration_plan(
            session,
            app.services.versions,
            definition_key,
            to_version,
            bulk.InstanceFilter(version=from_version),
        )
    if apply_:
        assert username is not None
        plan.update(
            bulk.run_each(
                app.runner,
                app.actor(username),
                plan["movable"],
                lambda i: MigrateInstance(i, reason, to_version),
            )
        )
    if as_json:
        _print_json(plan)
        return
    for instance_id in plan["movable"]:
        click.echo(f"{'moved' if apply_ else 'can move'}\t{instance_id}")
    for item in plan["blocked"]:
        click.echo(f"blocked\t{item['instance_id']}\tv{item['version']}\t{item['reason']}")
    for item in plan.get("refused", []):
        click.echo(f"refused\t{item['id']}\t{item['error']}")


@ops_group.command("purge")
@click.option("--days", type=int, help="Default: GOVFLOW_RETENTION_DAYS (90).")
@click.option("--dry-run", is_flag=True)
@click.option("--as", "username", default="system", show_default=True)
@click.pass_context
@handled
def ops_purge(ctx: click.Context, days: int | None, dry_run: bool, username: str) -> None:
    """Archive the documents of cases that ended more than --days days ago."""
    app = _ready(ctx)
    keep = days if days is not None else app.settings.retention_days
    report = retention.purge(app.database, clock.now(), keep, dry_run, username)
    verb = "would archive" if dry_run else "archived"
    click.echo(
        f"{verb} {report.archived} document(s) of cases ended before "
        f"{report.cutoff:%Y-%m-%d}: {report.bytes_before} -> {report.bytes_after} bytes"
    )
