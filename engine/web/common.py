"""What every page shares: templates, the logged-in actor from the session cookie, CSRF.

Pages log in with the same tokens as the API (stored as an HttpOnly cookie), so revoking a
token or disabling a user logs the pages out too. Every form carries a CSRF token derived
from the session token, checked on each POST.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from engine.accounts.actor import Actor
from engine.app import Govflow
from engine.errors import Forbidden, GovflowError, Unauthorized

HERE = Path(__file__).resolve().parent
COOKIE = "govflow_session"
templates = Jinja2Templates(directory=str(HERE / "templates"))


class LoginNeeded(Exception):
    """Raised by a page that needs a user; answered with a redirect to the login page."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


def govflow_of(request: Request) -> Govflow:
    return request.app.state.govflow


def csrf_for(token: str) -> str:
    return hmac.new(token.encode(), b"govflow-csrf", hashlib.sha256).hexdigest()[:40]


def page_actor(request: Request) -> Actor:
    """The logged-in user, or a redirect to the login page."""
    token = request.cookies.get(COOKIE)
    if token:
        try:
            return govflow_of(request).actor_for_token(token)
        except Unauthorized:
            pass
    raise LoginNeeded(
        str(request.url.path) + (f"?{request.url.query}" if request.url.query else "")
    )


async def run_command(request: Request, command: Any, actor: Actor) -> Any:
    """Run a command from an async page handler in a worker thread: it waits on the database,
    and on the event loop that wait would hold up every other request of the process."""
    return await run_in_threadpool(govflow_of(request).runner.execute, command, actor)


async def checked_form(request: Request) -> Any:
    """The posted form, after checking its CSRF token against the session."""
    form = await request.form()
    token = request.cookies.get(COOKIE) or ""
    sent = form.get("_csrf")
    if not token or not isinstance(sent, str) or not hmac.compare_digest(sent, csrf_for(token)):
        raise Forbidden("the form is stale or did not come from this site; reload the page")
    return form


def local_time(value: Any, tz: str = "Asia/Shanghai") -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        return value.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")
    return str(value)


templates.env.filters["local"] = local_time
templates.env.filters["urlquote"] = lambda v: quote(str(v), safe="")


def render(
    request: Request, name: str, actor: Actor | None, status: int = 200, **context: Any
) -> HTMLResponse:
    token = request.cookies.get(COOKIE) or ""
    return templates.TemplateResponse(
        request,
        name,
        {"actor": actor, "csrf": csrf_for(token) if token else "", "flash": None, **context},
        status_code=status,
    )


def back(url: str, message: str | None = None) -> RedirectResponse:
    if message is None:
        return RedirectResponse(url, status_code=303)
    path, hash_mark, fragment = url.partition("#")  # the message goes before any fragment
    target = f"{path}{'&' if '?' in path else '?'}msg={quote(message)}{hash_mark}{fragment}"
    return RedirectResponse(target, status_code=303)


def error_page(request: Request, actor: Actor | None, exc: GovflowError) -> HTMLResponse:
    return render(request, "error.html", actor, status=exc.status, error=exc)
