"""The errors govflow reports to its users.

Each carries a stable machine code and the HTTP status the API answers with, so the CLI,
the API and the pages all say the same thing about the same mistake.
"""

from __future__ import annotations

from typing import Any


class GovflowError(Exception):
    """Base of every error a user is meant to read."""

    code = "error"
    status = 400

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, "details": self.details}


class NotFound(GovflowError):
    code = "not_found"
    status = 404


class Forbidden(GovflowError):
    code = "forbidden"
    status = 403


class Unauthorized(GovflowError):
    code = "unauthorized"
    status = 401


class Conflict(GovflowError):
    code = "conflict"
    status = 409


class InvalidInput(GovflowError):
    """Input that is well-formed but wrong: bad form data, unknown user, bad filter."""

    code = "invalid"
    status = 422


class BpmnProblems(GovflowError):
    """A BPMN or form file that cannot be deployed; details is a list of lint problems."""

    code = "bpmn_invalid"
    status = 422


class VersionConflict(Conflict):
    """Raised inside the runner when the instance changed under a command; it retries."""

    code = "version_conflict"


class OutcomeUnknown(GovflowError):
    """The database connection was lost while a change's COMMIT was on its way: the change
    may or may not have been saved, so it is not run again on the user's behalf."""

    code = "outcome_unknown"
    status = 503


class TooManyAttempts(GovflowError):
    """Too many failed logins for one user name: wait before trying again."""

    code = "too_many_attempts"
    status = 429
