"""The HTTP protocol `govflow serve` runs (engine/api/http_protocol.py): a small answer leaves
in one TCP segment, and answers still arrive whole, in order, streamed and before a close."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import sys
from typing import Any

import httpx2
import pytest

from engine.api.app import create_app
from tests.live_server import served

ON_LINUX = sys.platform == "linux" and hasattr(socket, "TCP_INFO")


def _data_segments_received(sock: socket.socket) -> int:
    """Linux's count of TCP segments with data that arrived on the socket (tcpi_data_segs_in)."""
    return struct.unpack_from("I", sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256), 152)[
        0
    ]


def _read_answer(sock: socket.socket, buffered: bytes = b"") -> tuple[bytes, bytes, bytes]:
    """One HTTP answer with a Content-Length: (head, body, what came after it)."""
    data = buffered
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(rest) < length:
        rest += sock.recv(65536)
    return head, rest[:length], rest[length:]


@pytest.fixture
def site(app) -> Any:
    with served(create_app(app)) as base:
        yield base


@pytest.mark.skipif(not ON_LINUX, reason="counts segments with Linux's TCP_INFO")
def test_a_small_answer_arrives_in_one_tcp_segment(site):
    port = int(site.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for _ in range(3):  # on one kept-alive connection
            before = _data_segments_received(sock)
            sock.sendall(b"GET /api/tasks HTTP/1.1\r\nHost: govflow\r\n\r\n")
            head, body, after = _read_answer(sock)
            assert head.startswith(b"HTTP/1.1 401 ")
            assert json.loads(body)["error"] == "unauthorized"
            assert after == b""
            assert _data_segments_received(sock) - before == 1


def test_answers_on_one_connection_arrive_whole_and_in_order(site):
    port = int(site.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        # three requests sent at once: the answers come back one after the other
        sock.sendall(
            b"GET /api/tasks HTTP/1.1\r\nHost: govflow\r\n\r\n"
            b"GET /openapi.json HTTP/1.1\r\nHost: govflow\r\n\r\n"
            b"GET /api/no-such-thing HTTP/1.1\r\nHost: govflow\r\n\r\n"
        )
        first, body, rest = _read_answer(sock)
        second, document, rest = _read_answer(sock, rest)
        third, _, rest = _read_answer(sock, rest)
    assert first.startswith(b"HTTP/1.1 401 ") and json.loads(body)["error"] == "unauthorized"
    assert (
        second.startswith(b"HTTP/1.1 200 ")
        and "/api/tasks/claim-next" in json.loads(document)["paths"]
    )
    assert third.startswith(b"HTTP/1.1 404 ")
    with httpx2.Client(base_url=site) as client:
        for _ in range(5):
            assert client.get("/openapi.json").json()["info"]["title"] == "govflow"
            assert client.get("/api/tasks").status_code == 401


async def _streamed(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Three parts with event-loop steps between them, as a file download sends its body."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for part in (b"first ", b"second ", b"third"):
        await send({"type": "http.response.body", "body": part, "more_body": True})
        await asyncio.sleep(0)
    await send({"type": "http.response.body", "body": b""})


def test_a_streamed_answer_and_one_before_a_close_arrive_whole():
    with served(_streamed) as base, httpx2.Client(base_url=base) as client:
        assert client.get("/").content == b"first second third"
        answer = client.get("/", headers={"Connection": "close"})
        assert answer.content == b"first second third"
        assert answer.headers["connection"] == "close"
