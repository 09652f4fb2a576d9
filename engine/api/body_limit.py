"""Request bodies have a size limit, refused before anything is read or stored.

A JSON body may be at most GOVFLOW_MAX_JSON_BYTES, an upload (multipart) at most
GOVFLOW_MAX_UPLOAD_BYTES. The limit is checked on Content-Length; a body sent without one
(chunked) is refused with 411, so no request can stream an unbounded body past the check.
"""

from __future__ import annotations

import json
from typing import Any

BODY_METHODS = {b"POST", b"PUT", b"PATCH"}


class BodyLimit:
    def __init__(self, app: Any, json_limit: int, upload_limit: int) -> None:
        self.app = app
        self.json_limit = json_limit
        self.upload_limit = upload_limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"].encode() not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        kind = headers.get(b"content-type", b"").decode("latin-1").lower()
        limit = self.upload_limit if kind.startswith("multipart/") else self.json_limit
        length = headers.get(b"content-length")
        if length is None:
            if headers.get(b"transfer-encoding"):
                await _refuse(send, 411, "length_required", "send the body with a Content-Length")
                return
        elif not length.isdigit() or int(length) > limit:
            await _refuse(
                send,
                413,
                "too_large",
                f"the request body is larger than the limit of {limit} bytes",
            )
            return
        await self.app(scope, receive, send)


async def _refuse(send: Any, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": code, "message": message, "details": None}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
