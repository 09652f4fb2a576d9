"""Every error as JSON `{error, message, details}` with the right status code."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.errors import GovflowError, TooManyAttempts, Unauthorized

log = logging.getLogger("govflow.api")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
}


def _body(error: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": error, "message": message, "details": details}


def _field_path(location: tuple[Any, ...]) -> str:
    parts = [str(p) for p in location]
    if parts and parts[0] == "body":
        parts = parts[1:]
        return "$" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in parts)
    return ".".join(parts)


async def govflow_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GovflowError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    if isinstance(exc, TooManyAttempts) and isinstance(exc.details, dict):
        headers = {"Retry-After": str(exc.details.get("retry_after_s", 60))}
    return JSONResponse(exc.to_dict(), status_code=exc.status, headers=headers)


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"path": _field_path(tuple(err.get("loc", ()))), "message": err.get("msg", "invalid")}
        for err in exc.errors()
    ]
    return JSONResponse(_body("invalid", "the request is not valid", details), status_code=422)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return JSONResponse(
        _body(code, message), status_code=exc.status_code, headers=getattr(exc, "headers", None)
    )


async def data_error(request: Request, exc: Exception) -> JSONResponse:
    """The database refused a value (a NUL character in text, a number out of range): the
    request is at fault, and the transaction was rolled back, so nothing was stored."""
    origin = getattr(exc, "orig", None) or exc
    first = str(origin).strip().splitlines()[0] if str(origin).strip() else "invalid value"
    return JSONResponse(
        _body("invalid", f"a value in the request cannot be stored or searched: {first}"),
        status_code=422,
    )


async def database_error(request: Request, exc: Exception) -> JSONResponse:
    """A lost database connection (a restart, a failover) is the server's trouble and passes:
    503 with Retry-After tells the client to try again. A command whose connection was lost
    before its COMMIT was already run again by the runner (this is what is left when every
    try failed); a read is not run again, as the code around it may have acted on a row; a
    command lost during its COMMIT raises OutcomeUnknown instead, never this."""
    assert isinstance(exc, DBAPIError)
    if not exc.connection_invalidated:
        return await unexpected_error(request, exc)
    log.warning("database connection lost on %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        _body(
            "unavailable",
            "the connection to the database was lost (it may be restarting); try again in a moment",
        ),
        status_code=503,
        headers={"Retry-After": "1"},
    )


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse(
        _body("internal", "something went wrong on the server; it has been logged"), status_code=500
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(GovflowError, govflow_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(DataError, data_error)
    app.add_exception_handler(DBAPIError, database_error)
    app.add_exception_handler(Exception, unexpected_error)
