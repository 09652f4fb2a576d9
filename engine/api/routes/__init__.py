"""One router per endpoint family."""

from __future__ import annotations

from typing import Any

from engine.api.schemas import ErrorBody

MAX_ID = 2**31 - 1  # integer ids are 32-bit columns

_DESCRIPTIONS = {
    401: "not logged in, or the token expired or was revoked",
    403: "the user's role or department does not allow this",
    404: "no such thing",
    409: "conflicts with the current state (claimed by someone else, already completed, ...)",
    413: "the upload is larger than allowed",
    422: "the request or the data in it is not valid; details name each field or file line",
    429: "too many failed logins for this user name; wait as Retry-After says",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error responses a route can give."""
    return {code: {"model": ErrorBody, "description": _DESCRIPTIONS[code]} for code in codes}
