"""Comments on tasks: kept with the case history, from the API and the pages alike."""

from __future__ import annotations

from sqlalchemy.orm import Session

from engine.accounts.actor import Actor
from engine.runtime import clock, queries
from engine.store.models import AuditEvent, TaskComment


def add_comment(session: Session, actor: Actor, task_id: str, body: str) -> TaskComment:
    """A note on a task for colleagues, audited like every change to a case."""
    task = queries.get_task(session, actor, task_id)
    now = clock.now()
    comment = TaskComment(
        task_id=task_id,
        instance_id=task.instance_id,
        author=actor.username,
        body=body,
        created_at=now,
    )
    session.add(comment)
    session.add(
        AuditEvent(
            at=now,
            actor=actor.username,
            command="comment",
            instance_id=task.instance_id,
            task_id=task_id,
            element_id=task.element_id,
            data={"body": body},
        )
    )
    session.flush()
    return comment
