"""A small keep-alive JSON client for the benchmark's clerks, on the standard library.

bench.e2e's clerks run on the same two cores as the server they measure, so every CPU
millisecond the load generator spends is taken from the server. httpx spent about 0.9 ms of
CPU per completed task (two requests) in bench.e2e; `http.client` on one kept-alive
connection does the same requests for a fraction of that (docs/performance.md, "Sunday").
It speaks only what the clerks need: GET and POST with a JSON body, a JSON answer.
"""

from __future__ import annotations

import http.client
import json as _json
import time
from typing import Any
from urllib.parse import urlencode, urlsplit


class Answer:
    """A response read to the end: its status and body."""

    __slots__ = ("body", "status_code")

    def __init__(self, status_code: int, body: bytes) -> None:
        self.status_code = status_code
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return _json.loads(self.body)

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise LeanHTTPError(f"HTTP {self.status_code}: {self.text[:200]}")


class LeanHTTPError(Exception):
    """An answer with a 4xx or 5xx status, or a connection that broke."""


class LeanClient:
    """One kept-alive HTTP/1.1 connection; a broken connection is opened anew on the next
    request (the request that saw it break raises LeanHTTPError and is not sent again).
    http.client does not notice a server closing an idle connection, so one idle for longer
    than uvicorn keeps it (5 s) is not reused."""

    IDLE_S = 4.0

    def __init__(
        self, base: str, headers: dict[str, str] | None = None, timeout: float = 30
    ) -> None:
        parts = urlsplit(base)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"LeanClient speaks plain http://host:port, not {base!r}")
        self._host = parts.hostname
        self._port = parts.port or 80
        self._timeout = timeout
        self._headers = {"Accept": "application/json", **(headers or {})}
        self._connection: http.client.HTTPConnection | None = None
        self._used = 0.0

    def __enter__(self) -> LeanClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def get(self, path: str, params: dict[str, Any] | None = None) -> Answer:
        return self._request("GET", f"{path}?{urlencode(params)}" if params else path, None)

    def post(self, path: str, json: Any = None) -> Answer:
        body = None if json is None else _json.dumps(json).encode()
        return self._request("POST", path, body)

    def _request(self, method: str, path: str, body: bytes | None) -> Answer:
        if self._connection is not None and time.monotonic() - self._used > self.IDLE_S:
            self.close()
        if self._connection is None:
            self._connection = http.client.HTTPConnection(
                self._host, self._port, timeout=self._timeout
            )
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        elif method == "POST":
            headers["Content-Length"] = "0"
        try:
            self._connection.request(method, path, body, headers)
            response = self._connection.getresponse()
            answer = Answer(response.status, response.read())
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise LeanHTTPError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if response.will_close:
            self.close()
        self._used = time.monotonic()
        return answer
