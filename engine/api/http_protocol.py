"""uvicorn's httptools protocol, sending a response's head and body in one socket write.

uvicorn writes the status line and headers, then the body, each with a socket write of its
own: two system calls made holding the GIL, and two TCP segments the client wakes up for.
Those writes were a fifth of the event-loop thread's GIL time in the e2e run (docs/
performance.md, "Saturday evening"). Here the writes one step of the event loop makes are
gathered and go out together just after it: a whole small response, in one write.
`govflow serve` runs with this protocol.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class GatheredWritesProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_Gathered(transport, self.loop))  # type: ignore[arg-type]


class _Gathered:
    """A transport whose writes in one event-loop step leave as one, in order, before any
    later write and before the connection is closed; everything else is the transport's."""

    __slots__ = ("_loop", "_parts", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._parts: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        if self._parts is None:
            self._parts = [data]
            self._loop.call_soon(self._flush)
        else:
            self._parts.append(data)

    def _flush(self) -> None:
        parts, self._parts = self._parts, None
        if parts and not self._transport.is_closing():
            self._transport.write(parts[0] if len(parts) == 1 else b"".join(parts))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
