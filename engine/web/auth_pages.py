"""Log in, log out, and the landing page that sends each role to its own start page."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from engine.errors import TooManyAttempts, Unauthorized
from engine.web.common import COOKIE, back, checked_form, govflow_of, page_actor, render

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only local paths: a login link must not send the user to another site."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "login.html", None, next=_safe_next(next), error=None, username="")


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    govflow = govflow_of(request)
    ttl = timedelta(minutes=govflow.settings.token_ttl_minutes)
    try:
        _, token, _ = govflow.login(username, password, "pages")
    except (Unauthorized, TooManyAttempts) as exc:
        locked = isinstance(exc, TooManyAttempts)
        return render(
            request,
            "login.html",
            None,
            status=exc.status,
            next=_safe_next(next),
            error="登录失败次数过多，请稍后再试" if locked else "用户名或密码不正确",
            username=username,
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(ttl.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> RedirectResponse:
    await checked_form(request)
    token = request.cookies.get(COOKIE)
    if token:
        govflow_of(request).logout(token, None)
    response = back("/login")
    response.delete_cookie(COOKIE)
    return response


@router.get("/")
def home(request: Request) -> RedirectResponse:
    actor = page_actor(request)
    if actor.has_role("clerk"):
        return back("/worklist")
    if actor.has_role("ops", "admin"):
        return back("/ops")
    return back("/designer")
