"""The real application served by uvicorn on a free port, in a thread, with the HTTP protocol
`govflow serve` runs (engine/api/http_protocol.py)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from engine.api.http_protocol import GatheredWritesProtocol


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(asgi: Any) -> Iterator[str]:
    """The base URL of `asgi` served until the block ends."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            asgi, host="127.0.0.1", port=port, log_level="warning", http=GatheredWritesProtocol
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
