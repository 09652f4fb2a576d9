"""Logging in and out, and who am I."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import select

from engine.api.deps import ActorDep, GovflowDep, TokenDep
from engine.api.routes import errors
from engine.api.schemas import MeOut, TokenOut
from engine.store.models import User

router = APIRouter(prefix="/api", tags=["auth"])


@router.post("/auth/token", response_model=TokenOut, responses=errors(401, 422, 429))
def login(form: Annotated[OAuth2PasswordRequestForm, Depends()], govflow: GovflowDep) -> TokenOut:
    """Exchange username and password (OAuth2 password form) for a bearer token. After
    GOVFLOW_LOGIN_MAX_FAILURES failed attempts for a user name within
    GOVFLOW_LOGIN_LOCK_MINUTES, further attempts answer 429 until the window has passed."""
    _, token, expires = govflow.login(form.username, form.password, "api")
    return TokenOut(access_token=token, expires_at=expires)


@router.post("/auth/logout", status_code=204, responses=errors(401))
def logout(
    token: TokenDep,
    actor: ActorDep,
    govflow: GovflowDep,
) -> Response:
    """Revoke the token this request carries."""
    assert token is not None
    govflow.logout(token, actor.username)
    return Response(status_code=204)


@router.get("/me", response_model=MeOut, responses=errors(401))
def me(
    actor: ActorDep,
    govflow: GovflowDep,
) -> MeOut:
    with govflow.database.read_session() as session:
        user = session.scalars(select(User).where(User.username == actor.username)).one()
        display = user.display_name
    return MeOut(
        username=actor.username,
        display_name=display,
        roles=sorted(actor.roles),  # type: ignore[arg-type]
        departments=sorted(actor.departments),
    )
