"""Request dependencies: the application, the authenticated actor, and role checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordBearer

from engine.accounts.actor import Actor
from engine.app import Govflow
from engine.errors import Forbidden, Unauthorized

bearer = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


async def get_govflow(request: Request) -> Govflow:
    # Dependencies are async where they do not block: FastAPI runs a sync one in a worker
    # thread, a hop that costs more than the dependency itself on every request.
    return request.app.state.govflow


GovflowDep = Annotated[Govflow, Depends(get_govflow)]
TokenDep = Annotated[str | None, Depends(bearer)]


async def current_actor(token: TokenDep, govflow: GovflowDep) -> Actor:
    if not token:
        raise Unauthorized("log in first: send Authorization: Bearer <token> from /api/auth/token")
    remembered = govflow.remembered_actor(token)
    if remembered is not None:
        return remembered
    return await run_in_threadpool(govflow.actor_for_token, token)


ActorDep = Annotated[Actor, Depends(current_actor)]


def require_roles(*roles: str) -> Callable[[Actor], Actor]:
    """A dependency that lets through only actors holding one of the roles."""

    async def check(actor: ActorDep) -> Actor:
        if not actor.has_role(*roles):
            held = ", ".join(sorted(actor.roles)) or "none"
            raise Forbidden(
                f"this needs the {' or '.join(roles)} role; {actor.username} has {held}"
            )
        return actor

    return check


OpsDep = Annotated[Actor, Depends(require_roles("ops", "admin"))]
DesignerDep = Annotated[Actor, Depends(require_roles("designer", "admin"))]
AdminDep = Annotated[Actor, Depends(require_roles("admin"))]
ClerkOrOpsDep = Annotated[Actor, Depends(require_roles("clerk", "ops", "admin"))]
